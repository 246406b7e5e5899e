"""An exported whole model against PyTorch on a config's val set: the
same predictions image by image, the same metrics, and both latencies.

* detection: every detection scoring >= ``score_thr`` in one runtime has
  one of the same class in the other with IoU >= :data:`MATCH_IOU`, or
  corners within ``AGREEMENT['box_px']`` (boxes cut to a sliver by the
  image border have a low IoU for any difference); the matched pairs'
  largest box and score differences and smallest mask IoU;
* segmentation: the fraction of pixels labelled alike;
* classification: the largest score difference and the labels alike;
* the metrics of the config's evaluator on both prediction sets (COCO
  mAP, mIoU, top-1), which must agree within :data:`METRIC_POINTS`.
"""
import copy
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from ..errors import UserError
from ..runtime.config import task_of

MATCH_IOU = 0.9
METRIC_POINTS = 0.5
# the metrics compared, and their scale to points (COCO's are fractions)
HEADLINE_METRICS = {
    'coco/bbox_mAP': 100.,
    'coco/segm_mAP': 100.,
    'mIoU': 1.,
    'accuracy/top1': 1.
}
# per-image agreement each task must reach
AGREEMENT = {
    'unmatched': 0,  # detections without a counterpart
    'box_px': 1.,  # matched boxes, largest coordinate difference
    'score': 1e-3,  # matched scores / class scores
    'mask_iou': 0.9,  # matched masks, smallest IoU
    'pixels': 0.999,  # label maps, fraction alike
    'labels': 1.,  # classes, fraction alike
}


@dataclass
class Verification:
    """What :func:`verify` found."""
    num_images: int
    agreement: Dict[str, float]
    metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def failures(self) -> List[str]:
        """What is out of tolerance, in words (empty when all is well)."""
        bad = []
        for key, value in self.agreement.items():
            limit = AGREEMENT[key]
            worse = value > limit if key in ('unmatched', 'box_px',
                                             'score') else value < limit
            if worse:
                bad.append(f'{key} {value:.4g} (limit {limit:g})')
        torch_m, onnx_m = self.metrics.get('pytorch',
                                           {}), self.metrics.get('onnx', {})
        for key in torch_m:
            gap = abs(torch_m[key] - onnx_m[key])
            if gap > METRIC_POINTS:
                bad.append(f'{key} differs by {gap:.2f} points')
        return bad


def build_dataset(cfg: Config, dataset_cfg: dict, what: str, otherwise: str):
    """The dataset of ``dataset_cfg`` (a split of ``cfg``), built; a
    missing one is a :class:`UserError` that says how to get it, or
    ``otherwise`` (what to pass instead)."""
    from mmengine.registry import DATASETS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    try:
        return DATASETS.build(dataset_cfg)
    except (FileNotFoundError, OSError) as err:
        raise UserError(
            f'the {what} of this config cannot be read ({err}); write it '
            '(the shapes demos: tools/shapes_demo.py det|seg|cls), point '
            f'--cfg-options data_root=... at it, or {otherwise}') from None


def val_dataset(cfg: Config):
    """The test dataset of ``cfg``, built (see :func:`build_dataset`)."""
    return build_dataset(cfg, cfg.test_dataloader.dataset, 'val set',
                         'pass --no-verify')


def images_to_check(dataset, num_images: Optional[int]) -> int:
    """How many images a check runs on: the first ``num_images`` of
    ``dataset`` (all with None); an empty dataset is a
    :class:`UserError`."""
    count = len(dataset) if num_images is None else min(
        num_images, len(dataset))
    if count < 1:
        asked = '' if num_images is None else f', {num_images} asked for'
        raise UserError(f'no val image to check on (the val set holds '
                        f'{len(dataset)}{asked}): point --cfg-options '
                        f'data_root=... at a val set with images')
    return count


def _box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    from mmdet.structures.bbox import bbox_overlaps
    return bbox_overlaps(a, b)


def _mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum().item()
    return (a & b).sum().item() / union if union else 1.


def match_detections(want, got, score_thr: float) -> Dict[str, float]:
    """Pairs of ``want`` detections scoring >= ``score_thr`` with the
    ``got`` detection of their class that overlaps them most (IoU >=
    :data:`MATCH_IOU`, or corners within ``AGREEMENT['box_px']``): how many
    have none, the pairs' largest box and score differences and smallest
    mask IoU."""
    stats = dict(unmatched=0, box_px=0., score=0., mask_iou=1.)
    keep = want.scores >= score_thr
    if not keep.any():
        return stats
    ious = _box_iou(want.bboxes[keep], got.bboxes) if len(got) else None
    for row, i in enumerate(torch.nonzero(keep)[:, 0].tolist()):
        if ious is None:
            stats['unmatched'] += 1
            continue
        iou = ious[row].masked_fill(got.labels != want.labels[i], -1.)
        j = int(iou.argmax())
        corners = float((want.bboxes[i] - got.bboxes[j]).abs().max())
        if iou[j] < 0 or (iou[j] < MATCH_IOU
                          and corners > AGREEMENT['box_px']):
            stats['unmatched'] += 1
            continue
        stats['box_px'] = max(stats['box_px'], corners)
        stats['score'] = max(stats['score'],
                             abs(float(want.scores[i] - got.scores[j])))
        if 'masks' in want:
            stats['mask_iou'] = min(stats['mask_iou'],
                                    _mask_iou(want.masks[i], got.masks[j]))
    return stats


