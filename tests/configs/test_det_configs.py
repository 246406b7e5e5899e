"""The detection configs carry the paper's recipe."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from efficientvit_mm.models.backbones import EfficientViT
from helpers import ROOT

ARCHS = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']


def load(name):
    return Config.fromfile(osp.join(ROOT, 'configs', name))


def pipeline_step(pipeline, type_):
    steps = [s for s in pipeline if s['type'] == type_]
    assert len(steps) == 1, type_
    return steps[0]


def check_recipe(cfg):
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW'
    assert opt.optimizer.lr == 1e-4
    assert tuple(opt.optimizer.betas) == (0.9, 0.999)
    assert opt.optimizer.weight_decay == 0.05
    assert opt.paramwise_cfg.custom_keys['attention_biases'] == dict(
        decay_mult=0.)
    assert cfg.train_cfg.max_epochs == 12
    warmup, step = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and not warmup.by_epoch
    assert (warmup.start_factor, warmup.end) == (0.001, 500)
    assert step.type == 'MultiStepLR' and step.milestones == [8, 11]
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 16
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert tuple(pipeline_step(pipeline, 'Resize')['scale']) == (1333, 800)
    assert pipeline_step(pipeline, 'RandomFlip')['prob'] == 0.5
    assert cfg.data_root == 'data/coco/'
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    assert cfg.custom_imports == dict(imports=['efficientvit_mm'],
                                      allow_failed_imports=False)
    bb = cfg.model.backbone
    assert bb.type == 'EfficientViT' and bb.window_size == 7
    assert bb.norm_eval is True and bb.frozen_stages == -1
    assert bb.init_cfg == dict(
        type='Pretrained',
        checkpoint=f'checkpoints/efficientvit_{bb.arch}.pth')


@pytest.mark.parametrize('arch', ARCHS)
def test_retinanet_configs(arch):
    cfg = load(f'retinanet_efficientvit_{arch}_coco.py')
    check_recipe(cfg)
    assert cfg.model.backbone.arch == arch
    neck = cfg.model.neck
    assert neck.type == 'EfficientViTFPN'
    assert neck.in_channels == EfficientViT(arch).out_channels
    assert (neck.out_channels, neck.start_level, neck.num_outs) == (256, 0, 5)
    assert neck.num_extra_trans_convs == 1
    assert neck.add_extra_convs == 'on_input'
    assert cfg.model.bbox_head.anchor_generator.strides == [8, 16, 32, 64, 128]


def test_mask_rcnn_config():
    cfg = load('mask_rcnn_efficientvit_m4_coco.py')
    check_recipe(cfg)
    neck = cfg.model.neck
    assert neck.num_extra_trans_convs == 2 and neck.add_extra_convs is False
    assert neck.num_outs == 5
    assert cfg.model.rpn_head.anchor_generator.strides == [4, 8, 16, 32, 64]
    metrics = cfg.val_evaluator.metric
    assert 'bbox' in metrics and 'segm' in metrics


def test_attention_biases_get_no_weight_decay():
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    init_default_scope('mmdet')
    cfg = load('retinanet_efficientvit_m0_coco.py')
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    seen = set()
    for group in optim.optimizer.param_groups:
        for p in group['params']:
            name = names[id(p)]
            if name.endswith('attention_biases'):
                assert group['weight_decay'] == 0, name
                seen.add(name)
            elif name.endswith('conv.weight'):
                assert group['weight_decay'] == 0.05, name
    assert len(seen) == 6  # one per block of M0 (1 + 2 + 3)
    assert isinstance(optim.optimizer, torch.optim.AdamW)
