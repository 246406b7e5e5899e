"""Running an exported whole model in onnxruntime on images, with the
config's pre-processing, and turning its outputs into the toolboxes' data
samples (so their metrics and visualizers take them as they take
PyTorch's predictions).

* detection: ``dets``/``labels`` (and 28x28 ``masks``) -> ``pred_instances``
  in the original image's coordinates, masks pasted and thresholded with
  mmdet's own paste function, as mmdet's mask head does;
* segmentation: ``label_map`` -> ``pred_sem_seg``, padding cropped, at the
  original size (nearest-neighbour when the pipeline resized the image;
  mmseg resizes the logits instead, so boundary pixels can differ there);
* classification: ``logits`` -> ``pred_score`` (softmax) and
  ``pred_label``.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate

from ..apis import build_preprocessor
from ..errors import UserError
from ..runtime.config import task_of
from .onnx import ort_session, run_session

__all__ = ['OnnxPredictor', 'image_pipeline', 'paste_masks']

# transforms that read annotations: left out when predicting image files
ANNOTATION_LOADERS = ('LoadAnnotations', )
# the graph outputs each task's predictions are made of
TASK_OUTPUTS = dict(
    classification=('logits', ), detection=('dets', 'labels'),
    segmentation=('label_map', ))


def image_pipeline(cfg: Config) -> Compose:
    """The test pipeline of ``cfg`` without its annotation loaders: image
    file -> packed inputs."""
    steps = [
        t for t in cfg.test_dataloader.dataset.pipeline
        if t['type'].split('.')[-1] not in ANNOTATION_LOADERS
    ]
    return Compose(steps)


def paste_masks(probs: torch.Tensor, boxes: torch.Tensor, shape: Sequence[int],
                threshold: float) -> torch.Tensor:
    """Binary masks (K, H, W) of an ``shape`` image from (K, h, w) mask
    probabilities inside ``boxes`` (K, 4, image coordinates), pasted one by
    one with mmdet's paste (as its mask head does on the CPU)."""
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask
    h, w = int(shape[0]), int(shape[1])
    masks = torch.zeros(len(probs), h, w, dtype=torch.bool)
    for i in range(len(probs)):
        pasted, where = _do_paste_mask(probs[i:i + 1, None], boxes[i:i + 1], h,
                                       w, skip_empty=True)
        masks[(slice(i, i + 1), ) + where] = pasted >= threshold
    return masks


class OnnxPredictor:
    """An exported model of ``cfg`` in onnxruntime: data batches (or image
    files) in, the toolbox's data samples with predictions out."""

    def __init__(self, path: str, cfg: Config, threads: int = 1):
        self.cfg = cfg
        self.task = task_of(cfg)
        self.session = ort_session(path, threads)
        names = [o.name for o in self.session.get_outputs()]
        missing = [n for n in TASK_OUTPUTS[self.task] if n not in names]
        if missing:
            raise UserError(
                f'{path} is not a whole {self.task} model of '
                f'tools/export_onnx.py: it has no output {missing} (it has '
                f'{names}); export it without --backbone, from this config')
        self.preprocessor = build_preprocessor(cfg).eval()

    def run(self, inputs: torch.Tensor) -> dict:
        """Graph outputs by name for a preprocessed (N, 3, H, W) batch."""
        got = run_session(self.session, inputs)
        return {n: torch.from_numpy(v) for n, v in got.items()}

    def __call__(self, data: dict) -> list:
        """Predictions for a collated data batch (what a dataloader gives):
        its data samples, with the predictions filled in."""
        with torch.no_grad():
            batch = self.preprocessor(data, False)
        out = self.run(batch['inputs'])
        samples = batch['data_samples']
        fill = dict(detection=self._detections, segmentation=self._label_maps,
                    classification=self._scores)[self.task]
        fill(out, samples)
        return samples

    def predict_files(self, paths: Sequence[str]) -> list:
        """Predictions for image files, one data sample each."""
        pipeline = image_pipeline(self.cfg)
        samples = []
        for path in paths:
            samples += self(pseudo_collate([pipeline(dict(img_path=path))]))
        return samples

    # ------------------------------------------------------ output -> samples
    def _detections(self, out: dict, samples: list) -> None:
        from mmengine.structures import InstanceData
        test_cfg = self.cfg.model.test_cfg
        rcnn = test_cfg.get('rcnn', {})
        # mmdet's dense heads drop boxes this small before NMS, the graph
        # does not: such boxes (zero width or height, cut by the image
        # border) overlap nothing, so NMS kept the others alike
        min_size = test_cfg.get('min_bbox_size', -1) if not rcnn else -1
        for i, sample in enumerate(samples):
            dets, labels = out['dets'][i], out['labels'][i]
            h, w = sample.metainfo['img_shape'][:2]
            boxes = dets[:, :4].clone()
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
            keep = dets[:, 4] > 0  # (padding rows have score 0)
            if min_size >= 0:
                keep &= (boxes[:, 2] - boxes[:, 0] > min_size) & (
                    boxes[:, 3] - boxes[:, 1] > min_size)
            dets, labels, boxes = dets[keep], labels[keep], boxes[keep]
            scale = boxes.new_tensor(sample.metainfo['scale_factor'])
            boxes /= scale.repeat(2)
            pred = InstanceData(bboxes=boxes, scores=dets[:, 4],
                                labels=labels.long())
            if 'masks' in out:
                pred.masks = paste_masks(out['masks'][i][keep], boxes,
                                         sample.metainfo['ori_shape'],
                                         rcnn.get('mask_thr_binary', 0.5))
            sample.pred_instances = pred

    def _label_maps(self, out: dict, samples: list) -> None:
        from mmengine.structures import PixelData
        for i, sample in enumerate(samples):
            h, w = sample.metainfo['img_shape'][:2]
            label = out['label_map'][i][:, :h, :w].float()  # (1, h, w)
            ori = tuple(sample.metainfo['ori_shape'][:2])
            if ori != (h, w):
                label = F.interpolate(label[None], size=ori, mode='nearest')[0]
            sample.pred_sem_seg = PixelData(data=label.long())

    def _scores(self, out: dict, samples: list) -> None:
        scores = out['logits'].softmax(dim=1)
        for sample, score in zip(samples, scores):
            sample.set_pred_score(score).set_pred_label(score.argmax(0))
