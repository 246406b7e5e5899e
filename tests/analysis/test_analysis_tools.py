"""tools/analysis: head similarity (Fig. 4) and runtime breakdown (Fig. 2)."""
import csv
import os
import subprocess
import sys

import pytest
import torch

from efficientvit_mm.analysis import (classify, head_similarity,
                                      runtime_breakdown, summarise)
from efficientvit_mm.models import EfficientViT
from efficientvit_mm.testing import randomise
from helpers import ROOT


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _png_size(path):
    with open(path, 'rb') as f:
        header = f.read(24)
    assert header[:8] == b'\x89PNG\r\n\x1a\n'
    return int.from_bytes(header[16:20],
                          'big'), int.from_bytes(header[20:24], 'big')


def test_identical_heads_have_similarity_one():
    """With the cascade off and every head given the same weights, all heads
    compute the same output: the score must be exactly 1."""
    model = randomise(EfficientViT('m0', cascade=False)).eval()
    for _, attn in model.attention_layers():
        with torch.no_grad():  # one bias table for every head too
            attn.attention_biases.copy_(attn.attention_biases[:1].expand_as(
                attn.attention_biases))
        for qkv, dw in zip(attn.qkvs[1:], attn.dws[1:]):
            qkv.load_state_dict(attn.qkvs[0].state_dict())
            if dw.conv.weight.shape == attn.dws[0].conv.weight.shape:
                dw.load_state_dict(attn.dws[0].state_dict())
    # m0 uses 5x5 kernels for every head, so every head is a copy
    rows = head_similarity(model, [torch.randn(2, 3, 112, 112)])
    assert len(rows) == 6 * 4
    for row in rows:
        assert row['max_cos_sim'] == pytest.approx(1.0, abs=1e-5)


def test_random_heads_are_scored_per_block_and_head():
    model = randomise(EfficientViT('m0')).eval()
    rows = head_similarity(model, [torch.randn(2, 3, 96, 96)] * 2)
    assert [r['block']
            for r in rows] == [b for b in range(6) for _ in range(4)]
    assert all(-1 <= r['max_cos_sim'] < 0.999 for r in rows)
    assert all(r['closest_head'] != r['head'] for r in rows)


def test_head_similarity_tool_compares_cascade_and_mhsa(tmp_path):
    out = tmp_path / 'hs'
    proc = subprocess.run([
        sys.executable, 'tools/analysis/head_similarity.py',
        'configs/efficientvit_m0_in1k.py', 'none', '--num-images', '4',
        '--batch-size', '2', '--shape', '96', '--compare',
        'configs/efficientvit_m0_in1k.py', 'none', '--compare-options',
        'model.backbone.cascade=False', '--labels', 'cascaded', 'MHSA',
        '--out-dir',
        str(out)
    ], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _read_csv(out / 'head_similarity.csv')
    assert {r['variant'] for r in rows} == {'cascaded', 'MHSA'}
    assert sum(r['variant'] == 'MHSA' for r in rows) == 24
    assert all(-1 <= float(r['max_cos_sim']) <= 1 for r in rows)
    width, height = _png_size(out / 'head_similarity.png')
    assert width > 400 and height > 200
    assert 'MHSA: mean max similarity per block' in proc.stdout


def test_operators_are_classified_compute_or_memory_bound():
    assert classify('aten::mkldnn_convolution') == ('convolution', 'compute')
    assert classify('aten::cudnn_convolution') == ('convolution', 'compute')
    assert classify('aten::bmm')[1] == 'compute'
    assert classify('aten::addmm')[1] == 'compute'
    assert classify('aten::baddbmm')[1] == 'compute'
    assert classify('aten::add') == ('element-wise', 'memory')
    assert classify('aten::_softmax') == ('softmax', 'memory')
    assert classify('aten::native_batch_norm') == ('normalisation', 'memory')
    assert classify('aten::permute') == ('reshape', 'memory')
    assert classify('aten::copy_') == ('copy/gather', 'memory')


def test_runtime_breakdown_charges_every_block_type():
    model = EfficientViT('m0', window_size=(7, 7, 4)).eval()
    rows = runtime_breakdown(model, torch.randn(2, 3, 224, 224), runs=1)
    summary = summarise(rows)
    for block in ('stem', 'DWConv + FFN', 'attention', 'patch merging'):
        assert summary[block]['compute'] > 0, block
    # attention does real memory-bound work: softmax and reshapes
    groups = {r['group'] for r in rows if r['block'] == 'attention'}
    assert {'softmax', 'reshape', 'matmul', 'convolution'} <= groups
    # eager BN is memory-bound work of the FFN blocks
    assert any(r['group'] == 'normalisation' and r['block'] == 'DWConv + FFN'
               for r in rows)


def test_runtime_breakdown_tool_writes_csv_and_png(tmp_path):
    out = tmp_path / 'rb'
    proc = subprocess.run([
        sys.executable, 'tools/analysis/runtime_breakdown.py',
        'configs/efficientvit_m0_in1k.py', '--batch-size', '2', '--runs', '1',
        '--deploy', '--out-dir',
        str(out)
    ], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, KINETO_LOG_LEVEL='5'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _read_csv(out / 'runtime_breakdown.csv')
    blocks = {r['block'] for r in rows}
    assert {'stem', 'DWConv + FFN', 'attention', 'patch merging'} <= blocks
    assert all(float(r['ms']) > 0 for r in rows)
    # deploy mode folded every BatchNorm: no normalisation time is left
    assert not any(r['group'] == 'normalisation' for r in rows)
    assert _png_size(out / 'runtime_breakdown.png')[0] > 400
    assert 'memory-bound share of the total' in proc.stdout
