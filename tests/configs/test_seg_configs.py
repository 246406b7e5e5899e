"""ADE20K segmentation configs: what they build, the feature pyramid the
heads see, the optimisation recipes and the SyncBN / BN switch."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from torch.nn.modules.batchnorm import SyncBatchNorm

from efficientvit_mm.apis import build_model
from helpers import ROOT

FPN = {
    arch: osp.join(ROOT, 'configs', f'fpn_efficientvit_{arch}_ade20k.py')
    for arch in ('m0', 'm4', 'm5')
}
UPERNET = osp.join(ROOT, 'configs', 'upernet_efficientvit_m4_ade20k.py')
ALL = [*FPN.values(), UPERNET]
# stage widths of the released models (paper, Table 1)
WIDTHS = {'m0': [64, 128, 192], 'm4': [128, 256, 384], 'm5': [192, 288, 384]}


def seg_samples(num, h, w, num_classes):
    """Data samples with random label maps, for loss-mode forwards."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    out = []
    for _ in range(num):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, h, w)))
        sample.set_metainfo(dict(img_shape=(h, w), pad_shape=(h, w)))
        out.append(sample)
    return out


def load(path):
    return Config.fromfile(path)


def scratch_model(cfg):
    """The config's model without its ImageNet checkpoint (not shipped)."""
    cfg = cfg.copy()
    cfg.model.backbone.init_cfg = None
    return build_model(cfg)


@pytest.mark.parametrize('path', ALL, ids=osp.basename)
def test_ade20k_data_and_no_resnet_url(path):
    cfg = load(path)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(imports=['efficientvit_mm'],
                                      allow_failed_imports=False)
    assert cfg.model.pretrained is None
    backbone = cfg.model.backbone
    arch = backbone.arch
    assert backbone.type == 'EfficientViT' and backbone.window_size == 7
    assert backbone.init_cfg == dict(
        type='Pretrained', checkpoint=f'checkpoints/efficientvit_{arch}.pth')
    assert cfg.model.decode_head.num_classes == 150
    assert cfg.data_root == 'data/ade/ADEChallengeData2016'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[key].dataset
        assert ds.type == 'ADE20KDataset'
        assert ds.data_root == 'data/ade/ADEChallengeData2016'
        split = 'training' if key == 'train_dataloader' else 'validation'
        assert ds.data_prefix == dict(img_path=f'images/{split}',
                                      seg_map_path=f'annotations/{split}')
        ann = [t for t in ds.pipeline if t.type == 'LoadAnnotations']
        assert ann[0].reduce_zero_label is True
    crop = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t.type == 'RandomCrop'
    ]
    assert tuple(crop[0].crop_size) == (512, 512)
    assert tuple(cfg.model.data_preprocessor.size) == (512, 512)

    # EncoderDecoder hands `pretrained` to the backbone: it must keep ours
    model = build_model(cfg)
    assert model.backbone.init_cfg['checkpoint'] == \
        f'checkpoints/efficientvit_{arch}.pth'


