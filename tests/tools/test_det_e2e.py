"""End to end through tools/train.py and tools/test.py on a tiny generated
COCO set: RetinaNet-M0 and Mask R-CNN-M0, a few iterations each."""
import glob
import json
import os.path as osp

import pytest

from helpers import ROOT, run_tool

pytestmark = pytest.mark.slow

TINY = '''
_base_ = [{base!r}]
data_root = {root!r}
classes = ('circle', 'square', 'triangle', 'star')
metainfo = dict(classes=classes)
model = dict(
    backbone=dict(arch='m0', init_cfg=None, norm_eval=False),
    neck=dict(in_channels=[64, 128, 192], out_channels=32),
    {head})
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask={masks}),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask={masks}),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json',
                     metric={metric})
test_evaluator = val_evaluator
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})
param_scheduler = [dict(type='ConstantLR', factor=1.0)]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=5))
'''

# score_thr=0: after 4 iterations no score passes the usual 0.05, and COCO
# metrics need detections to be computed at all
RETINA_HEAD = ("bbox_head=dict(num_classes=4, in_channels=32, "
               "feat_channels=32, stacked_convs=1), "
               "test_cfg=dict(score_thr=0.0)")
MASK_HEADS = (
    "rpn_head=dict(in_channels=32, feat_channels=32), "
    "roi_head=dict("
    "bbox_roi_extractor=dict(out_channels=32), "
    "bbox_head=dict(num_classes=4, in_channels=32, fc_out_channels=64), "
    "mask_roi_extractor=dict(out_channels=32), "
    "mask_head=dict(num_classes=4, in_channels=32, conv_out_channels=32, "
    "num_convs=1)), "
    "test_cfg=dict(rcnn=dict(score_thr=0.0))")


def tiny_config(tmp_path, data_root, kind='retinanet', epochs=1):
    if kind == 'retinanet':
        base, head, masks, metric = ('retinanet_efficientvit_m4_coco.py',
                                     RETINA_HEAD, False, "'bbox'")
    else:
        base, head, masks, metric = ('mask_rcnn_efficientvit_m4_coco.py',
                                     MASK_HEADS, True, "['bbox', 'segm']")
    text = TINY.format(
        base=osp.join(ROOT, 'configs', base), root=data_root.rstrip('/') + '/',
        head=head, masks=masks, metric=metric, epochs=epochs)
    path = tmp_path / f'tiny_{kind}.py'
    path.write_text(text)
    return str(path)


def read_metrics(work_dir):
    """Metrics of the newest test run in ``work_dir``."""
    logs = sorted(glob.glob(osp.join(work_dir, '2*', '2*.json')))
    assert logs, f'no metrics json under {work_dir}'
    with open(logs[-1]) as f:
        return json.loads(f.readlines()[-1])


@pytest.mark.parametrize('kind', ['retinanet', 'mask_rcnn'])
def test_train_then_test(kind, tmp_path, tiny_coco):
    config = tiny_config(tmp_path, tiny_coco, kind)
    work_dir = str(tmp_path / 'work')
    proc = run_tool(['tools/train.py', config, '--work-dir', work_dir])
    log = proc.stdout + proc.stderr
    assert 'Epoch(train) [1][4/4]' in log.replace('  ', ' ')
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)

    out = str(tmp_path / 'preds.pkl')
    show_dir = str(tmp_path / 'show')
    run_tool([
        'tools/test.py', config, ckpt, '--work-dir', work_dir, '--out', out,
        '--show-dir', show_dir
    ])
    metrics = read_metrics(work_dir)
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0
    assert 'coco/bbox_mAP_50' in metrics
    if kind == 'mask_rcnn':
        assert 0.0 <= metrics['coco/segm_mAP'] <= 1.0
    else:
        assert 'coco/segm_mAP' not in metrics
    assert osp.getsize(out) > 0
    # the toolbox's visualization hook drew every val image
    drawn = glob.glob(osp.join(show_dir, '*.jpg'))
    assert len(drawn) == 4
