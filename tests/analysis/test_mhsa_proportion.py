"""MHSA-proportion subnetworks (the paper's Fig. 3): attention layers kept
or replaced by FFNs of the same width, timed and trained."""
import pytest
import torch

from efficientvit_mm.analysis import mhsa_proportion as mp
from efficientvit_mm.analysis.head_similarity import attention_layers
from efficientvit_mm.analysis.training import (build_loader, data_model_cfg,
                                               top1_accuracy, train_briefly)
from efficientvit_mm.errors import UserError
from efficientvit_mm.runtime import load_config
from helpers import load_tool
from helpers.tiny_models import SHAPES_CLS_CONFIG as DATA_CONFIG
from helpers.tiny_models import build_tiny, write_tiny_config
from helpers.tool_outputs import png_size, read_csv


def test_kept_layers_are_spread_first_or_last():
    assert mp.kept_indices(6, 0., 'spread') == []
    assert mp.kept_indices(6, 1., 'spread') == list(range(6))
    assert mp.kept_indices(6, 0.25, 'spread') == [1, 4]  # 1.5 rounds up
    assert mp.kept_indices(12, 0.25, 'spread') == [2, 6, 10]
    assert mp.kept_indices(12, 0.25, 'first') == [0, 1, 2]
    assert mp.kept_indices(12, 0.25, 'last') == [9, 10, 11]
    with pytest.raises(UserError, match=r'\[0, 1\]'):
        mp.kept_indices(6, 1.5, 'spread')


@pytest.mark.parametrize('family', ['efficientvit', 'swin', 'vit'])
def test_replaced_attention_becomes_an_ffn_of_the_same_width(family):
    model = build_tiny(family)
    blocks = mp.attention_blocks(model)
    assert len(blocks) == len(attention_layers(model))
    x = torch.randn(2, 3, 32, 32)
    swapped = mp.replace_attention(model, keep=[0])
    assert swapped == blocks[1:]
    modules = dict(model.named_modules())
    for name in swapped:
        ffn = modules[name].attn
        assert isinstance(ffn, mp.FFNInPlaceOfAttention)
        layers = [
            m for m in ffn.modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
        ]
        # C -> ratio*C -> C, the block's own FFN ratio
        own = modules[name].pre.ffn if family == 'efficientvit' else \
            modules[name].ffn
        own_layers = [
            m for m in own.modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
        ]
        assert [m.weight.shape
                for m in layers] == [m.weight.shape for m in own_layers]
    assert len(attention_layers(model)) == 1
    assert model(x, mode='tensor').shape == (2, 4)


