"""ADE20K configs end to end through the real tools, on a tiny generated
ADE-layout set (64x64 shapes images): tools/train.py, tools/test.py (mIoU,
--show-dir), tools/dist_train.sh on CPU processes, mmseg's single-image
inference APIs, and the messages for a missing dataset or checkpoint."""
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT, load_tool

PYTHON = sys.executable
FPN_M0 = osp.join(ROOT, 'configs', 'fpn_efficientvit_m0_ade20k.py')
FPN_M4 = osp.join(ROOT, 'configs', 'fpn_efficientvit_m4_ade20k.py')
UPERNET = osp.join(ROOT, 'configs', 'upernet_efficientvit_m4_ade20k.py')
# official classification layout, random weights (see tests/data/README.md)
M0_IMAGENET = osp.join(ROOT, 'tests', 'data', 'official_cls_m0.pth')

# The configs as they are, at 64x64: mmseg's ADE20K pipelines with smaller
# scales (indices: train 2 RandomResize, 3 RandomCrop; val and test 1
# Resize).
TINY = [
    'model.data_preprocessor.size=(64,64)',
    'train_dataloader.dataset.pipeline.2.scale=(128,64)',
    'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
    'train_dataloader.batch_size=2',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'test_dataloader.dataset.pipeline.1.scale=(128,64)',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    # training validates after its last iteration, through val_dataloader
    # (a copy of test_dataloader's settings, not a reference)
    'val_dataloader.dataset.pipeline.1.scale=(128,64)',
    'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False',
    'train_cfg.max_iters=2',
    'train_cfg.val_interval=100',
    'default_hooks.logger.interval=1',
    'default_hooks.checkpoint.interval=2',
    'default_hooks.checkpoint.save_optimizer=False',
]
NUM_VAL = 3


def run(args, cwd=ROOT, timeout=300):
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def check(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    """ADEChallengeData2016-style folder: images/{training,validation}/*.jpg,
    annotations/{training,validation}/*.png (0 = background)."""
    from efficientvit_mm.datasets import export_ade
    root = str(tmp_path_factory.mktemp('ade') / 'ADEChallengeData2016')
    export_ade(root, dict(training=6, validation=NUM_VAL), image_size=64)
    return root


def miou_of(text):
    found = re.findall(r'mIoU: (\d+\.\d+)', text)
    assert found, text[-3000:]
    return float(found[-1])


@pytest.fixture(scope='module')
def fpn_checkpoint(ade_root, tmp_path_factory):
    """2 iterations of Semantic FPN (M0, ImageNet-layout checkpoint) through
    tools/train.py."""
    work = str(tmp_path_factory.mktemp('fpn_work'))
    out = check(
        run([
            PYTHON, 'tools/train.py', FPN_M0, '--work-dir', work,
            '--cfg-options', f'data_root={ade_root}',
            f'model.backbone.init_cfg.checkpoint={M0_IMAGENET}', *TINY
        ]))
    assert 'Iter(train) [2/2]' in out
    assert 'loaded' in out.lower() or 'load' in out.lower()
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt)
    return ckpt


@pytest.mark.slow
def test_fpn_train_then_test_with_show_dir(ade_root, fpn_checkpoint, tmp_path):
    out = check(
        run([
            PYTHON, 'tools/test.py', FPN_M0, fpn_checkpoint, '--work-dir',
            str(tmp_path), '--show-dir', 'vis', '--cfg-options',
            f'data_root={ade_root}', *TINY
        ]))
    assert 0. <= miou_of(out) <= 100.
    assert 'per class results' in out
    # a relative --show-dir lands under the work dir: one drawing per
    # validation image
    vis = tmp_path / 'vis'
    pngs = sorted(f for _, _, files in os.walk(vis) for f in files
                  if f.endswith('.png'))
    assert len(pngs) == NUM_VAL, pngs
    assert all(f'{i:06d}' in name for i, name in enumerate(pngs))


@pytest.mark.slow
def test_upernet_train_then_test(ade_root, tmp_path):
    work = str(tmp_path)
    out = check(
        run([
            PYTHON, 'tools/train.py', UPERNET, '--work-dir', work,
            '--cfg-options', f'data_root={ade_root}',
            'model.backbone.init_cfg=None', *TINY
        ]))
    assert 'Iter(train) [2/2]' in out
    assert 'aux.loss_ce' in out and 'decode.loss_ce' in out
    ckpt = osp.join(work, 'iter_2.pth')
    out = check(
        run([
            PYTHON, 'tools/test.py', UPERNET, ckpt, '--work-dir', work,
            '--cfg-options', f'data_root={ade_root}', *TINY
        ]))
    assert 0. <= miou_of(out) <= 100.


