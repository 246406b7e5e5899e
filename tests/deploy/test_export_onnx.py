"""tools/export_onnx.py: deploy-mode export checked against onnxruntime."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from efficientvit_mm.apis import build_model
from efficientvit_mm.runtime import load_config
from efficientvit_mm.testing import randomise
from helpers import ROOT

ort = pytest.importorskip('onnxruntime', reason='optional extra: onnxruntime')
pytest.importorskip('onnx', reason='optional extra: onnx')


def _export(config, tmp_path, *extra):
    cfg = load_config(os.path.join(ROOT, 'configs', config))
    model = randomise(build_model(cfg)).eval()
    ckpt = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out = str(tmp_path / 'model.onnx')
    proc = subprocess.run([
        sys.executable, 'tools/export_onnx.py',
        os.path.join('configs', config), ckpt, out, '--no-benchmark', *extra
    ], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return model, out, proc.stdout


def test_classifier_export_matches_pytorch(tmp_path):
    model, path, stdout = _export('efficientvit_m0_in1k.py', tmp_path)
    assert 'check passed' in stdout
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    x = torch.randn(3, 3, 224, 224)  # another batch size: dynamic axis
    with torch.no_grad():
        expected = model(x, mode='tensor')
    (logits, ) = session.run(None, {'input': x.numpy()})
    assert logits.shape == (3, 1000)
    assert np.abs(logits - expected.numpy()).max() <= 1e-4
    # the weights are not trivial: classes are told apart
    assert expected.std() > 0.1


def test_dense_backbone_export_has_dynamic_height_and_width(tmp_path):
    model, path, stdout = _export('retinanet_efficientvit_m0_coco.py',
                                  tmp_path, '--shape', '512', '640')
    assert stdout.count('max abs diff') == 2
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    names = [o.name for o in session.get_outputs()]
    assert names == ['stage0', 'stage1', 'stage2']
    x = torch.randn(1, 3, 576, 704)
    with torch.no_grad():
        expected = model.backbone(x)
    outputs = session.run(None, {'input': x.numpy()})
    for got, want in zip(outputs, expected):
        assert got.shape == tuple(want.shape)
        assert np.abs(got - want.numpy()).max() <= 1e-4


def test_checkpoint_of_another_model_is_refused(tmp_path):
    torch.save({'state_dict': {
        'layer.weight': torch.zeros(1)
    }}, str(tmp_path / 'bad.pth'))
    proc = subprocess.run([
        sys.executable, 'tools/export_onnx.py',
        'configs/efficientvit_m0_in1k.py',
        str(tmp_path / 'bad.pth'),
        str(tmp_path / 'x.onnx')
    ], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'does not fit this config' in proc.stderr
