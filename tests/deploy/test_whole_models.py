"""Whole detectors and segmentors in ONNX (post-processing included): the
graph gives PyTorch's answer below, at and above the export size, and the
tools verify, time and draw them."""
import os

import numpy as np
import pytest
import torch

from efficientvit_mm.deploy.onnx import (check_graph, export_model,
                                         ort_session, tolerance)
from helpers import run_tool
from helpers.deploy import TINY_MASK_RCNN, TINY_UPERNET, config, random_model

pytest.importorskip('onnxruntime', reason='optional extra: onnxruntime')
pytest.importorskip('mmdeploy', reason='optional extra: mmdeploy')

RETINANET = 'demo/retinanet_efficientvit_m0_shapes.py'


def _within_tolerance(session, reference, shapes):
    """The graph's differences from PyTorch at each shape, all within
    tolerance."""
    inputs = [torch.randn(1, 3, *shape) for shape in shapes]
    found = check_graph(session, reference, inputs)
    for shape, diffs in zip(shapes, found):
        assert all(v <= tolerance(k) for k, v in diffs.items()), (shape, diffs)
    return found


def _exported_and_verified(out: str, metrics) -> str:
    """``out`` (tools/export_onnx.py on a detector, the tiny val set) says:
    exported with NMS, checked below (odd, stage maps smaller than a
    window), at and above the size, no detection unmatched on the val set,
    and ``metrics`` of both runtimes within 0.5 points. Returns ``out``."""
    assert 'detector with NMS' in out and 'check passed' in out
    for size in ('65x65', '128x128', '161x161'):
        assert f'at 1x3x{size}: boxes' in out
    assert 'val set, 4 images, onnxruntime vs PyTorch: unmatched 0' in out
    for metric in metrics:
        found = [
            float(
                out.split(f'{runtime}: ')[1].split(f'coco/{metric} ')
                [1].split()[0].strip(',')) for runtime in ('pytorch', 'onnx')
        ]
        assert abs(found[0] - found[1]) <= 0.5, (metric, found)
    return out


def test_retinanet_tool_exports_verifies_times_and_draws(tmp_path, tiny_coco):
    """RetinaNet with NMS through tools/export_onnx.py on the tiny shapes
    val set, then tools/infer_onnx.py on two of its images."""
    options = ['--cfg-options', f'data_root={tiny_coco}/']
    cfg = config(RETINANET, {'data_root': f'{tiny_coco}/'})
    ckpt = str(tmp_path / 'retinanet.pth')
    random_model(cfg, ckpt, score_bias=-7.)
    onnx_file = str(tmp_path / 'retinanet.onnx')
    proc = run_tool([
        'tools/export_onnx.py',
        os.path.join('configs', RETINANET), ckpt, onnx_file, '--shape', '128',
        *options
    ])
    out = proc.stdout
    _exported_and_verified(out, ['bbox_mAP'])
    assert 'PyTorch deploy' in out and 'ms | onnxruntime' in out

    images = sorted(os.listdir(os.path.join(tiny_coco, 'val')))[:2]
    paths = [os.path.join(tiny_coco, 'val', name) for name in images]
    vis = tmp_path / 'vis'
    proc = run_tool([
        'tools/infer_onnx.py', onnx_file,
        os.path.join('configs', RETINANET), *paths, '--out-dir',
        str(vis), '--score-thr', '0.05', *options
    ])
    assert sorted(os.listdir(vis)) == images
    import mmcv
    drawn = mmcv.imread(str(vis / images[0]))
    assert drawn.shape == (128, 128, 3)
    assert not np.array_equal(drawn, mmcv.imread(paths[0]))  # boxes drawn


@pytest.fixture(scope='module')
def mask_rcnn_graph(tmp_path_factory):
    """(model, its PyTorch reference under mmdeploy's rewrites, an
    onnxruntime session of its graph exported at 64x96): a tiny Mask
    R-CNN-M4 with random weights, exported once for the tests below."""
    torch.manual_seed(0)
    cfg = config('mask_rcnn_efficientvit_m4_coco.py', TINY_MASK_RCNN)
    model = random_model(cfg, spread_rcnn_scores=True)
    path = str(tmp_path_factory.mktemp('mask_rcnn') / 'mask_rcnn.onnx')
    reference = export_model(model, cfg, (64, 96), path)
    return model, reference, ort_session(path)


def test_mask_rcnn_gives_boxes_labels_and_masks(mask_rcnn_graph):
    """The graph's outputs, their layout, and PyTorch's answer (the model
    under the same rewrites) below, at and above the export size, and for
    a batch of two."""
    _, reference, session = mask_rcnn_graph
    assert [o.name
            for o in session.get_outputs()] == ['dets', 'labels', 'masks']
    inputs = [
        torch.randn(1, 3, 64, 96),
        torch.randn(1, 3, 97, 65),
        torch.randn(2, 3, 128, 160)
    ]
    for x in inputs:
        dets, labels, masks = session.run(None, {'input': x.numpy()})
        assert dets.shape[2] == 5 and labels.shape == dets.shape[:2]
        assert masks.shape == dets.shape[:2] + (28, 28)
    for shape, diffs in zip(inputs, check_graph(session, reference, inputs)):
        assert all(v <= tolerance(k)
                   for k, v in diffs.items()), (shape.shape, diffs)