def agreement(task: str, torch_samples: list, onnx_samples: list,
              score_thr: float) -> Dict[str, float]:
    """How alike two prediction sets of the same images are (see the
    module's doc), over all images."""
    if task == 'detection':
        total = dict(unmatched=0, box_px=0., score=0., mask_iou=1.)
        for a, b in zip(torch_samples, onnx_samples):
            for want, got in ((a, b), (b, a)):  # both directions
                s = match_detections(want.pred_instances, got.pred_instances,
                                     score_thr)
                total['unmatched'] += s['unmatched']
                total['box_px'] = max(total['box_px'], s['box_px'])
                total['score'] = max(total['score'], s['score'])
                total['mask_iou'] = min(total['mask_iou'], s['mask_iou'])
        if 'masks' not in torch_samples[0].pred_instances:
            del total['mask_iou']
        return total
    if task == 'segmentation':
        alike = sum((a.pred_sem_seg.data == b.pred_sem_seg.data).sum().item()
                    for a, b in zip(torch_samples, onnx_samples))
        pixels = sum(a.pred_sem_seg.data.numel() for a in torch_samples)
        return dict(pixels=alike / pixels)
    score = max(
        float((a.pred_score - b.pred_score).abs().max())
        for a, b in zip(torch_samples, onnx_samples))
    labels = sum(
        int(a.pred_label == b.pred_label)
        for a, b in zip(torch_samples, onnx_samples))
    return dict(score=score, labels=labels / len(torch_samples))


def evaluate(cfg: Config, dataset, batches: list, predictions: list,
             img_ids: Optional[list]) -> Dict[str, float]:
    """The headline metrics of the config's test evaluator on
    ``predictions`` (lists of data samples, one per batch). With
    ``img_ids``, COCO metrics count only those images."""
    from mmengine.evaluator import Evaluator
    evaluator = Evaluator(copy.deepcopy(cfg.test_evaluator))
    evaluator.dataset_meta = dataset.metainfo
    for batch, samples in zip(batches, predictions):
        evaluator.process(data_samples=samples, data_batch=batch)
    for metric in evaluator.metrics:
        if img_ids is not None and hasattr(metric, 'img_ids'):
            metric.img_ids = img_ids  # CocoMetric: evaluate these images
    metrics = evaluator.evaluate(sum(len(p) for p in predictions))
    return {
        key: float(value) * HEADLINE_METRICS[key]
        for key, value in metrics.items() if key in HEADLINE_METRICS
    }


def verify(cfg: Config, model: nn.Module, predictor,
           num_images: Optional[int] = None, score_thr: float = 0.3,
           progress=None, dataset=None) -> Verification:
    """Run ``model`` (PyTorch) and ``predictor`` (an
    :class:`~.onnx_predictor.OnnxPredictor`) on the first ``num_images``
    images of the val set of ``cfg`` (all by default; ``dataset``: that
    set, built already), one at a time."""
    task = task_of(cfg)
    dataset = val_dataset(cfg) if dataset is None else dataset
    count = images_to_check(dataset, num_images)
    batches, torch_preds, onnx_preds = [], [], []
    model.eval()
    for i in range(count):
        batch = pseudo_collate([dataset[i]])
        with torch.no_grad():
            torch_preds.append(model.test_step(copy.deepcopy(batch)))
        onnx_preds.append(predictor(copy.deepcopy(batch)))
        batches.append(batch)
        if progress and (i + 1) % 50 == 0:
            progress(f'{i + 1}/{count} images')
    flat = [s for p in torch_preds for s in p]
    result = Verification(
        count,
        agreement(task, flat, [s for p in onnx_preds for s in p], score_thr))
    img_ids = [s.img_id for s in flat
               ] if task == 'detection' and count < len(dataset) else None
    if cfg.get('test_evaluator'):
        result.metrics = dict(
            pytorch=evaluate(cfg, dataset, batches, torch_preds, img_ids),
            onnx=evaluate(cfg, dataset, batches, onnx_preds, img_ids))
    return result


def latency_ms(model: nn.Module, predictor, batch: dict,
               repeats: int = 7) -> Dict[str, float]:
    """Median milliseconds per call of each runtime on ``batch`` (one val
    batch), timed interleaved, from the loaded image to data samples."""
    from ..benchmarking.timing import median, time_interleaved

    def run_torch():
        with torch.inference_mode():
            model.test_step(copy.deepcopy(batch))

    times = time_interleaved(
        dict(pytorch=run_torch,
             onnxruntime=lambda: predictor(copy.deepcopy(batch))), warmup=2,
        repeats=repeats)
    return {k: 1e3 * median(v) for k, v in times.items()}
