"""The classifier head and whole-model deploy."""
import pytest
import torch
import torch.nn as nn

from efficientvit_mm.deploy import switch_to_deploy
from efficientvit_mm.models import EfficientViTClsHead


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


def test_loss_is_mmpretrains_under_any_current_scope():
    """Built while another toolbox's scope is current (a detector's config
    ran before), the head still finds mmpretrain's CrossEntropyLoss."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = EfficientViTClsHead(num_classes=3, in_channels=8)
    assert type(head.loss_module).__module__.startswith('mmpretrain.')