def _instances(dets, labels):
    """The non-padding rows of one image's graph outputs, as mmdet's
    InstanceData."""
    from mmengine.structures import InstanceData
    keep = dets[:, 4] > 0
    return InstanceData(
        bboxes=torch.from_numpy(dets[keep, :4]),
        scores=torch.from_numpy(dets[keep, 4]),
        labels=torch.from_numpy(labels[keep]))


def test_mask_rcnn_graph_keeps_mmdet_detections(mask_rcnn_graph):
    """The graph keeps the detections mmdet's own Mask R-CNN keeps: the
    RPN's NMS level by level without boxes of no area, each class with its
    own box in the second stage (mmdeploy's default rewrites differ on
    both), at sizes with fewer proposals than ``max_per_img`` and in a
    batch."""
    from efficientvit_mm.apis import data_samples
    from efficientvit_mm.deploy.verify import AGREEMENT, match_detections
    model, _, session = mask_rcnn_graph
    for x in (torch.randn(1, 3, 32,
                          48), torch.randn(1, 3, 64,
                                           96), torch.randn(2, 3, 40, 56)):
        dets, labels, _ = session.run(None, {'input': x.numpy()})
        for i in range(len(x)):
            with torch.no_grad():
                want = model.predict(x[i:i + 1],
                                     data_samples('detection', x.shape[2:]),
                                     rescale=False)[0].pred_instances
            want = want[:]  # (a copy without the masks the graph has not
            del want.masks  # pasted; the tool test compares those)
            got = _instances(dets[i], labels[i])
            assert len(want) == len(got) > 0
            for a, b in ((want, got), (got, want)):
                found = match_detections(a, b, score_thr=0.)
                assert found['unmatched'] == 0, (x.shape, found)
                assert found['box_px'] <= AGREEMENT['box_px']
                assert found['score'] <= AGREEMENT['score']


def test_mask_rcnn_tool_verifies_masks_on_the_val_set(tmp_path, tiny_coco):
    """tools/export_onnx.py on the own-data Mask R-CNN config, shrunk:
    exported, checked at three sizes, and matched with PyTorch on the tiny
    shapes val set, boxes, labels and masks."""
    name = 'custom/mask_rcnn_efficientvit_m4_custom_coco.py'
    options = dict(TINY_MASK_RCNN, data_root=f'{tiny_coco}/')
    options['val_evaluator.ann_file'] = (
        f'{tiny_coco}/annotations/instances_val.json')
    cfg = config(name, options)
    ckpt = str(tmp_path / 'mask_rcnn.pth')
    random_model(cfg, ckpt, spread_rcnn_scores=True)
    as_args = [f'{k}={v}'.replace(' ', '') for k, v in options.items()]
    proc = run_tool([
        'tools/export_onnx.py',
        os.path.join('configs', name), ckpt,
        str(tmp_path / 'mask_rcnn.onnx'), '--shape', '128', '--no-benchmark',
        '--cfg-options', *as_args
    ])
    out = _exported_and_verified(proc.stdout, ['bbox_mAP', 'segm_mAP'])
    assert float(out.split('mask_iou ')[1].split()[0]) >= 0.9


def test_upernet_gives_the_label_map(tmp_path):
    cfg = config('upernet_efficientvit_m4_ade20k.py', TINY_UPERNET)
    path = str(tmp_path / 'upernet.onnx')
    reference = export_model(random_model(cfg), cfg, (128, 128), path)
    session = ort_session(path)
    _within_tolerance(session, reference, [(65, 97), (128, 128), (161, 203)])
    got = session.run(None, {'input': np.zeros((1, 3, 65, 97), np.float32)})
    assert got[0].shape == (1, 1, 65, 97)
    assert got[0].dtype == np.int64


def test_semantic_fpn_tool_exports_and_verifies_mIoU(tmp_path):
    """Semantic FPN (the seg demo config, random weights) through
    tools/export_onnx.py: label maps at three sizes, then mIoU on a tiny
    shapes val set."""
    from efficientvit_mm.datasets import export_ade
    root = str(tmp_path / 'ade')
    export_ade(root, dict(training=1, validation=3), seed=0,
               image_size=(128, 128), num_objects=(1, 3))
    seg_config = 'demo/fpn_efficientvit_m0_shapes_seg.py'
    options = ['--cfg-options', f'data_root={root}']
    cfg = config(seg_config, {'data_root': root})
    ckpt = str(tmp_path / 'fpn.pth')
    random_model(cfg, ckpt)
    proc = run_tool([
        'tools/export_onnx.py',
        os.path.join('configs', seg_config), ckpt,
        str(tmp_path / 'fpn.onnx'), '--shape', '128', '--no-benchmark',
        *options
    ])
    out = proc.stdout
    assert 'segmentor, label map' in out and 'check passed' in out
    for size in ('65x65', '128x128', '161x161'):
        assert f'at 1x3x{size}: label_map' in out
    assert 'val set, 3 images, onnxruntime vs PyTorch: pixels' in out
    torch_miou = float(out.split('pytorch: mIoU ')[1].split()[0].strip(','))
    onnx_miou = float(out.split('onnx: mIoU ')[1].split()[0].strip(','))
    assert abs(torch_miou - onnx_miou) <= 0.5
