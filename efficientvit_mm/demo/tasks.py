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
    """What differs in code between the demos.

    The rest is data of the demo's config: ``shapes_data`` (what the
    exporter writes), ``shapes_demo`` (``model``, the name in the messages;
    ``metric``, what step 3 measures; ``num_vis``, the samples drawn;
    ``progress``, substrings of the training-log lines to show) and
    ``work_dir``.

    Attributes:
        scope: the ``default_scope`` its configs have.
        config: the default of ``--config``.
        exporter: the writer in ``efficientvit_mm.datasets`` that
            ``shapes_data`` feeds.
        summarise: ``Evaluation -> (summary fields, lines to print)``.
        draw: ``(cfg, checkpoint, out_png, num) -> note``, the note ending
            the ``predictions`` line.
    """
    scope: str
    config: str
    exporter: str
    summarise: Callable[[Evaluation], Tuple[dict, List[str]]]
    draw: Callable[..., str]


def _fmt(value, spec: str) -> str:
    """``value`` formatted, or 'n/a' when the evaluator gave none."""
    return 'n/a' if value is None else format(value, spec)


def _det_summary(ev: Evaluation):
    m = ev.metrics
    s = dict(
        bbox_mAP=m.get('coco/bbox_mAP'), bbox_mAP_50=m.get('coco/bbox_mAP_50'),
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
    s = dict(
        mIoU=m.get('mIoU'), aAcc=m.get('aAcc'), mAcc=m.get('mAcc'),
        IoU_per_class=per_class)
    lines = [
        f'mIoU               {_fmt(s["mIoU"], ".2f")}   (aAcc '
        f'{_fmt(s["aAcc"], ".2f")}, mAcc {_fmt(s["mAcc"], ".2f")}) on '
        f'{ev.num_val} held-out validation images'
    ]
    if per_class:
        lines.append('IoU per class      ' +
                     ', '.join(f'{name} {iou:.1f}'
                               for name, iou in per_class.items()))
    return s, lines


def _cls_summary(ev: Evaluation):
    top1 = ev.metrics.get('accuracy/top1')
    return dict(top1=top1), [
        f'top-1 accuracy     {_fmt(top1, ".2f")} %  on {ev.num_val} '
        'held-out val crops'
    ]


SHAPES_DEMOS: Dict[str, ShapesDemo] = {
    'det':
    ShapesDemo('mmdet', 'configs/demo/retinanet_efficientvit_m0_shapes.py',
               'export_coco', _det_summary, draw_detections),
    'seg':
    ShapesDemo('mmseg', 'configs/demo/fpn_efficientvit_m0_shapes_seg.py',
               'export_ade', _seg_summary, draw_segmentation),
    'cls':
    ShapesDemo('mmpretrain', 'configs/demo/efficientvit_m0_shapes_cls.py',
               'export_crops', _cls_summary, draw_classification),
}
