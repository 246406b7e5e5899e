"""Output strides and channels of the detection pyramids built from the
configs (RetinaNet: 8..128, Mask R-CNN: 4..64), odd input sizes included."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from helpers import ROOT


def build(config, arch=None, in_channels=None):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    cfg.model.backbone.init_cfg = None
    if arch:
        cfg.model.backbone.arch = arch
        cfg.model.neck.in_channels = in_channels
    return MODELS.build(cfg.model).eval()


def stride16(size):
    """Size of the backbone's stride-16 map: four 3x3 stride-2 convs."""
    for _ in range(4):
        size = math.ceil(size / 2)
    return size


def expected(h, w, fine, coarse):
    """(h, w) of every level: ``fine`` transposed-conv levels (x2 each)
    below stride 16, the backbone's 16/32/64, ``coarse`` stride-2 convs."""
    sizes = [(stride16(h), stride16(w))]
    for _ in range(2 + coarse):
        sizes.append(tuple(math.ceil(s / 2) for s in sizes[-1]))
    for _ in range(fine):
        sizes.insert(0, tuple(2 * s for s in sizes[0]))
    return sizes


def pyramid(model, hw):
    """The neck's maps for a (1, 3, *hw) input: five levels of 256."""
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, *hw))
    assert [f.shape[1] for f in feats] == [256] * 5
    return feats


@pytest.mark.parametrize('hw', [(256, 384), (225, 301), (97, 161)])
def test_retinanet_pyramid(hw):
    model = build('retinanet_efficientvit_m0_coco.py', 'm0', [64, 128, 192])
    feats = pyramid(model, hw)
    assert [tuple(f.shape[2:]) for f in feats] == expected(*hw, 1, 1)
    # the anchors of the head are laid out for strides 8..128
    strides = [s[0] for s in model.bbox_head.prior_generator.strides]
    assert strides == [8, 16, 32, 64, 128]
    # ... and the finest level really is 1/8 of the (padded) input
    assert feats[0].shape[2] == 2 * stride16(hw[0])


@pytest.mark.parametrize('hw', [(256, 320), (199, 263)])
def test_mask_rcnn_pyramid(hw):
    model = build('mask_rcnn_efficientvit_m4_coco.py')
    feats = pyramid(model, hw)
    assert [tuple(f.shape[2:]) for f in feats] == expected(*hw, 2, 0)
    rpn_strides = [s[0] for s in model.rpn_head.prior_generator.strides]
    assert rpn_strides == [4, 8, 16, 32, 64]
    roi = model.roi_head.bbox_roi_extractor.featmap_strides
    assert list(roi) == [4, 8, 16, 32]


def test_neck_key_names_match_the_official_neck():
    model = build('retinanet_efficientvit_m4_coco.py')
    keys = {k for k in model.state_dict() if k.startswith('neck.')}
    assert keys == {
        'neck.lateral_convs.0.conv.weight',
        'neck.lateral_convs.0.conv.bias',
        'neck.lateral_convs.1.conv.weight',
        'neck.lateral_convs.1.conv.bias',
        'neck.lateral_convs.2.conv.weight',
        'neck.lateral_convs.2.conv.bias',
        'neck.fpn_convs.0.conv.weight',
        'neck.fpn_convs.0.conv.bias',
        'neck.fpn_convs.1.conv.weight',
        'neck.fpn_convs.1.conv.bias',
        'neck.fpn_convs.2.conv.weight',
        'neck.fpn_convs.2.conv.bias',
        'neck.fpn_convs.3.conv.weight',
        'neck.fpn_convs.3.conv.bias',
        'neck.extra_trans_convs.0.conv.weight',
        'neck.extra_trans_convs.0.conv.bias',
        'neck.extra_fpn_convs.0.conv.weight',
        'neck.extra_fpn_convs.0.conv.bias',
    }
    # the extra conv reads the backbone's last map ('on_input')
    assert model.state_dict()['neck.fpn_convs.3.conv.weight'].shape[1] == 384


def test_fewer_outputs_drop_the_coarsest_levels_but_keep_their_context():
    """num_outs below backbone + transposed levels: the coarsest backbone
    levels get no output conv, yet still change the finer outputs."""
    from efficientvit_mm.models import EfficientViTFPN
    neck = EfficientViTFPN([64, 128, 192], 32, num_outs=4,
                           num_extra_trans_convs=2).eval()
    assert len(neck.fpn_convs) == 2
    feats = [
        torch.randn(1, c, 8 // 2**i, 12 // 2**i)
        for i, c in enumerate([64, 128, 192])
    ]
    with torch.no_grad():
        outs = neck(feats)
        moved = neck(feats[:2] + [feats[2] + 1])
    assert [tuple(o.shape[2:]) for o in outs] == [(32, 48), (16, 24), (8, 12),
                                                  (4, 6)]
    assert all(not torch.allclose(a, b) for a, b in zip(outs, moved))
    with pytest.raises(ValueError, match='raise num_outs to at least 5'):
        EfficientViTFPN([64, 128, 192], 32, num_outs=4,
                        num_extra_trans_convs=2, add_extra_convs='on_input')
    with pytest.raises(ValueError, match='at least one backbone level'):
        EfficientViTFPN([64, 128, 192], 32, num_outs=2,
                        num_extra_trans_convs=2)
