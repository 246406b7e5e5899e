"""Head similarity (the paper's Fig. 4) for cascaded group attention and
mmpretrain's multi-head attention (Swin's WindowMSA, ViT's)."""
import pytest
import torch

from efficientvit_mm.analysis import head_similarity, tap_heads
from efficientvit_mm.analysis.head_similarity import (attention_layers,
                                                      load_images)
from efficientvit_mm.errors import UserError
from efficientvit_mm.models import EfficientViT
from efficientvit_mm.testing import randomise
from helpers import load_tool
from helpers.tiny_models import build_tiny, write_tiny_config
from helpers.tool_outputs import png_size, read_csv


def copy_head(qkv: torch.nn.Linear, heads: int, src: int, dst: int) -> None:
    """Give head ``dst`` of a fused qkv Linear (rows [q | k | v], each
    heads x head_dims) the Q, K and V weights of head ``src``."""
    with torch.no_grad():
        for param in (qkv.weight, qkv.bias):
            view = param.view(3, heads, -1, *param.shape[1:])
            view[:, dst] = view[:, src]


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


@pytest.mark.parametrize('measure', ['maps', 'outputs'])
@pytest.mark.parametrize('family', ['vit', 'swin'])
def test_mhsa_heads_are_cut_in_the_right_places(family, measure):
    """A head given another head's weights is found as its twin (similarity
    1, each other's closest), the others are not: the hooks cut the heads
    in the right places."""
    model = build_tiny(family)
    layers = attention_layers(model)
    assert [
        type(m).__name__ for _, m in layers
    ] == (['MultiheadAttention'] * 3 if family == 'vit' else ['WindowMSA'] * 4)
    name, last = layers[-1]
    heads = last.num_heads
    copy_head(last.qkv, heads, 0, 1)
    if family == 'swin':  # relative position biases per head, too
        with torch.no_grad():
            torch.nn.init.normal_(last.relative_position_bias_table)
            table = last.relative_position_bias_table
            table[:, 1] = table[:, 0]
    rows = [
        r for r in head_similarity(model, [torch.randn(3, 3, 32, 32)],
                                   measure=measure) if r['layer'] == name
    ]
    assert len(rows) == heads
    assert rows[0]['max_cos_sim'] == pytest.approx(1.0, abs=1e-6)
    assert (rows[0]['closest_head'], rows[1]['closest_head']) == (1, 0)
    assert all(r['max_cos_sim'] < 0.99 for r in rows[2:])


def test_maps_times_values_are_the_head_outputs():
    """The attention maps the hooks take (recomputed for ViT's fused
    attention and for cascaded group attention) are the ones the layers
    use: map @ V gives each head's output."""
    for family in ('vit', 'efficientvit'):
        model = randomise(build_tiny(family)).eval()
        maps, outs = {}, {}
        layer_name, layer = attention_layers(model)[0]  # 4x4 tokens
        values = []
        if family == 'vit':
            hd = layer.head_dims
            hook = layer.qkv.register_forward_hook(
                lambda m, a, out: values.extend(out[
                    ..., 2 * layer.embed_dims:].unflatten(
                        -1, (layer.num_heads, hd)).movedim(-2, 0)))
        else:
            kd = layer.key_dim
            hooks = [
                q.register_forward_hook(lambda m, a, out: values.append(
                    out[:, 2 * kd:].flatten(2).transpose(1, 2)))
                for q in layer.qkvs
            ]
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            with tap_heads(model, lambda n, h: maps.setdefault(n, h), 'maps'):
                model(x, mode='tensor')
            with tap_heads(model, lambda n, h: outs.setdefault(n, h),
                           'outputs'):
                model(x, mode='tensor')
        if family == 'vit':
            hook.remove()
        else:
            for h in hooks:
                h.remove()
        heads = len(maps[layer_name])
        for i in range(heads):
            v = values[i]  # (B, N, d), from the first forward
            n = v.shape[1]
            attn = maps[layer_name][i].view(-1, n, n)
            out = (attn @ v).flatten(1) if family == 'vit' else (
                attn @ v).transpose(1, 2).flatten(1)
            assert torch.allclose(out, outs[layer_name][i], atol=1e-5)


