"""docs/custom_dataset.md, run: each example config of configs/custom/ on
a small generated dataset in the layout the guide describes, through the
command the guide gives, one task per client (mim, mmdet's packaged tools,
ours), and OpenMMLab's analysis tools on the results.

The commands run in a project folder of their own (``data/`` and
``checkpoints/`` as the configs expect them; the ImageNet checkpoint is a
random one in the official release's layout), with ``--cfg-options`` that
only make the run small: one or two iterations on 64-128 px inputs."""
import glob
import json
import os
import os.path as osp
import re

import pytest
import torch

from helpers import ROOT, run_tool
from helpers.det import official_backbone_state

pytestmark = pytest.mark.slow

GUIDE = osp.join(ROOT, 'docs', 'custom_dataset.md')
MMDET_TOOLS = '$MMDET/.mim/tools/'
CONFIGS = {
    'det': 'configs/custom/retinanet_efficientvit_m4_custom_coco.py',
    'ins': 'configs/custom/mask_rcnn_efficientvit_m4_custom_coco.py',
    'seg': 'configs/custom/fpn_efficientvit_m4_custom_seg.py',
    'cls': 'configs/custom/efficientvit_m4_custom_folders.py',
}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
ONE_PROCESS = [
    f'{key}.{opt}' for key in LOADERS
    for opt in ('num_workers=0', 'persistent_workers=False')
]
# weights only: the optimizer state would triple what is written
LIGHT = ONE_PROCESS + ['default_hooks.checkpoint.save_optimizer=False']
# small inputs for the COCO pipelines (Resize is step 2 of training and
# step 1 of testing), every score kept (so that COCO AP is computed after
# one iteration), one epoch of 2 images and no validation after it
COCO_SMALL = LIGHT + [
    'train_cfg.max_epochs=1', 'train_cfg.val_interval=2',
    'train_dataloader.batch_size=2',
    'train_dataloader.dataset.pipeline.2.scale=(128,128)',
    'val_dataloader.dataset.pipeline.1.scale=(128,128)',
    'test_dataloader.dataset.pipeline.1.scale=(128,128)'
]
SMALL = {
    'det':
    COCO_SMALL + ['model.test_cfg.score_thr=0.0'],
    'ins':
    COCO_SMALL + [
        'model.test_cfg.rcnn.score_thr=0.0',
        'model.test_cfg.rcnn.max_per_img=10',
        'model.train_cfg.rpn_proposal.max_per_img=100',
        'model.test_cfg.rpn.max_per_img=100'
    ],
    'seg':
    LIGHT + [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', 'train_dataloader.batch_size=2',
        'train_dataloader.dataset.pipeline.2.scale=(256,64)',
        'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
        'val_dataloader.dataset.pipeline.1.scale=(256,64)',
        'model.data_preprocessor.size=(64,64)'
    ],
    'cls':
    LIGHT + [
        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4',
        'val_dataloader.batch_size=4'
    ],
}


def guide_commands():
    """Every command line of the guide's code blocks (continuations
    joined)."""
    text = open(GUIDE).read()
    lines = []
    for block in re.findall(r'```bash\n(.*?)```', text, re.S):
        lines += block.replace('\\\n', ' ').splitlines()
    return [re.sub(r'\s+', ' ', line).strip() for line in lines]


def documented(command: str) -> str:
    """``command`` after checking that the guide gives it."""
    assert command in guide_commands(), f'the guide lost {command!r}'
    return command


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    """A folder with the data and weights the custom configs expect."""
    from efficientvit_mm.datasets import export_ade, export_coco, export_crops
    root = tmp_path_factory.mktemp('my_project')
    kw = dict(seed=0, image_size=64, num_objects=(1, 3),
              size_range=(0.15, 0.35))
    export_coco(str(root / 'data/my_coco'), dict(train=2, val=2), **kw)
    export_ade(str(root / 'data/my_seg'), dict(training=2, validation=2), **kw)
    export_crops(
        str(root / 'data/my_images'), dict(train=3, val=2), crop_size=32, **kw)
    os.makedirs(root / 'checkpoints')
    torch.save(
        dict(model=official_backbone_state('m4')),
        root / 'checkpoints/efficientvit_m4.pth')
    return str(root)


