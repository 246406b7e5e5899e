"""Checkpoints fit or fail: tools/test.py, load_from and --resume check the
file against the built model before anything runs (runtime/checkpoints)."""
import logging
import types

import pytest
import torch
from mmengine.config import Config
from torch import nn

from efficientvit_mm.checkpoint import extract_state_dict
from efficientvit_mm.errors import CheckpointMismatchError, ResumeError
from efficientvit_mm.models.backbones import EfficientViT
from efficientvit_mm.runtime.checkpoints import check_fit, prepare_start
from helpers import load_reference


class Det(nn.Module):
    """backbone / neck / bbox_head, like an mmdet detector."""

    def __init__(self, num_classes=4, width=8):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, width, 3), nn.BatchNorm2d(width))
        self.neck = nn.Conv2d(width, 8, 1)
        self.bbox_head = nn.Conv2d(8, num_classes, 1)


def fit(model, state, mode='test'):
    return check_fit(model.state_dict(), state, 'ckpt.pth', mode, 'CONFIG')


def mismatch(model, state, mode='test') -> str:
    with pytest.raises(CheckpointMismatchError) as err:
        fit(model, state, mode)
    msg = str(err.value)
    assert len(msg.splitlines()) <= 4
    return msg


def test_a_checkpoint_of_another_arch_fails_with_counts_keys_and_fix():
    msg = mismatch(Det(), Det(width=16).state_dict())
    assert 'checkpoint ckpt.pth does not fit the model of CONFIG' in msg
    assert '4/11 keys match; 7 shape mismatches' in msg
    assert "'backbone.0.weight: checkpoint (16, 3, 3, 3) vs model " \
        "(8, 3, 3, 3)'" in msg
    assert 'same arch, neck and head' in msg


def test_a_file_with_deleted_keys_fails():
    state = Det().state_dict()
    for key in ['neck.weight', 'neck.bias', 'bbox_head.bias']:
        del state[key]
    msg = mismatch(Det(), state)
    assert '3 missing' in msg and 'lacks weights the model has' in msg


def test_release_files_and_backbone_weights_are_recognised():
    backbone = EfficientViT(arch='m0').state_dict()
    model = {f'backbone.{k}': v for k, v in backbone.items()}
    model.update({'neck.w': torch.zeros(2), 'bbox_head.w': torch.zeros(2)})
    official = extract_state_dict(load_reference('official_cls_m0.pth'))
    with pytest.raises(
            CheckpointMismatchError,
            match='official release file: convert it first: '
            'python tools/convert_checkpoint.py ckpt.pth'):
        check_fit(model, official, 'ckpt.pth', 'test', 'CONFIG')
    with pytest.raises(
            CheckpointMismatchError,
            match='backbone weights only.*init_cfg.checkpoint='
            'ckpt.pth'):
        check_fit(model, dict(backbone), 'ckpt.pth', 'load_from', 'CONFIG')


def test_load_from_lets_only_the_head_differ():
    """Fine-tuning a detector trained with 80 classes on 4."""
    model = Det(num_classes=4)
    coco = Det(num_classes=80).state_dict()
    mismatch(model, coco, 'test')  # a test needs every weight
    kept, left_out, warning = fit(model, coco, 'load_from')
    assert left_out == {'bbox_head.weight', 'bbox_head.bias'}
    assert set(kept) == set(coco) - left_out
    assert 'load_from ckpt.pth: 2 weights of bbox_head do not fit' in warning
    assert '\n' not in warning
    other_neck = Det(num_classes=80)
    other_neck.neck = nn.Conv2d(8, 16, 1)
    msg = mismatch(model, other_neck.state_dict(), 'load_from')
    assert 'neck.weight' in msg and 'only head weights may differ' in msg


def fake_runner(model, work_dir):
    calls = []
    return types.SimpleNamespace(
        model=model, logger=logging.getLogger('fit-test'), work_dir=work_dir,
        call_hook=lambda name, **kw: calls.append(name), _load_from=None,
        load_checkpoint=lambda *a, **k: pytest.fail('read the file again'),
        hook_calls=calls)


def test_the_checked_weights_are_what_the_runner_loads(tmp_path):
    """A {'model': ...} file mmengine would load nothing from."""
    source = Det(num_classes=80)
    path = str(tmp_path / 'wrapped.pth')
    torch.save({'model': source.state_dict()}, path)
    runner = fake_runner(Det(num_classes=4), str(tmp_path))
    cfg = Config(dict(load_from=path, work_dir=str(tmp_path)))
    assert prepare_start(runner, cfg, 'train', 'CONFIG') == path
    assert runner._load_from == path
    runner.load_checkpoint(path)
    assert runner.hook_calls == ['after_load_checkpoint']
    assert torch.equal(runner.model.neck.weight, source.neck.weight)
    assert not torch.equal(runner.model.bbox_head.bias[:4],
                           source.bbox_head.bias[:4])


def test_resume_explains_weights_only_files_and_empty_work_dirs(tmp_path):
    weights = str(tmp_path / 'weights.pth')
    torch.save({'state_dict': Det().state_dict()}, weights)
    runner = fake_runner(Det(), str(tmp_path))
    cfg = Config(dict(resume=True, load_from=weights, work_dir=str(tmp_path)))
    with pytest.raises(
            ResumeError, match='weights only.*use load_from instead of '
            f'--resume: --cfg-options load_from={weights}'):
        prepare_start(runner, cfg, 'train', 'CONFIG')
    empty = tmp_path / 'empty'
    empty.mkdir()
    cfg = Config(dict(resume=True, load_from=None, work_dir=str(empty)))
    with pytest.raises(
            ResumeError, match=f'nothing to resume in {empty}: '
            f'{empty}/last_checkpoint is missing'):
        prepare_start(runner, cfg, 'train', 'CONFIG')


def test_other_files_reach_the_runners_loader_with_all_arguments(tmp_path):
    path = str(tmp_path / 'start.pth')
    torch.save({'state_dict': Det().state_dict()}, path)
    runner = fake_runner(Det(), str(tmp_path))
    plain_calls = []
    runner.load_checkpoint = lambda *a, **k: plain_calls.append((a, k))
    cfg = Config(dict(load_from=path, work_dir=str(tmp_path)))
    prepare_start(runner, cfg, 'train', 'CONFIG')
    runner.load_checkpoint('other.pth', map_location='cpu', strict=True,
                           revise_keys=[('^a.', '')])
    assert plain_calls == [(('other.pth', ),
                            dict(map_location='cpu', strict=True,
                                 revise_keys=[('^a.', '')]))]
    runner.load_checkpoint(path)  # the checked file: loaded here
    assert len(plain_calls) == 1 and runner._has_loaded
    runner.load_checkpoint(path)  # asked again: read as mmengine does
    assert plain_calls[-1] == ((path, ), {})