@pytest.mark.parametrize('arch', ['m0', 'm4', 'm5'])
def test_fpn_pyramid_strides_and_channels(arch):
    cfg = load(FPN[arch])
    assert cfg.model.neck.in_channels == WIDTHS[arch]
    model = scratch_model(cfg).eval()
    h, w = 128, 192  # not square, to catch swapped sizes
    with torch.no_grad():
        stages = model.backbone(torch.randn(1, 3, h, w))
        assert [f.shape[1] for f in stages] == WIDTHS[arch]
        levels = model.neck(stages)
        # 2 transposed-conv levels + stages 1-2: strides 4 ... 32 (stage 3
        # at stride 64 only feeds the top-down path)
        assert [tuple(f.shape[1:]) for f in levels
                ] == [(256, h // s, w // s) for s in (4, 8, 16, 32)]
        logits = model(torch.randn(1, 3, h, w), None, mode='tensor')
    head = model.decode_head
    assert head.in_index == [0, 1, 2, 3]
    assert list(head.feature_strides) == [4, 8, 16, 32]
    assert head.in_channels == [256] * 4
    assert logits.shape == (1, 150, h // 4, w // 4)


def test_upernet_pyramid():
    cfg = load(UPERNET)
    model = scratch_model(cfg).eval()
    h, w = 128, 192
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        levels = model.extract_feat(x)
        logits = model(x, None, mode='tensor')
    head, aux = model.decode_head, model.auxiliary_head
    assert [tuple(levels[i].shape[1:]) for i in head.in_index
            ] == [(256, h // s, w // s) for s in (4, 8, 16, 32)]
    assert head.channels == 512 and head.in_channels == [256] * 4
    # the auxiliary FCN head reads the stride-16 level
    assert levels[aux.in_index].shape[2:] == (h // 16, w // 16)
    assert aux.in_channels == 256
    assert logits.shape == (1, 150, h // 4, w // 4)


@pytest.mark.parametrize('path', [FPN['m4'], UPERNET], ids=osp.basename)
def test_stride64_stage_feeds_the_heads(path):
    """The stride-64 stage is used (its lateral joins the top-down path) and
    the neck builds no output conv nobody reads: every parameter trains, so
    DDP needs no find_unused_parameters."""
    cfg = load(path)
    assert not cfg.get('find_unused_parameters', False)
    model = scratch_model(cfg)
    model.train()
    x = torch.randn(2, 3, 128, 128)
    losses = model(x, seg_samples(2, 128, 128, 150), mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    neck = model.neck
    assert len(neck.lateral_convs) == 3 and len(neck.fpn_convs) == 2
    used = neck.lateral_convs[2].conv.weight.grad
    assert used is not None and used.abs().sum() > 0
    unused = [
        n for n, p in model.named_parameters()
        if p.requires_grad and p.grad is None
    ]
    assert unused == []

    # changing the stride-64 stage alone changes the prediction
    model.eval()
    with torch.no_grad():
        stages = model.backbone(x)
        base = model.decode_head(model.neck(stages))
        moved = list(stages)
        moved[2] = moved[2] + 1.
        other = model.decode_head(model.neck(moved))
    assert not torch.allclose(base, other)


def _groups_by_name(optim_wrapper, model):
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in optim_wrapper.optimizer.param_groups:
        for p in group['params']:
            out[names[id(p)]] = group
    return out


def test_fpn_recipe():
    from mmengine.optim import build_optim_wrapper
    cfg = load(FPN['m4'])
    model = scratch_model(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    opt = wrapper.optimizer
    assert type(opt).__name__ == 'AdamW'
    groups = _groups_by_name(wrapper, model)
    biases = [n for n in groups if n.endswith('attention_biases')]
    assert len(biases) == 6  # M4: 1 + 2 + 3 blocks
    for name, group in groups.items():
        assert group['lr'] == pytest.approx(2e-4)
        expect = 0. if name.endswith('attention_biases') else 1e-4
        assert group['weight_decay'] == pytest.approx(expect), name
    (poly, ) = cfg.param_scheduler
    assert poly.type == 'PolyLR' and poly.power == 0.9
    assert (poly.begin, poly.end) == (0, 40000) and not poly.by_epoch
    assert cfg.train_cfg.max_iters == 40000
    # 4 GPUs x 8 images
    assert cfg.train_dataloader.batch_size * 4 == 32
    assert cfg.auto_scale_lr.base_batch_size == 32


def test_upernet_recipe():
    from mmengine.optim import build_optim_wrapper
    cfg = load(UPERNET)
    model = scratch_model(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    opt = wrapper.optimizer
    assert type(opt).__name__ == 'AdamW'
    norms = {
        f'{m}.{p}'
        for m, mod in model.named_modules()
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)
        for p, _ in mod.named_parameters(recurse=False)
    }
    assert norms
    for name, group in _groups_by_name(wrapper, model).items():
        assert group['lr'] == pytest.approx(6e-5)
        assert tuple(group['betas']) == (0.9, 0.999)
        no_decay = name.endswith('attention_biases') or name in norms
        assert group['weight_decay'] == pytest.approx(
            0. if no_decay else 0.01), name
    warmup, poly = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and (warmup.begin, warmup.end) == (0,
                                                                        1500)
    assert poly.type == 'PolyLR' and (poly.begin, poly.end) == (1500, 160000)
    assert cfg.train_cfg.max_iters == 160000
    # 8 GPUs x 2 images
    assert cfg.train_dataloader.batch_size * 8 == 16
    assert cfg.auto_scale_lr.base_batch_size == 16


@pytest.mark.parametrize('path', [FPN['m4'], UPERNET], ids=osp.basename)
def test_heads_use_syncbn_for_gpus(path):
    """As built from the config (the multi-GPU case): SyncBN in the heads."""
    model = scratch_model(load(path))
    sync = [
        n for n, m in model.named_modules() if isinstance(m, SyncBatchNorm)
    ]
    assert sync and all(
        n.startswith(('decode_head.', 'auxiliary_head.')) for n in sync)


def test_one_process_runner_uses_plain_bn(tmp_path):
    """Single process (tools/train.py without a launcher): mmengine's Runner
    turns every SyncBN into BN, and a training step runs on the CPU."""
    from mmengine.runner import Runner
    cfg = load(FPN['m0'])
    cfg.model.backbone.init_cfg = None
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    runner = Runner.from_cfg(cfg)
    bns = [
        m for m in runner.model.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    assert bns and not any(isinstance(m, SyncBatchNorm) for m in bns)
    runner.model.train()
    logits = runner.model(torch.randn(2, 3, 64, 64), None, mode='tensor')
    assert logits.shape == (2, 150, 16, 16)


def test_cpu_processes_get_plain_bn():
    """Several CPU processes (gloo): SyncBN cannot run without GPUs, so the
    tools build it as BN; other norms are left alone."""
    from efficientvit_mm.runtime.dist import sync_bn_to_bn
    cfg = load(UPERNET)
    before = cfg.model.backbone.copy()
    assert sync_bn_to_bn(cfg.model) == 2  # decode head + auxiliary head
    assert cfg.model.decode_head.norm_cfg == dict(type='BN',
                                                  requires_grad=True)
    assert cfg.model.auxiliary_head.norm_cfg.type == 'BN'
    assert cfg.model.backbone == before
    model = scratch_model(cfg)
    assert not any(isinstance(m, SyncBatchNorm) for m in model.modules())
