"""Every config's neck (or classifier head) reads the widths of its
backbone; a changed arch that leaves them behind stops before training."""
import glob
import os.path as osp

import pytest
import torch

from efficientvit_mm.errors import PreflightError
from efficientvit_mm.models import EfficientViT, EfficientViTFPN
from efficientvit_mm.runtime import load_config
from efficientvit_mm.runtime.preflight import check_widths
from helpers import ROOT, load_tool

CONFIGS = sorted(
    p for p in glob.glob(
        osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)
M4 = osp.join(ROOT, 'configs', 'retinanet_efficientvit_m4_coco.py')


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_every_config_has_matching_widths(path):
    check_widths(load_config(path))


def test_stage_widths_follow_arch_and_out_indices():
    assert EfficientViT.stage_widths('m2') == [128, 192, 224]
    assert EfficientViT.stage_widths('m5', (2, )) == [384]
    assert EfficientViT.stage_widths('m0', (-1, 0)) == [64, 192]


def test_arch_change_alone_names_the_neck_widths(capsys):
    train = load_tool('train')
    assert train.main([M4, '--cfg-options', 'model.backbone.arch=m2']) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err and len(err.splitlines()) <= 5
    assert 'model.neck.in_channels is [128, 256, 384]' in err
    assert 'gives [128, 192, 224]' in err
    assert 'model.neck.in_channels=[128,192,224]' in err  # the fix
    assert 'configs/_base_/backbones/efficientvit_m2.py' in err
    # the fix it names passes the check
    cfg = load_config(M4, {
        'model.backbone.arch': 'm2',
        'model.neck.in_channels': [128, 192, 224]
    })
    check_widths(cfg)


def test_classifier_head_width_is_checked():
    cfg = load_config(
        osp.join(ROOT, 'configs', 'efficientvit_m4_in1k.py'),
        {'model.backbone.arch': 'm1'})
    with pytest.raises(
            PreflightError, match=r'model.head.in_channels is 384'
            r'.*gives 192.*efficientvit_m1_in1k.py'):
        check_widths(cfg)


def test_neck_itself_names_the_widths_it_was_given():
    neck = EfficientViTFPN([128, 256, 384], 32, num_outs=3)
    feats = [
        torch.randn(1, c, s, s) for c, s in ((128, 8), (192, 4), (224, 2))
    ]
    with pytest.raises(
            ValueError, match=r'maps of \[128, 192, 224\] '
            r'channels.*in_channels=\[128, 256, 384\].*'
            r'model.neck.in_channels="\[128,192,224\]"'):
        neck(feats)