def run_documented(project, command, work_dir, task, replace=None):
    """Run a command of the guide in ``project`` with this checkout's tools
    and configs, mmdet's packaged tools, the task's small settings and the
    words of ``replace`` replaced; returns its output.

    ``mim`` runs as a command of its own; the ``python SCRIPT`` commands run
    in this process, as ``python`` would run them (a fresh interpreter
    would spend its first 7 s importing the toolboxes again)."""
    import mmdet
    argv = [(replace or {}).get(a, a) for a in documented(command).split()]
    argv = [
        a.replace(MMDET_TOOLS,
                  osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools/'))
        for a in argv
    ]
    argv = [
        osp.join(ROOT, a) if a.startswith(('tools/', 'configs/')) else a
        for a in argv
    ]
    argv += ['--work-dir', work_dir, '--cfg-options'] + SMALL[task]
    if argv[0] == 'mim':
        proc = run_tool(['-m'] + argv, cwd=project, env=dict(PYTHONPATH=ROOT))
        return proc.stdout + proc.stderr
    return run_script(argv[1], argv[2:], cwd=project)


def run_script(path, args, cwd=None, status=0):
    """``python path args`` in this process (in ``cwd``); returns what it
    printed, and fails unless it ended with exit status ``status``."""
    import contextlib
    import io
    import runpy
    import sys
    argv, here = sys.argv, os.getcwd()
    sys.argv = [path] + list(args)
    out = io.StringIO()
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            runpy.run_path(path, run_name='__main__')
    except SystemExit as done:
        assert (done.code or 0) == status, out.getvalue()[-3000:]
    else:
        assert status == 0, out.getvalue()[-3000:]
    finally:
        sys.argv = argv
        os.chdir(here)
    return out.getvalue()


def load(checkpoint):
    """A checkpoint of the run, memory-mapped (only a few shapes are read).
    """
    return torch.load(checkpoint, weights_only=False, mmap=True)


def last_metrics(work_dir):
    """The last line of the newest scalar log under ``work_dir``."""
    logs = sorted(glob.glob(osp.join(work_dir, '2*', 'vis_data', '2*.json')))
    assert logs, f'no scalar log under {work_dir}'
    with open(logs[-1]) as f:
        return json.loads(f.readlines()[-1])


def assert_backbone_loaded(log):
    assert re.search(
        r'loaded \d+ EfficientViT backbone tensors from '
        r'checkpoints/efficientvit_m4\.pth \(official layout',
        log), log[-3000:]


def test_every_custom_config_is_documented():
    configs = sorted(glob.glob(osp.join(ROOT, 'configs', 'custom', '*.py')))
    assert sorted(osp.join(ROOT, c) for c in CONFIGS.values()) == configs
    for config in CONFIGS.values():
        documented(f'python tools/train.py {config}')


def test_detection_with_mim(project, tmp_path):
    work_dir = str(tmp_path / 'det')
    log = run_documented(project, f'mim train mmdet {CONFIGS["det"]}',
                         work_dir, 'det')
    assert_backbone_loaded(log)
    assert 'Training finished successfully' in log
    # the classes of the config reached the model's meta data
    ckpt = load(osp.join(work_dir, 'epoch_1.pth'))
    assert ckpt['meta']['dataset_meta']['classes'] == ('circle', 'square',
                                                       'triangle', 'star')
    assert ckpt['state_dict']['bbox_head.retina_cls.weight'].shape[0] == 9 * 4

    # mmdet's analysis tools on this run: the loss curves, dataloader speed
    tools = osp.join(
        osp.dirname(__import__('mmdet').__file__), '.mim', 'tools',
        'analysis_tools')
    scalars = glob.glob(osp.join(work_dir, '2*', 'vis_data', '2*.json'))[0]
    png = str(tmp_path / 'losses.png')
    run_script(
        osp.join(tools, 'analyze_logs.py'), [
            'plot_curve', scalars, '--keys', 'loss_cls', 'loss_bbox', '--out',
            png
        ])
    assert osp.getsize(png) > 1000
    log = run_script(
        osp.join(tools, 'benchmark.py'), [
            osp.join(ROOT, CONFIGS['det']), '--task', 'dataloader',
            '--dataset-type', 'train', '--max-iter', '2', '--num-warmup', '0',
            '--log-interval', '1', '--repeat-num', '1', '--work-dir',
            str(tmp_path / 'bench'), '--cfg-options'
        ] + ONE_PROCESS[:2] + ['train_dataloader.batch_size=1'], cwd=project)
    assert 'Overall fps' in log


def test_instance_segmentation_with_mmdet_tools(project, tmp_path):
    config = CONFIGS['ins']
    work_dir = str(tmp_path / 'ins')
    log = run_documented(project, f'python {MMDET_TOOLS}train.py {config}',
                         work_dir, 'ins')
    assert_backbone_loaded(log)
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    state = load(ckpt)['state_dict']
    assert state['roi_head.bbox_head.fc_cls.weight'].shape[0] == 4 + 1
    assert state['roi_head.mask_head.conv_logits.weight'].shape[0] == 4
    trained = 'work_dirs/mask_rcnn_efficientvit_m4_custom_coco/epoch_12.pth'
    run_documented(project, f'python {MMDET_TOOLS}test.py {config} {trained}',
                   work_dir, 'ins', replace={trained: ckpt})
    metrics = last_metrics(work_dir)
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0
    assert 0.0 <= metrics['coco/segm_mAP'] <= 1.0


@pytest.mark.parametrize('task, metric, checkpoint, head', [
    ('seg', 'mIoU', 'iter_2.pth', 'decode_head.conv_seg.weight'),
    ('cls', 'accuracy/top1', 'epoch_1.pth', 'head.classifier.fc.weight'),
])
def test_segmentation_and_classification(project, tmp_path, task, metric,
                                         checkpoint, head):
    """Semantic segmentation of ADE-style folders, classification of class
    folders, with our tools/train.py."""
    work_dir = str(tmp_path / task)
    log = run_documented(project, f'python tools/train.py {CONFIGS[task]}',
                         work_dir, task)
    assert_backbone_loaded(log)
    assert 0.0 <= last_metrics(work_dir)[metric] <= 100.0
    ckpt = load(osp.join(work_dir, checkpoint))
    assert ckpt['state_dict'][head].shape[0] == 4
    if task == 'cls':  # named in the folders' sorted order
        assert ckpt['meta']['dataset_meta']['classes'] == ('circle', 'square',
                                                           'star', 'triangle')


@pytest.mark.parametrize('task, head', [
    ('det', 'model.bbox_head.num_classes'),
    ('ins', 'model.roi_head.mask_head.num_classes'),
    ('seg', 'model.decode_head.num_classes'),
    ('cls', 'model.head.num_classes'),
])
def test_a_head_of_another_class_count_stops_before_training(
        project, tmp_path, task, head):
    """The guide's first edit is the classes; a head left at another count
    stops the run before it starts, naming both and the fix."""
    work_dir = str(tmp_path / task)
    log = run_script(
        osp.join(ROOT, 'tools', 'train.py'), [
            osp.join(ROOT, CONFIGS[task]), '--work-dir', work_dir,
            '--cfg-options', f'{head}=3'
        ] + SMALL[task], cwd=project, status=1)
    assert f'{head} is 3' in log, log[-2000:]
    assert f'{head}=4' in log
    assert len(log.strip().splitlines()) <= 5, log
    assert not glob.glob(osp.join(work_dir, '*.pth'))
