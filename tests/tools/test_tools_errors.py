"""Pre-flight errors of tools/train.py and tools/test.py: short messages
that say what is missing and how to fix it, exit code 1, no traceback."""
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config

from efficientvit_mm.runtime import (PreflightError, check_datasets,
                                     load_config, preflight_train)
from helpers import ROOT, load_tool, run_tool, tool_exit_status

M4 = osp.join(ROOT, 'configs', 'retinanet_efficientvit_m4_coco.py')
MASK = osp.join(ROOT, 'configs', 'mask_rcnn_efficientvit_m4_coco.py')


@pytest.fixture
def fake_coco(tmp_path, tiny_coco):  # noqa: F811
    """A COCO-shaped folder (annotations/instances_{train,val}2017.json,
    train2017/, val2017/) made of the tiny shapes set."""
    root = tmp_path / 'coco'
    (root / 'annotations').mkdir(parents=True)
    for split in ('train', 'val'):
        os.symlink(osp.join(tiny_coco, split), root / f'{split}2017')
        os.symlink(
            osp.join(tiny_coco, 'annotations', f'instances_{split}.json'),
            root / 'annotations' / f'instances_{split}2017.json')
    return str(root) + '/'


def test_missing_coco_subprocess(tmp_path):
    """The main job on a fresh machine: one short message, exit 1."""
    proc = run_tool([osp.join(ROOT, 'tools', 'train.py'), M4],
                    cwd=str(tmp_path), check=False)
    assert proc.returncode == 1
    err = proc.stderr
    assert 'Traceback' not in err
    assert len(err.splitlines()) < 20
    assert 'data/coco/annotations/instances_train2017.json' in err
    assert 'data/coco/train2017/' in err
    assert '--cfg-options data_root=' in err
    assert 'tools/shapes_demo.py det' in err  # the detection demo


def test_missing_pretrained_checkpoint(tmp_path, fake_coco, capsys,
                                       monkeypatch):
    monkeypatch.chdir(tmp_path)  # no checkpoints/ here
    train = load_tool('train')
    assert train.main([M4, '--cfg-options', f'data_root={fake_coco}']) == 1
    err = capsys.readouterr().err
    assert 'checkpoints/efficientvit_m4.pth' in err
    assert ('https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/'
            'releases/download/v1.0/efficientvit_m4.pth') in err
    assert '--cfg-options model.backbone.init_cfg=None' in err
    # the advice works: without the checkpoint the config passes the checks
    cfg = load_config(M4, {
        'data_root': fake_coco,
        'model.backbone.init_cfg': None
    })
    preflight_train(cfg, M4)


def test_bad_data_root_names_every_file(tmp_path, capsys):
    train = load_tool('train')
    bad = str(tmp_path / 'nowhere' / 'coco')
    assert train.main([MASK, '--cfg-options', f'data_root={bad}']) == 1
    err = capsys.readouterr().err
    assert f'{bad}/annotations/instances_train2017.json' in err
    assert f'{bad}/val2017/' in err
    assert 'data/coco' not in err.split('Put the dataset')[0]


def test_data_root_reaches_every_dataloader_and_evaluator(fake_coco):
    cfg = load_config(MASK, {'data_root': fake_coco})
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[key].dataset.data_root == fake_coco
    for key in ('val_evaluator', 'test_evaluator'):
        assert cfg[key].ann_file == osp.join(
            fake_coco, 'annotations/instances_val2017.json')
    check_datasets(cfg)  # everything is found there


def test_test_tool_missing_checkpoint(tmp_path, fake_coco, capsys):
    test = load_tool('test')
    ckpt = str(tmp_path / 'missing.pth')
    assert test.main([M4, ckpt, '--cfg-options',
                      f'data_root={fake_coco}']) == 1
    err = capsys.readouterr().err
    assert f'checkpoint {ckpt} not found: give the path of an existing ' \
        'checkpoint file' in err
    assert test.main([M4, 'missing.pth']) == 1  # relative: from where
    assert f'missing.pth not found (from {os.getcwd()})' in \
        capsys.readouterr().err


def test_preflight_serves_segmentation_and_classification(tmp_path):
    seg = Config(
        dict(
            default_scope='mmseg', data_root='data/ade/ADEChallengeData2016',
            train_dataloader=dict(
                dataset=dict(
                    type='ADE20KDataset', data_root=str(tmp_path / 'ade'),
                    data_prefix=dict(img_path='images/training',
                                     seg_map_path='annotations/training')))))
    with pytest.raises(PreflightError) as err:
        check_datasets(seg, ['train_dataloader'])
    msg = str(err.value)
    assert 'ade/images/training/' in msg
    assert 'ade/annotations/training/' in msg
    assert 'No dataset at hand?' in msg  # and what to run instead
    assert '.venv/bin/python tools/shapes_demo.py seg' in msg

    cls = Config(
        dict(
            default_scope='mmpretrain', train_dataloader=dict(
                dataset=dict(
                    type='RepeatDataset', times=2, dataset=dict(
                        type='CustomDataset', data_root=str(tmp_path),
                        data_prefix='imagenet/train')))))
    with pytest.raises(PreflightError) as err:
        check_datasets(cls, ['train_dataloader'])
    assert 'imagenet/train/' in str(err.value)
    assert 'No dataset at hand?' in str(err.value)
    assert '.venv/bin/python tools/shapes_demo.py cls' in str(err.value)


def test_load_from_and_resume_checkpoints_are_checked(tmp_path, fake_coco,
                                                      capsys):
    train = load_tool('train')
    ckpt = str(tmp_path / 'gone.pth')
    assert train.main([
        M4, '--resume', ckpt, '--cfg-options', f'data_root={fake_coco}',
        'model.backbone.init_cfg=None'
    ]) == 1
    assert f'resume checkpoint {ckpt} not found' in capsys.readouterr().err


def test_plot_curves(tmp_path, capsys):
    """tools/analysis/plot_curves.py draws a log written by mmengine."""
    run = tmp_path / 'run' / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    lines = [
        dict(lr=1e-4, loss=2.0 - i / 10, loss_cls=1.0, epoch=1, iter=10 * i,
             step=10 * i) for i in range(1, 6)
    ]
    lines.append({'coco/bbox_mAP': 0.25, 'data_time': 0.1, 'step': 1})
    (run / 'scalars.json').write_text('\n'.join(json.dumps(x) for x in lines))
    out = str(tmp_path / 'curves.png')
    plot = load_tool(osp.join('analysis', 'plot_curves'))
    assert plot.main([str(tmp_path / 'run'), '--out', out]) == 0
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    # an unknown key: one short message and status 1, as every tool
    assert tool_exit_status(
        osp.join('analysis', 'plot_curves'),
        [str(tmp_path / 'run'), '--keys', 'nope', '--out', out]) == 1
    message = capsys.readouterr().err
    assert 'nope' in message and 'Traceback' not in message


def test_amp_and_launcher_misuse_are_explained(tmp_path, fake_coco, capsys,
                                               monkeypatch):
    import torch
    train = load_tool('train')
    opts = [
        '--cfg-options', f'data_root={fake_coco}',
        'model.backbone.init_cfg=None'
    ]
    if not torch.cuda.is_available():
        assert train.main([M4, '--amp'] + opts) == 1
        assert '--amp needs a GPU' in capsys.readouterr().err
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    assert train.main([M4, '--launcher', 'pytorch'] + opts) == 1
    err = capsys.readouterr().err
    assert 'needs RANK' in err and 'tools/dist_train.sh' in err
