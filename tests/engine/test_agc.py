"""Adaptive gradient clipping and its optim wrappers."""
import pytest
import torch
import torch.nn as nn

from efficientvit_mm.engine import (AGCOptimWrapper, adaptive_clip_grad_,
                                    amp_optim_wrapper)


def test_agc_clips_each_unit_relative_to_its_weight_norm():
    w = nn.Parameter(torch.tensor([[3., 4.], [0.3, 0.4]]))  # norms 5, 0.5
    w.grad = torch.tensor([[0.06, 0.08], [0.6, 0.8]])  # norms 0.1, 1.0
    frac = adaptive_clip_grad_([w], clip_factor=0.1)
    # unit 0: 0.1 <= 0.1 * 5 -> untouched; unit 1: 1.0 > 0.05 -> scaled
    assert torch.allclose(w.grad[0], torch.tensor([0.06, 0.08]))
    assert torch.allclose(w.grad[1].norm(), torch.tensor(0.05), atol=1e-6)
    assert torch.allclose(w.grad[1] / w.grad[1].norm(),
                          torch.tensor([0.6, 0.8]))
    assert frac.item() == pytest.approx(0.5)


def test_agc_is_unit_wise_for_conv_weights():
    w = nn.Parameter(torch.ones(2, 3, 3, 3))  # unit norms sqrt(27)
    w.grad = torch.ones(2, 3, 3, 3)
    w.grad[1] *= 1e-3
    adaptive_clip_grad_([w], clip_factor=0.1)
    limit = 0.1 * 27**0.5
    assert w.grad[0].norm().item() == pytest.approx(limit, rel=1e-5)
    assert torch.equal(w.grad[1], torch.full((3, 3, 3), 1e-3))


def test_agc_uses_eps_for_zero_initialised_weights():
    b = nn.Parameter(torch.zeros(3))
    b.grad = torch.ones(3)
    adaptive_clip_grad_([b], clip_factor=0.02, eps=1e-3)
    assert b.grad.norm().item() == pytest.approx(0.02 * 1e-3, rel=1e-4)


def test_agc_optim_wrapper_clips_before_the_step():
    model = nn.Linear(4, 2)
    wrapper = AGCOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=1.),
        clip_grad=dict(type='agc', clip_factor=0.01))
    before = model.weight.detach().clone()
    loss = model(torch.full((8, 4), 100.)).sum()
    wrapper.update_params(loss)
    step = (model.weight.detach() - before).norm(dim=1)
    assert (step <= 0.01 * before.norm(dim=1).clamp(min=1e-3) + 1e-6).all()
    with pytest.raises(ValueError, match='unknown arguments'):
        AGCOptimWrapper(
            torch.optim.SGD(model.parameters(), lr=1.),
            clip_grad=dict(type='agc', max_norm=1.))


def test_other_clip_types_pass_through():
    model = nn.Linear(4, 2)
    wrapper = AGCOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=1.),
        clip_grad=dict(max_norm=1.))
    assert wrapper.clip_func is torch.nn.utils.clip_grad_norm_


def test_amp_twin_of_each_optim_wrapper():
    agc = dict(type='AGCOptimWrapper', optimizer=dict(type='AdamW'))
    assert amp_optim_wrapper(agc) == dict(type='AGCAmpOptimWrapper',
                                          optimizer=dict(type='AdamW'),
                                          loss_scale='dynamic')
    plain = amp_optim_wrapper(
        dict(optimizer=dict(type='SGD'), loss_scale=512.))
    assert plain['type'] == 'AmpOptimWrapper' and plain['loss_scale'] == 512.
    with pytest.raises(ValueError, match='no mixed-precision twin'):
        amp_optim_wrapper(dict(type='ApexOptimWrapper'))


def test_agc_clips_non_contiguous_grads_in_place():
    # a channels_last conv grad reshapes to a copy, not a view
    w = nn.Parameter(
        torch.ones(2, 3, 3, 3).contiguous(memory_format=torch.channels_last))
    w.grad = torch.ones_like(w)
    assert not w.grad.is_contiguous()
    frac = adaptive_clip_grad_([w], clip_factor=0.1)
    limit = 0.1 * 27**0.5
    assert frac.item() == 1.
    for unit in w.grad:
        assert unit.norm().item() == pytest.approx(limit, rel=1e-5)
