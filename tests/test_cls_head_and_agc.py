"""The classifier head, the AGC optimiser wrapper and whole-model deploy."""
import pytest
import torch
import torch.nn as nn

from efficientvit_mm.engine import AGCOptimWrapper, adaptive_clip_grad_
from efficientvit_mm.models import EfficientViTClsHead, switch_to_deploy


def _head(**kwargs):
    head = EfficientViTClsHead(num_classes=10, in_channels=32, **kwargs)
    for classifier in (head.classifier, head.dist_classifier):
        if classifier is None:
            continue
        bn = classifier.bn
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_()
    return head


def test_head_is_batchnorm_then_linear():
    head = _head().eval()
    x = torch.randn(4, 32)
    bn, fc = head.classifier.bn, head.classifier.fc
    assert torch.allclose(head((x, )), fc(bn(x)), atol=1e-6)


def test_distillation_logits_are_averaged_in_eval():
    head = _head(distillation=True).eval()
    x = torch.randn(4, 32)
    expected = (head.classifier(x) + head.dist_classifier(x)) / 2
    assert torch.allclose(head((x, )), expected)
    head.train()
    with pytest.raises(RuntimeError, match='needs a teacher'):
        head((x, ))


def test_head_switch_to_deploy_folds_bn_into_linear():
    head = _head(distillation=True).eval()
    x = torch.randn(4, 32)
    before = head((x, ))
    switch_to_deploy(head)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in head.modules())
    assert torch.allclose(head((x, )), before, atol=1e-5)
    direct = EfficientViTClsHead(10, 32, distillation=True, deploy=True)
    direct.load_state_dict(head.state_dict(), strict=True)


def test_head_needs_pooled_features():
    with pytest.raises(ValueError, match='GlobalAveragePooling'):
        _head()((torch.randn(2, 32, 4, 4), ))


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
        AGCOptimWrapper(torch.optim.SGD(model.parameters(), lr=1.),
                        clip_grad=dict(type='agc', max_norm=1.))


def test_other_clip_types_pass_through():
    model = nn.Linear(4, 2)
    wrapper = AGCOptimWrapper(torch.optim.SGD(model.parameters(), lr=1.),
                              clip_grad=dict(max_norm=1.))
    assert wrapper.clip_func is torch.nn.utils.clip_grad_norm_