def test_hooks_leave_the_model_as_it_was():
    model = build_tiny('vit')
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x, mode='tensor')
        seen = []
        with tap_heads(model, lambda name, heads: seen.append(len(heads)),
                       'outputs'):
            during = model(x, mode='tensor')
        after = model(x, mode='tensor')
    assert seen == [2, 2, 2]
    assert torch.equal(before, during) and torch.equal(before, after)
    assert not any(m.proj._forward_pre_hooks
                   for _, m in attention_layers(model))


def test_a_model_without_attention_is_refused():
    with pytest.raises(UserError, match='no attention layer'):
        head_similarity(build_tiny('resnet'), [torch.randn(1, 3, 32, 32)])


def run_similarity(argv):
    return load_tool('analysis/head_similarity').main(argv)


def test_head_similarity_tool_compares_cascade_and_mhsa(tmp_path, capsys):
    out = tmp_path / 'hs'
    run_similarity([
        'configs/efficientvit_m0_in1k.py', 'none', '--num-images', '4',
        '--batch-size', '2', '--shape', '96', '--compare',
        'configs/efficientvit_m0_in1k.py', 'none', '--compare-options',
        'model.backbone.cascade=False', '--labels', 'cascaded', 'MHSA',
        '--out-dir',
        str(out)
    ])
    rows = read_csv(out / 'head_similarity.csv')
    assert {r['variant'] for r in rows} == {'cascaded', 'MHSA'}
    assert sum(r['variant'] == 'MHSA' for r in rows) == 24
    assert all(-1 <= float(r['max_cos_sim']) <= 1 for r in rows)
    width, height = png_size(out / 'head_similarity.png')
    assert width > 400 and height > 200
    assert 'MHSA: mean max similarity per block' in capsys.readouterr().out


def test_head_similarity_tool_plots_swin_beside_efficientvit(tmp_path, capsys):
    out = tmp_path / 'hs'
    run_similarity([
        write_tiny_config(tmp_path, 'swin'), 'none', '--num-images', '2',
        '--shape', '32', '--compare', 'configs/efficientvit_m0_in1k.py',
        'none', '--labels', 'Swin', 'CGA', '--out-dir',
        str(out)
    ])
    rows = read_csv(out / 'head_similarity.csv')
    swin = [r for r in rows if r['variant'] == 'Swin']
    run_similarity([
        write_tiny_config(tmp_path, 'swin'), 'none', '--num-images', '2',
        '--shape', '32', '--measure', 'outputs', '--out-dir',
        str(tmp_path / 'outputs')
    ])
    outputs = read_csv(tmp_path / 'outputs' / 'head_similarity.csv')
    assert [r['layer'] for r in outputs] == [r['layer'] for r in swin]
    assert [r['max_cos_sim']
            for r in outputs] != [r['max_cos_sim'] for r in swin]
    assert len(swin) == 2 * 2 + 2 * 4  # two blocks of 2 heads, two of 4
    assert {r['layer']
            for r in swin} == {
                f'model.backbone.stages.{s}.blocks.{b}.attn.w_msa'
                for s in range(2)
                for b in range(2)
            }
    assert 'Swin: mean max similarity per block' in capsys.readouterr().out


@pytest.mark.parametrize('flag', ['--num-images', '--batch-size', '--shape'])
def test_tool_counts_must_be_positive(flag, capsys):
    tool = load_tool('analysis/head_similarity')
    with pytest.raises(SystemExit) as exit:
        tool.parse_args(['configs/efficientvit_m0_in1k.py', 'none', flag, '0'])
    assert exit.value.code == 2
    assert 'must be at least 1' in capsys.readouterr().err


def test_image_folders_are_read_whatever_the_extension_case(tmp_path):
    """Class sub-folders and upper-case extensions (.JPG, .PNG, .Jpeg) are
    read; a folder without images says which extensions it looked for."""
    import cv2
    import numpy as np
    (tmp_path / 'cat').mkdir()
    for i, name in enumerate(['a.JPG', 'cat/b.PNG', 'cat/c.Jpeg', 'd.bmp']):
        cv2.imwrite(str(tmp_path / name), np.full((8, 8, 3), i, np.uint8))
    (tmp_path / 'notes.txt').write_text('not an image')
    images = load_images(str(tmp_path), 10, 4)
    assert images.shape == (4, 4, 4, 3)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UserError, match=r'no images \(.jpg'):
        load_images(str(tmp_path / 'empty'), 4, 4)
