"""The transfer-learning chain of tools/transfer_demo.py on tiny data: a
classifier checkpoint written by training, the RetinaNet config of the
walkthrough initialised from it (every backbone tensor loaded, none
missing), a training step of the detector; and the walkthrough's helpers."""
import os.path as osp

import pytest
import torch

from efficientvit_mm.checkpoint import (compare_state_dict,
                                        resize_attention_bias)
from efficientvit_mm.demo.transfer import (CLS_CONFIG, DET_CONFIG,
                                           backbone_load_line,
                                           schedule_options,
                                           transfer_demo_main)
from efficientvit_mm.runtime import load_config
from helpers import ROOT

ONE_PROCESS = {
    f'{key}.{opt}': value
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    for opt, value in (('num_workers', 0), ('persistent_workers', False))
}


@pytest.fixture(scope='module')
def classifier_checkpoint(tmp_path_factory):
    """One iteration of the walkthrough's classifier on a few crops, saved
    by mmengine as ``tools/train.py`` saves it."""
    from mmengine.runner import Runner

    from efficientvit_mm.datasets import export_crops
    root = tmp_path_factory.mktemp('transfer')
    export_crops(
        str(root / 'crops'), dict(train=4, val=1), crop_size=64,
        image_size=128, num_objects=(2, 3), size_range=(0.15, 0.3))
    cfg = load_config(
        osp.join(ROOT, CLS_CONFIG),
        dict(
            ONE_PROCESS, data_root=str(root / 'crops'),
            work_dir=str(root / 'cls'), **{
                'train_cfg.max_epochs': 1,
                'train_cfg.val_interval': 2,
                'train_dataloader.batch_size': 16,
                'default_hooks.checkpoint.interval': 1,
                'default_hooks.checkpoint.save_best': None
            }))
    Runner.from_cfg(cfg).train()
    return str(root / 'cls' / 'epoch_1.pth')


def test_detector_backbone_from_the_classifier(classifier_checkpoint,
                                               tiny_coco):
    from mmengine.optim import OptimWrapper
    from mmengine.runner import Runner

    from efficientvit_mm.apis import build_model
    cfg = load_config(
        osp.join(ROOT, DET_CONFIG),
        dict(
            ONE_PROCESS, data_root=tiny_coco, **{
                'model.backbone.init_cfg.checkpoint': classifier_checkpoint,
                'train_dataloader.batch_size': 4
            }))
    detector = build_model(cfg)
    detector.init_weights()

    classifier = torch.load(classifier_checkpoint,
                            weights_only=False)['state_dict']
    expected = {
        k[len('backbone.'):]: v
        for k, v in classifier.items() if k.startswith('backbone.')
    }
    loaded = detector.backbone.state_dict()
    report = compare_state_dict(loaded, expected)
    assert not report.missing and not report.unexpected
    # the classifier's 4x4 stage-3 windows, resized to the 7x7 windows
    biases = [m.split(':')[0] for m in report.mismatched]
    assert biases == [
        f'stages.2.blocks.{i}.attn.attention_biases' for i in range(3)
    ]
    for key, value in loaded.items():
        want = expected[key]
        if key in biases:
            want = resize_attention_bias(want, value.shape[1])
        assert torch.equal(value, want), key

    # a training step of the detector on the shapes scenes
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    stem = detector.backbone.patch_embed[0].conv.weight
    before = stem.detach().clone()
    optim = OptimWrapper(torch.optim.AdamW(detector.parameters(), lr=1e-3))
    detector.train()
    losses = detector.train_step(batch, optim)
    assert torch.isfinite(
        sum(v for k, v in losses.items() if k.startswith('loss')))
    assert not torch.equal(before, stem)  # the backbone trains too


def test_backbone_load_line(tmp_path):
    log = tmp_path / 'train_stdout.log'
    log.write_text('x - mmengine - INFO - something\n'
                   '12/01 21:48:57 - mmengine - INFO - loaded 686 '
                   'EfficientViT backbone tensors from a.pth (efficientvit_mm'
                   ' layout)\n')
    assert backbone_load_line(str(log)).startswith('loaded 686 ')
    log.write_text('nothing loaded\n')
    assert backbone_load_line(str(log)) is None


def test_schedule_options():
    assert schedule_options(None) == {}
    opts = schedule_options(3)
    cfg = load_config(osp.join(ROOT, DET_CONFIG), opts)
    assert cfg.train_cfg.max_epochs == cfg.train_cfg.val_interval == 3
    cosine = cfg.param_scheduler[1]
    assert cosine.type == 'CosineAnnealingLR' and cosine.end == 3 \
        and cosine.T_max == 3
    assert cfg.default_hooks.checkpoint.interval == 3


def test_bad_epochs(capsys):
    with pytest.raises(SystemExit):
        transfer_demo_main(['--epochs', '0'])
    assert '--epochs must be at least 1' in capsys.readouterr().err
