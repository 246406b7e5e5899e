"""One attention algorithm for NCHW and channels_last maps, folded or not,
with one windowing helper."""
import copy

import pytest
import torch

from efficientvit_mm.models.layers import (CascadedGroupAttention,
                                           window_partition, window_reverse)
from efficientvit_mm.models.layers.attention import _softmax
from efficientvit_mm.testing import randomise

LAYOUTS = [torch.contiguous_format, torch.channels_last]


@pytest.mark.parametrize('memory_format', LAYOUTS)
@pytest.mark.parametrize('hw', [(14, 14), (9, 20), (7, 7), (3, 5)])
def test_windows_round_trip_in_the_input_layout(memory_format, hw):
    x = torch.randn(2, 6, *hw).contiguous(memory_format=memory_format)
    windows, grid = window_partition(x, 7)
    n_h, n_w = -(-hw[0] // 7), -(-hw[1] // 7)
    assert windows.shape == (2 * n_h * n_w, 6, 7, 7)
    # the channels_last input is cut in NHWC order: windows stay NHWC
    assert windows.is_contiguous(memory_format=memory_format)
    assert torch.equal(window_reverse(windows, grid), x)
    # window k of image 0 is the (k // n_w, k % n_w) tile, zero-padded
    padded = torch.zeros(2, 6, 7 * n_h, 7 * n_w)
    padded[:, :, :hw[0], :hw[1]] = x
    last = padded[0, :, 7 * (n_h - 1):, 7 * (n_w - 1):]
    assert torch.equal(windows[n_h * n_w - 1], last)


@pytest.mark.parametrize('hw', [(14, 21), (10, 9), (5, 6)])
@pytest.mark.parametrize('cascade', [True, False])
def test_layouts_and_folding_give_one_answer(hw, cascade):
    attn = randomise(
        CascadedGroupAttention(64, 16, 4, window_size=7, cascade=cascade))
    attn.eval()
    x = torch.randn(2, 64, *hw)
    folded = copy.deepcopy(attn)
    for layer in folded.modules():
        if hasattr(layer, 'fuse'):
            layer.fuse()
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = attn(x)
        outs = [attn(x_cl), folded(x), folded(x_cl)]
        heads_nchw = attn.head_outputs(x[..., :5, :5].contiguous())
        heads_cl = attn.head_outputs(
            x_cl[..., :5, :5].contiguous(memory_format=torch.channels_last))
    for out in outs:
        assert (out - ref).abs().max() <= 1e-4
    # the channels_last cascade stays channels_last, head by head
    assert all(
        h.is_contiguous(memory_format=torch.channels_last) for h in heads_cl)
    for a, b in zip(heads_nchw, heads_cl):
        assert (a - b).abs().max() <= 1e-5


def test_training_gradients_match_between_layouts():
    attn = randomise(CascadedGroupAttention(32, 16, 2, window_size=4)).train()
    x = torch.randn(2, 32, 9, 6, requires_grad=True)
    attn(x).square().sum().backward()
    grads = [p.grad.clone() for p in attn.parameters()]
    attn.zero_grad()
    x_cl = x.detach().contiguous(memory_format=torch.channels_last)
    attn(x_cl.requires_grad_()).square().sum().backward()
    for a, p in zip(grads, attn.parameters()):  # to float rounding
        assert (a - p.grad).abs().max() <= 1e-5 * a.abs().max()


def test_bf16_attention_takes_its_softmax_in_fp32():
    """bf16 attention on the CPU: the softmax is computed in fp32 (faster
    there, and exact to bf16's rounding), and the attention stays bf16."""
    attn = randomise(CascadedGroupAttention(64, 16, 4)).eval()
    fast = copy.deepcopy(attn).to(torch.bfloat16)
    x = torch.randn(2, 64, 7, 7)
    with torch.no_grad():
        ref = attn(x)
        out = fast(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert float((out.float() - ref).abs().max() / ref.abs().max()) < 3e-2
    scores = torch.randn(3, 49, 49).mul_(8).to(torch.bfloat16)
    probs = _softmax(scores)
    assert probs.dtype == torch.bfloat16
    expected = scores.float().softmax(-1).to(torch.bfloat16)
    assert torch.equal(probs, expected)
    # bf16's own softmax rounds each step: fp32 is the better reference
    assert (probs.float() - scores.float().softmax(-1)).abs().max() <= \
        (scores.softmax(-1).float() - scores.float().softmax(-1)).abs().max()