def test_the_efficientvit_ffn_uses_the_models_norm_layers():
    """A model built with another norm_cfg (SyncBN) gets replacement FFNs
    with that norm, fresh, and starting as the identity branch."""
    from efficientvit_mm.models import EfficientViT
    backbone = EfficientViT('m0', norm_cfg=dict(type='SyncBN'))
    block = backbone.stages[0].blocks[0]
    with torch.no_grad():
        block.pre.ffn.pw1.conv.weight.fill_(1.)
    ffn = mp.ffn_for(block)(block)
    norms = [
        m for m in ffn.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    assert len(norms) == 2 and all(
        isinstance(m, torch.nn.SyncBatchNorm) for m in norms)
    assert not torch.equal(ffn.pw1.conv.weight, block.pre.ffn.pw1.conv.weight)
    assert torch.count_nonzero(ffn.pw2.bn.weight) == 0
    assert ffn.pw1.conv.weight.data_ptr() != \
        block.pre.ffn.pw1.conv.weight.data_ptr()


def test_the_ffn_takes_the_attention_input_and_its_residual():
    """In a ViT layer the FFN stands exactly where the attention stood:
    x + ffn'(ln1(x)), then the layer's own FFN."""
    model = build_tiny('vit')
    mp.replace_attention(model, keep=[])
    layer = model.backbone.layers[0]
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        mid = x + layer.attn.ffn(layer.ln1(x))
        expected = mid + layer.ffn.layers(layer.ln2(mid))
        assert torch.allclose(layer(x), expected, atol=1e-6)


def test_all_attention_kept_is_the_model_itself(tmp_path):
    cfg = load_config(write_tiny_config(tmp_path, 'vit'))
    variants = mp.build_variants(cfg, [1.0, 0.5, 0.4, 0.0], seed=3)
    # 3 layers: 1.0 -> 3, 0.5 -> 2 (1.5 rounds up), 0.4 -> 1, 0.0 -> 0
    assert [len(v.kept) for v in variants] == [3, 2, 1, 0]
    assert variants[1].kept == [0, 2]
    from efficientvit_mm.analysis.training import init_weights
    from efficientvit_mm.apis import build_model
    torch.manual_seed(3)
    reference = init_weights(build_model(cfg)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # (the ViT head starts at zero: features)
        want = reference.extract_feat(x)[0]
        assert torch.equal(variants[0].model.extract_feat(x)[0], want)
        assert not torch.allclose(variants[3].model.extract_feat(x)[0], want)


def test_variants_are_timed_with_memory(tmp_path):
    cfg = load_config(write_tiny_config(tmp_path, 'swin'))
    variants = mp.build_variants(cfg, [0., 1.])
    speed = mp.measure_speed(variants, 2, (32, 32), warmup=1, repeats=1,
                             calls=1, latency_calls=1, min_run_s=0.)
    assert set(speed) == {'4/4 MHSA', '0/4 MHSA'}
    for figures in speed.values():
        assert figures['images_per_s'] > 0 and figures['peak_mib'] > 0


def test_brief_training_learns_the_crops(tmp_path, tiny_crops):
    """A few iterations on the crops lower the loss of a tiny EfficientViT
    trained through the data config's optimizer, and top-1 is scored."""
    data_cfg = load_config(DATA_CONFIG, tiny_crops[1])
    cfg = data_model_cfg(
        load_config(write_tiny_config(tmp_path, 'efficientvit')), data_cfg)
    assert cfg.model.head.num_classes == 4
    assert cfg.model.train_cfg is None  # no Mixup/CutMix
    from efficientvit_mm.apis import build_model
    torch.manual_seed(0)
    model = build_model(cfg)
    val = build_loader(data_cfg, 'val')
    lines = []
    run = train_briefly(model, data_cfg, 2, lines.append, 'm0', log_every=1)
    assert run['iters'] == 2 * len(build_loader(data_cfg, 'train'))
    assert len(lines) == run['iters'] and 'loss' in lines[-1]
    assert 0 <= top1_accuracy(model, val) <= 100


def test_data_config_without_classes_is_refused():
    cfg = load_config('configs/efficientvit_m0_in1k.py')
    data_cfg = load_config('configs/efficientvit_m0_in1k.py')
    del data_cfg.model['head']
    with pytest.raises(UserError, match='num_classes'):
        data_model_cfg(cfg, data_cfg)


def test_tool_trains_times_and_plots_variants(tmp_path, tiny_crops, capsys):
    options = tiny_crops[0]
    out = tmp_path / 'mhsa'
    tool = load_tool('analysis/mhsa_proportion')
    tool.main([
        write_tiny_config(tmp_path, 'vit'), '--labels', 'ViT', '--fractions',
        '0', '1', '--batch-size', '2', '--shape', '32', '--repeats', '1',
        '--data-config', DATA_CONFIG, '--data-options', *options, '--epochs',
        '1', '--out-dir',
        str(out)
    ])
    rows = read_csv(out / 'mhsa_proportion.csv')
    assert [(r['variant'], float(r['proportion']))
            for r in rows] == [('3/3 MHSA', 1.0), ('0/3 MHSA', 0.0)]
    assert all(0 <= float(r['top1']) <= 100 for r in rows)
    assert all(float(r['images_per_s']) > 0 for r in rows)
    # width 16: an FFN of ratio 2 (16-32-16, 1072 weights) in place of
    # each attention (qkv 16-48 and proj 16-16, 1088 weights)
    assert int(rows[1]['params']) - int(rows[0]['params']) == 3 * (1072 - 1088)
    assert png_size(out / 'mhsa_proportion.png')[0] >= 500
    again = mp.read_csv(out / 'mhsa_proportion.csv')  # numbers back
    assert again[0]['images_per_s'] == float(rows[0]['images_per_s'])
    mp.plot(again, str(tmp_path / 'again.png'))
    assert png_size(tmp_path / 'again.png') == png_size(out /
                                                        'mhsa_proportion.png')
    stdout = capsys.readouterr().out
    assert 'training 0/3 MHSA for 1 epoch(s)' in stdout
    assert 'timing 2 variants interleaved' in stdout


def test_tool_refuses_epochs_without_data():
    tool = load_tool('analysis/mhsa_proportion')
    with pytest.raises(SystemExit):
        tool.parse_args(['configs/efficientvit_m0_in1k.py', '--epochs', '1'])
    with pytest.raises(SystemExit):
        tool.parse_args(
            ['configs/efficientvit_m0_in1k.py', '--fractions', '2'])