@pytest.mark.slow
def test_dist_train_on_cpu_processes(ade_root, tmp_path):
    """tools/dist_train.sh with 2 CPU processes: gloo, DDP, SyncBN heads
    built as BN."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHON=PYTHON, PORT=str(port),
               PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    proc = subprocess.run([
        'bash', 'tools/dist_train.sh', FPN_M4, '2', '--work-dir',
        str(tmp_path), '--cfg-options', f'data_root={ade_root}',
        'model.backbone.init_cfg=None', *TINY
    ], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = check(proc)
    assert 'SyncBN layers of the model are built as plain BN' in out
    assert 'Iter(train) [2/2]' in out
    assert osp.isfile(osp.join(tmp_path, 'iter_2.pth'))


def test_single_image_inference_apis(ade_root, fpn_checkpoint):
    """The README snippet: mmseg's inference_model and MMSegInferencer with
    our config and a trained checkpoint."""
    import cv2
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    img = osp.join(ade_root, 'images', 'validation', '000000.jpg')
    h, w = cv2.imread(img).shape[:2]

    model = init_model(FPN_M0, fpn_checkpoint, device='cpu')
    result = inference_model(model, img)
    pred = result.pred_sem_seg.data
    assert pred.shape == (1, h, w)
    assert 0 <= int(pred.min()) and int(pred.max()) < 150
    assert result.seg_logits.data.shape == (150, h, w)

    inferencer = MMSegInferencer(model=FPN_M0, weights=fpn_checkpoint,
                                 device='cpu')
    out = inferencer(img)
    assert np.array_equal(out['predictions'], pred[0].numpy())


def test_missing_ade20k_exits_with_instructions(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no data/ here
    train = load_tool('train')
    for config in (FPN_M4, UPERNET):
        assert train.main([config]) == 1  # tools/train.py's exit status
        err = capsys.readouterr().err
        assert err.startswith('tools/train.py: error: the dataset is missing')
        assert 'data/ade/ADEChallengeData2016/images/training/' in err
        assert 'data/ade/ADEChallengeData2016/annotations/training/' in err
        assert '--cfg-options data_root=' in err
        assert 'tools/shapes_demo.py seg' in err
        assert 'Traceback' not in err


def test_missing_checkpoint_exits_with_instructions(ade_root, tmp_path,
                                                    monkeypatch, capsys):
    # ADE20K where the config expects it, but no ImageNet checkpoint
    os.makedirs(tmp_path / 'data' / 'ade')
    shutil.copytree(ade_root,
                    tmp_path / 'data' / 'ade' / 'ADEChallengeData2016')
    monkeypatch.chdir(tmp_path)
    train = load_tool('train')
    for config in (FPN_M4, UPERNET):
        assert train.main([config]) == 1
        err = capsys.readouterr().err
        assert 'checkpoints/efficientvit_m4.pth' in err and 'not found' in err
        assert 'releases/download/v1.0/efficientvit_m4.pth' in err
        assert 'model.backbone.init_cfg=None' in err
        assert 'Traceback' not in err


@pytest.mark.slow
def test_seg_shapes_demo_runs_end_to_end(tmp_path):
    """The demo command, cut to a few iterations on a few images: it writes
    the ADE-style data, trains through tools/train.py, reports mIoU and
    saves the PNG of predicted masks and the JSON summary."""
    import json

    import cv2
    work, data = tmp_path / 'work', tmp_path / 'shapes'
    out = check(
        run([
            PYTHON, 'tools/shapes_demo.py', 'seg', '--work-dir',
            str(work), '--data-root',
            str(data), '--num-vis', '2', '--cfg-options',
            'shapes_data.splits.training=8', 'shapes_data.splits.validation=4',
            'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'train_dataloader.batch_size=4', 'param_scheduler.0.end=1',
            'param_scheduler.1.begin=1', 'param_scheduler.1.end=2',
            'default_hooks.checkpoint.interval=2'
        ]))
    assert len(os.listdir(data / 'images' / 'training')) == 8
    assert len(os.listdir(data / 'annotations' / 'validation')) == 4
    assert 'Iter(train) [2/2]' in out  # progress of the training
    assert 0. <= miou_of(out) <= 100.
    summary = re.search(r'\[demo\] mIoU +(\d+\.\d+)', out)
    assert summary and float(summary.group(1)) == pytest.approx(
        miou_of(out), abs=0.01)
    assert 'background' in out and 'IoU per class' in out
    result = json.loads((work / 'demo_result.json').read_text())
    assert result['task'] == 'seg' and result['num_val'] == 4
    assert result['mIoU'] == pytest.approx(float(summary.group(1)), abs=0.01)
    assert list(result['IoU_per_class']) == [
        'background', 'circle', 'square', 'triangle', 'star'
    ]
    assert result['checkpoint'].endswith('iter_2.pth')
    assert set(result['seconds']) == {'data', 'train', 'eval', 'draw', 'total'}
    png = cv2.imread(str(work / 'predictions.png'))
    # 2 rows of image | ground truth | prediction (128 px, shown at 2x)
    assert png is not None and png.shape[0] > 2 * 2 * 128
    assert png.shape[1] >= 3 * 2 * 128
