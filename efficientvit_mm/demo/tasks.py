"""The three shapes demos: what differs between detection, segmentation
and classification (config, data writer, progress lines, metric summary and
drawing)."""
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

from ..analysis.logs import per_class_iou
from .render import draw_classification, draw_detections, draw_segmentation
from .steps import Evaluation


@dataclass(frozen=True)
class ShapesDemo:
    """The parts of one demo that differ between tasks.

    Attributes:
        scope: the ``default_scope`` its configs have.
        model: the model's name, for the messages.
        config, work_dir, num_vis: defaults of ``--config``, ``--work-dir``
            and ``--num-vis``.
        exporter: the writer in ``efficientvit_mm.datasets`` that
            ``shapes_data`` feeds, and ``data_kind`` the words for its data.
        progress_every: the exporter's progress interval, in scenes.
        progress: substrings of the training-log lines to show.
        metric: what step 3 measures, for its message.
        summarise: ``Evaluation -> (summary fields, lines to print)``.
        draw: ``(cfg, checkpoint, out_png, num) -> note``, the note ending
            the ``predictions`` line.
    """
    scope: str
    model: str
    config: str
    work_dir: str
    num_vis: int
    exporter: str
    data_kind: str
    progress_every: int
    progress: Tuple[str, ...]
    metric: str
    summarise: Callable[[Evaluation], Tuple[dict, List[str]]]
    draw: Callable[..., str]


def _fmt(value, spec: str) -> str:
    """``value`` formatted, or 'n/a' when the evaluator gave none."""
    return 'n/a' if value is None else format(value, spec)


def _det_summary(ev: Evaluation):
    m = ev.metrics
    s = dict(bbox_mAP=m.get('coco/bbox_mAP'),
             bbox_mAP_50=m.get('coco/bbox_mAP_50'),
             bbox_mAP_75=m.get('coco/bbox_mAP_75'))
    line = (f'COCO bbox mAP      {_fmt(s["bbox_mAP"], ".3f")}   (AP50 '
            f'{_fmt(s["bbox_mAP_50"], ".3f")}, AP75 '
            f'{_fmt(s["bbox_mAP_75"], ".3f")}) on {ev.num_val} held-out val '
            'images')
    if s['bbox_mAP'] is None:
        line += ' (no detections above the score threshold)'
    return s, [line]


def _seg_summary(ev: Evaluation):
    m = ev.metrics
    # IoUMetric returns the averages and only logs the per-class table
    per_class = per_class_iou(ev.log_file)
    s = dict(mIoU=m.get('mIoU'), aAcc=m.get('aAcc'), mAcc=m.get('mAcc'),
             IoU_per_class=per_class)
    lines = [f'mIoU               {_fmt(s["mIoU"], ".2f")}   (aAcc '
             f'{_fmt(s["aAcc"], ".2f")}, mAcc {_fmt(s["mAcc"], ".2f")}) on '
             f'{ev.num_val} held-out validation images']
    if per_class:
        lines.append('IoU per class      ' + ', '.join(
            f'{name} {iou:.1f}' for name, iou in per_class.items()))
    return s, lines


def _cls_summary(ev: Evaluation):
    top1 = ev.metrics.get('accuracy/top1')
    return dict(top1=top1), [
        f'top-1 accuracy     {_fmt(top1, ".2f")} %  on {ev.num_val} '
        'held-out val crops']


SHAPES_DEMOS: Dict[str, ShapesDemo] = {
    'det': ShapesDemo(
        scope='mmdet', model='RetinaNet-EfficientViT-M0',
        config='configs/demo/retinanet_efficientvit_m0_shapes.py',
        work_dir='work_dirs/shapes_demo', num_vis=8,
        exporter='export_coco', data_kind='COCO-format shapes',
        progress_every=500,
        progress=('Epoch(train)', 'Epoch(val)', 'bbox_mAP'),
        metric='COCO bbox mAP', summarise=_det_summary, draw=draw_detections),
    'seg': ShapesDemo(
        scope='mmseg', model='Semantic FPN-EfficientViT-M0',
        config='configs/demo/fpn_efficientvit_m0_shapes_seg.py',
        work_dir='work_dirs/seg_shapes_demo', num_vis=6,
        exporter='export_ade', data_kind='ADE-style shapes',
        progress_every=1000, progress=('Iter(train)', 'mIoU:'),
        metric='mIoU', summarise=_seg_summary, draw=draw_segmentation),
    'cls': ShapesDemo(
        scope='mmpretrain', model='EfficientViT-M0 classifier',
        config='configs/demo/efficientvit_m0_shapes_cls.py',
        work_dir='work_dirs/cls_shapes_demo', num_vis=32,
        exporter='export_crops', data_kind='shape-crop',
        progress_every=200,
        progress=('Epoch(train)', 'Epoch(val)', 'accuracy/top1'),
        metric='top-1 accuracy', summarise=_cls_summary, draw=draw_classification),
}
