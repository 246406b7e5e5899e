"""The EfficientViT backbone: shapes, windows, training options."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from efficientvit_mm.models import EfficientViT
from efficientvit_mm.models.layers import (CascadedGroupAttention,
                                           relative_offset_index)
from efficientvit_mm.testing import randomise as _randomise

ARCH_CHANNELS = {
    'm0': [64, 128, 192],
    'm1': [128, 144, 192],
    'm2': [128, 192, 224],
    'm3': [128, 240, 320],
    'm4': [128, 256, 384],
    'm5': [192, 288, 384],
}


def _stage_size(size: int, stage: int) -> int:
    for _ in range(4 + stage):
        size = math.ceil(size / 2)
    return size


@pytest.mark.parametrize('arch', sorted(ARCH_CHANNELS))
def test_every_arch_gives_three_stages_at_strides_16_32_64(arch):
    model = EfficientViT(arch).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 96))
    assert [f.shape[1] for f in feats] == ARCH_CHANNELS[arch]
    assert [tuple(f.shape[2:]) for f in feats] == [(4, 6), (2, 3), (1, 2)]
    assert model.out_channels == ARCH_CHANNELS[arch]


def test_arch_dict_equals_named_arch():
    named = EfficientViT('m2')
    custom = EfficientViT(dict(EfficientViT.arch_zoo['m2']))
    assert [(k, v.shape) for k, v in named.state_dict().items()] == \
        [(k, v.shape) for k, v in custom.state_dict().items()]


@pytest.mark.parametrize('size', [(64, 96), (160, 160), (333, 517), (320, 320),
                                  (112, 112)])
def test_any_input_size(size):
    model = _randomise(EfficientViT('m0', window_size=7)).eval()
    with torch.no_grad():
        feats = model(torch.randn(2, 3, *size))
    for stage, feat in enumerate(feats):
        assert feat.shape[2:] == (_stage_size(size[0], stage),
                                  _stage_size(size[1], stage))
        assert torch.isfinite(feat).all()


def test_out_indices_select_stages_and_accept_negative():
    model = EfficientViT('m0', out_indices=(-1, 0)).eval()
    assert model.out_indices == [0, 2]
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [64, 192]


# --------------------------------------------------------------- windows
def test_offset_index_reads_the_window_table_by_offset():
    index = relative_offset_index(3, 5, 7)
    points = [(y, x) for y in range(3) for x in range(5)]
    for i, (y1, x1) in enumerate(points):
        for j, (y2, x2) in enumerate(points):
            assert index[i, j] == abs(y1 - y2) * 7 + abs(x1 - x2)


def _naive_attention(attn: CascadedGroupAttention, x: torch.Tensor):
    """Whole-map cascaded attention written pair by pair from the paper."""
    n, c, h, w = x.shape
    ws = attn.window_size
    table = attn.attention_biases
    pos = [(y, xx) for y in range(h) for xx in range(w)]
    bias = torch.empty(attn.num_heads, h * w, h * w)
    for i, (y1, x1) in enumerate(pos):
        for j, (y2, x2) in enumerate(pos):
            bias[:, i, j] = table[:, abs(y1 - y2) * ws + abs(x1 - x2)]
    splits = x.chunk(attn.num_heads, 1)
    outs = []
    for head in range(attn.num_heads):
        feat = splits[head] if head == 0 else splits[head] + outs[-1]
        qkv = attn.qkvs[head](feat)
        q, k, v = qkv.split([attn.key_dim, attn.key_dim, attn.head_dims], 1)
        q = attn.dws[head](q).flatten(2).transpose(1, 2)  # (n, L, kd)
        k, v = k.flatten(2).transpose(1, 2), v.flatten(2).transpose(1, 2)
        logits = q @ k.transpose(1, 2) / math.sqrt(attn.key_dim) + bias[head]
        outs.append((logits.softmax(-1) @ v).transpose(1, 2).reshape(
            n, attn.head_dims, h, w))
    return attn.proj(F.relu(torch.cat(outs, 1)))


def _attention(window_size=7):
    attn = CascadedGroupAttention(64, 16, 4, window_size, (7, 5, 3, 3))
    return _randomise(attn).eval()


@pytest.mark.parametrize('size', [(5, 5), (3, 7), (7, 7), (1, 1)])
def test_map_inside_one_window_uses_its_own_offsets(size):
    attn = _attention()
    x = torch.randn(2, 64, *size)
    with torch.no_grad():
        assert torch.allclose(attn(x), _naive_attention(attn, x), atol=1e-5)


def test_map_of_exactly_one_window_equals_the_windowed_path():
    """Tiling a 7x7 map 2x3 times: each window must reproduce the whole-map
    result, so the windowed path and the whole-map path agree."""
    attn = _attention()
    x = torch.randn(2, 64, 7, 7)
    with torch.no_grad():
        whole = attn(x)
        tiled = attn(x.repeat(1, 1, 2, 3))
    assert tiled.shape == (2, 64, 14, 21)
    assert torch.allclose(tiled, whole.repeat(1, 1, 2, 3), atol=1e-5)


def test_padded_windows_are_cropped_back():
    """An 8x9 map: windows are zero-padded to 14x14, then cropped. The first
    window only sees real tokens of its own 7x7 block."""
    attn = _attention()
    x = torch.randn(1, 64, 8, 9)
    with torch.no_grad():
        out = attn(x)
        first = attn(x[:, :, :7, :7].contiguous())
    assert out.shape == x.shape
    assert torch.allclose(out[:, :, :7, :7], first, atol=1e-5)


def test_per_stage_window_size_builds_bias_tables():
    model = EfficientViT('m0', window_size=(7, 7, 4))
    sizes = [
        stage.blocks[0].attn.attention_biases.shape[1]
        for stage in model.stages
    ]
    assert sizes == [49, 49, 16]


# ----------------------------------------------------------------- deploy
def test_switch_to_deploy_folds_every_bn_and_keeps_outputs():
    model = _randomise(EfficientViT('m1', window_size=7)).eval()
    x = torch.randn(2, 3, 160, 224)
    with torch.no_grad():
        before = model(x)
        model.switch_to_deploy()
        after = model(x)
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    for a, b in zip(before, after):
        assert (a - b).abs().max().item() <= 1e-4


def test_deploy_true_builds_the_fused_structure_and_loads_it():
    model = _randomise(EfficientViT('m0')).eval()
    x = torch.randn(1, 3, 128, 128)
    fused = copy.deepcopy(model)
    fused.switch_to_deploy()
    direct = EfficientViT('m0', deploy=True).eval()
    assert not any(isinstance(m, _BatchNorm) for m in direct.modules())
    direct.load_state_dict(fused.state_dict(), strict=True)
    with torch.no_grad():
        for a, b in zip(model(x), direct(x)):
            assert (a - b).abs().max().item() <= 1e-4


def test_mmcv_fuse_conv_bn_works_on_the_model():
    from mmcv.cnn import fuse_conv_bn
    model = _randomise(EfficientViT('m0')).eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        before = model(x)
        fuse_conv_bn(model)
        after = model(x)
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    for a, b in zip(before, after):
        assert (a - b).abs().max().item() <= 1e-4


def test_deploy_channels_last_matches_eager():
    model = _randomise(EfficientViT('m0', window_size=(7, 7, 4))).eval()
    x = torch.randn(2, 3, 224, 224)
    fast = copy.deepcopy(model)
    fast.switch_to_deploy()
    fast.to(memory_format=torch.channels_last)
    with torch.no_grad():
        for a, b in zip(
                model(x),
                fast(x.contiguous(memory_format=torch.channels_last))):
            assert (a - b).abs().max().item() <= 1e-4


@pytest.mark.parametrize('layout',
                         [torch.contiguous_format, torch.channels_last])
def test_stage_maps_come_back_in_the_input_layout(layout):
    """Folded convs may run channels_last inside; the maps leave in the
    input's layout, which mmcv's CPU ops (roi_align) silently assume."""
    model = _randomise(EfficientViT('m0')).eval()
    model.switch_to_deploy()
    x = torch.randn(2, 3, 96, 128).contiguous(memory_format=layout)
    with torch.no_grad():
        for out in model(x):
            assert out.is_contiguous(memory_format=layout)


# --------------------------------------------------------------- training
@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 3])
def test_frozen_stages_stay_frozen_and_in_eval(frozen_stages):
    model = EfficientViT('m0', frozen_stages=frozen_stages)
    model.train()
    parts = [model.patch_embed] + list(model.stages)
    for i, part in enumerate(parts):
        frozen = i <= frozen_stages
        assert all(p.requires_grad != frozen for p in part.parameters())
        assert all(m.training != frozen for m in part.modules())


def test_frozen_stem_gets_no_gradient_but_later_stages_do():
    model = EfficientViT('m0', frozen_stages=1)
    model.train()
    sum(f.sum() for f in model(torch.randn(2, 3, 64, 64))).backward()
    assert all(p.grad is None for p in model.patch_embed.parameters())
    assert all(p.grad is None for p in model.stages[0].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.stages[2].parameters())


def test_norm_eval_keeps_running_stats():
    model = EfficientViT('m0', norm_eval=True)
    model.train()
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))
    bn = model.stages[1].blocks[0].pre.ffn.pw1.bn
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(before, bn.running_mean)
    # without norm_eval the statistics move
    model = EfficientViT('m0')
    model.train()
    bn = model.stages[1].blocks[0].pre.ffn.pw1.bn
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert not torch.equal(before, bn.running_mean)


def test_with_cp_gives_the_same_gradients():
    plain = _randomise(EfficientViT('m0'))
    ckpt = EfficientViT('m0', with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    assert all(stage.with_cp for stage in ckpt.stages)
    x = torch.randn(2, 3, 96, 96)
    for model in (plain, ckpt):
        model.train()
        sum((f**2).mean() for f in model(x)).backward()
    for (name, a), (_, b) in zip(plain.named_parameters(),
                                 ckpt.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_with_cp_recomputes_stem_and_blocks_in_backward():
    """Checkpointed parts start their forward twice per training step
    (pre-hooks: recomputation stops once the saved tensors are back)."""
    model = EfficientViT('m0', with_cp=True).train()
    calls = []
    model.patch_embed.register_forward_pre_hook(
        lambda *a: calls.append('stem'))
    model.stages[1].blocks[0].register_forward_pre_hook(
        lambda *a: calls.append('block'))
    sum(f.sum() for f in model(torch.randn(2, 3, 64, 64))).backward()
    assert calls.count('stem') == 2 and calls.count('block') == 2
    calls.clear()
    with torch.no_grad():  # nothing to recompute without gradients
        model(torch.randn(2, 3, 64, 64))
    assert calls == ['stem', 'block']


def test_drop_path_is_stochastic_in_training_only():
    # randomised: freshly built residual branches start as zeros
    model = _randomise(EfficientViT('m0', drop_path_rate=0.5))
    rates = [
        blk.drop_path.drop_prob for stage in model.stages
        for blk in stage.blocks if hasattr(blk.drop_path, 'drop_prob')
    ]
    assert rates == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    x = torch.randn(4, 3, 64, 64)
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x)[-1], model(x)[-1])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x)[-1], model(x)[-1])


# ------------------------------------------------------------ bias cache
def test_bias_cache_follows_load_state_dict_flips_and_dtype():
    attn = _attention()
    x = torch.randn(1, 64, 7, 7)
    with torch.no_grad():
        first = attn(x)
        other = _attention()
        other.attention_biases.data.normal_()
        attn.load_state_dict(other.state_dict())  # in eval mode
        assert torch.allclose(attn(x), other(x), atol=1e-6)
        assert not torch.allclose(attn(x), first)
    # an optimiser step in training mode, then eval again
    attn.train()
    attn(x).sum().backward()
    with torch.no_grad():
        attn.attention_biases.add_(1.0 * attn.attention_biases.grad.sign())
    attn.eval()
    fresh = _attention()
    fresh.load_state_dict(attn.state_dict())
    with torch.no_grad():
        assert torch.allclose(attn(x), fresh(x), atol=1e-6)
        doubled = attn.double()(x.double())
    assert doubled.dtype == torch.float64
    assert torch.allclose(doubled.float(), fresh(x), atol=1e-5)


def test_bias_cache_follows_device_moves():
    """After .to(), the cache must not serve a table from the old device."""
    model = EfficientViT('m0').eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))  # fills the caches on the CPU
        model.to('meta')
        feats = model(torch.randn(1, 3, 64, 64, device='meta'))
    assert all(f.device.type == 'meta' for f in feats)


def test_bias_gradient_flows_in_eval_mode_when_wanted():
    attn = _attention().eval()
    attn(torch.randn(1, 64, 7, 7)).sum().backward()
    assert attn.attention_biases.grad is not None


def test_attention_biases_get_no_weight_decay_through_custom_keys():
    from mmengine.optim import build_optim_wrapper
    model = EfficientViT('m0')
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
            paramwise_cfg=dict(
                custom_keys={'attention_biases': dict(decay_mult=0.)})))
    biases = {id(m.attention_biases) for _, m in model.attention_layers()}
    assert len(biases) == 6
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            expected = 0. if id(p) in biases else 0.05
            assert group['weight_decay'] == expected


# ------------------------------------------------------------- MHSA flag
def test_cascade_off_feeds_every_head_all_channels():
    model = EfficientViT('m0', cascade=False).eval()
    attn = model.stages[0].blocks[0].attn
    assert attn.qkvs[0].conv.in_channels == 64
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64))[0].shape == (1, 64, 4, 4)


def test_model_copied_under_inference_mode_still_runs():
    """Parameters made inside inference_mode are inference tensors, which
    have no version counter: the bias cache must not rely on one."""
    model = _randomise(EfficientViT('m0')).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        twin = copy.deepcopy(model)
        assert twin.stages[0].blocks[0].attn.attention_biases.is_inference()
        for a, b in zip(model(x), twin(x)):
            assert torch.equal(a, b)
