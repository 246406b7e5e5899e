"""Running a trained model on your own images, folders of images or videos
(``tools/demo.py``): predictions as JSON and drawn on the inputs, for
detection, instance segmentation, semantic segmentation and
classification configs alike (the config's ``default_scope`` picks the
toolbox; its inference API and visualizer do the work).

Outputs in ``out_dir``: ``predictions.json`` (one record per image or
video frame), ``vis/<name>`` (images drawn on) or ``vis/<video>.mp4``, and
for segmentation ``label_maps/<name>.png`` (one class index per pixel).
"""
import json
import os
import os.path as osp
import time
import warnings
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from ..runtime.config import task_of

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v')


# ------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Frame:
    """One image to predict on: BGR (H, W, 3) uint8, where it came from
    (``frame`` is its index in a video, else None) and the name its
    drawing gets."""
    image: np.ndarray
    source: str
    name: str
    frame: Optional[int] = None


def input_kind(path: str) -> str:
    """'image', 'folder' or 'video'; an InputError for anything else."""
    if osp.isdir(path):
        return 'folder'
    if not osp.exists(path):
        raise InputError(f'input {path} not found: give an image, a folder '
                         'of images or a video')
    ext = osp.splitext(path)[1].lower()
    if ext in IMAGE_EXTS:
        return 'image'
    if ext in VIDEO_EXTS:
        return 'video'
    raise InputError(f'input {path} is neither an image '
                     f'({", ".join(IMAGE_EXTS)}) nor a video '
                     f'({", ".join(VIDEO_EXTS)})')


def folder_images(folder: str) -> List[str]:
    """The images of ``folder`` (not its sub-folders), sorted."""
    names = sorted(
        n for n in os.listdir(folder)
        if osp.splitext(n)[1].lower() in IMAGE_EXTS)
    if not names:
        raise InputError(f'folder {folder} holds no images '
                         f'({", ".join(IMAGE_EXTS)})')
    return [osp.join(folder, n) for n in names]


def read_image(path: str) -> np.ndarray:
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f'{path} cannot be read as an image')
    return image


def open_video(path: str) -> Tuple[object, float, int]:
    """An opened ``cv2.VideoCapture``, its frame rate and frame count."""
    import cv2
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise InputError(f'{path} cannot be opened as a video')
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.
    return capture, fps, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))


def video_frames(path: str, capture) -> Iterator[Frame]:
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        yield Frame(image, path, f'frame_{index:06d}', index)
        index += 1
    capture.release()


# ------------------------------------------------------------------ models
def check_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``, usable on this machine."""
    import torch
    if device == 'cpu':
        return device
    if device == 'cuda' or device.startswith('cuda:'):
        if not torch.cuda.is_available():
            raise InputError(f'--device {device}: no CUDA GPU is visible '
                             'here; use --device cpu')
        return device
    raise InputError(f'--device must be cpu, cuda or cuda:N, got {device!r}')


def dataset_meta(cfg, checkpoint: Optional[str]) -> dict:
    """Class names (and palette) of the model: from the checkpoint's meta
    data (mmengine stores the training set's), else from the config's test
    dataset ``metainfo``, else ``class_0``... for every head output."""
    if checkpoint:
        from ..checkpoint.io import load_checkpoint_file
        ckpt = load_checkpoint_file(checkpoint)
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        if isinstance(meta, dict) and meta.get('dataset_meta'):
            return dict(meta['dataset_meta'])
    loader = cfg.get('test_dataloader') or {}
    metainfo = (loader.get('dataset') or {}).get('metainfo')
    if metainfo and metainfo.get('classes'):
        return dict(metainfo)
    return dict(
        classes=tuple(f'class_{i}' for i in range(head_classes(cfg.model))))


def head_classes(model_cfg) -> int:
    """The ``num_classes`` of the first head of a model config."""
    for key in ('bbox_head', 'roi_head', 'decode_head', 'head'):
        head = model_cfg.get(key)
        if isinstance(head, dict):
            if 'num_classes' in head:
                return int(head['num_classes'])
            if isinstance(head.get('bbox_head'), dict):
                return int(head['bbox_head']['num_classes'])
    raise InputError('the config names no head with num_classes')


def with_palette(meta: dict) -> dict:
    """``meta`` with a fixed palette when it has none (seeded colours)."""
    if meta.get('palette'):
        return meta
    rng = np.random.RandomState(0)
    colours = rng.randint(40, 256, size=(len(meta['classes']), 3))
    return dict(meta, palette=[tuple(int(v) for v in c) for c in colours])


def load_model(cfg, checkpoint: Optional[str], device: str):
    """The model of ``cfg`` with every weight of ``checkpoint`` (a
    checkpoint that does not fit fails, see ``load_model_weights``), in
    eval mode on ``device``, with ``cfg`` and the dataset meta attached as
    the toolboxes' inference APIs expect them."""
    from mmengine.model import revert_sync_batchnorm

    from .model import build_model
    cfg = cfg.copy()
    model = build_model(cfg, checkpoint)
    if device == 'cpu':
        model = revert_sync_batchnorm(model)
    meta = with_palette(dataset_meta(cfg, checkpoint))
    model.cfg = model._config = cfg  # mmdet/mmseg and mmpretrain read these
    model.dataset_meta = meta
    return model.to(device).eval()


# ------------------------------------------------------------- predictors
class Predictor:
    """Runs one task's model on BGR images: ``predict(image)`` returns the
    JSON record of its predictions and the image drawn on (RGB)."""

    def __init__(self, model, score_thr: float):
        self.model = model
        self.score_thr = score_thr
        self.classes = tuple(model.dataset_meta['classes'])
        self.visualizer = self.build_visualizer(model.dataset_meta)

    def build_visualizer(self, meta: dict):
        raise NotImplementedError

    def predict(self, image: np.ndarray) -> Tuple[dict, np.ndarray]:
        raise NotImplementedError


_VIS_COUNT = [0]


def _vis_name() -> str:
    _VIS_COUNT[0] += 1
    return f'efficientvit_demo_{_VIS_COUNT[0]}'


class DetectionPredictor(Predictor):
    """mmdet's ``inference_detector`` and ``DetLocalVisualizer``; boxes
    (and masks, as COCO RLE) scoring at least ``score_thr``."""

    def build_visualizer(self, meta):
        from mmdet.visualization import DetLocalVisualizer
        vis = DetLocalVisualizer(name=_vis_name())
        vis.dataset_meta = meta
        return vis

    def predict(self, image):
        from mmdet.apis import inference_detector
        sample = inference_detector(self.model, image)
        pred = sample.pred_instances
        keep = pred.scores >= self.score_thr
        pred = pred[keep]
        masks = pred.masks.cpu().numpy() if 'masks' in pred else None
        instances = []
        for i, (label, score, box) in enumerate(
                zip(pred.labels.tolist(), pred.scores.tolist(),
                    pred.bboxes.tolist())):
            item = dict(label=label, class_name=self.classes[label],
                        score=round(score, 4), bbox=[round(v, 1) for v in box])
            if masks is not None:
                item['mask'] = rle(masks[i])
            instances.append(item)
        with warnings.catch_warnings():  # boxes over the edge are drawn cut
            warnings.filterwarnings(
                'ignore', message='Warning: The (bbox|polygon) is out of '
                'bounds')
            self.visualizer.add_datasample('pred', image[..., ::-1],
                                           data_sample=sample, draw_gt=False,
                                           show=False,
                                           pred_score_thr=self.score_thr)
        return dict(instances=instances), self.visualizer.get_image()


def rle(mask: np.ndarray) -> dict:
    """A (H, W) bool mask as COCO run-length encoding (``size``,
    ``counts``), as pycocotools decodes it."""
    from pycocotools import mask as mask_utils
    code = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(v) for v in code['size']],
                counts=code['counts'].decode('ascii'))


class SegmentationPredictor(Predictor):
    """mmseg's ``inference_model`` and ``SegLocalVisualizer``; the label
    map (written by :func:`run_demo`) and each class's share of the
    pixels."""

    def build_visualizer(self, meta):
        from mmseg.visualization import SegLocalVisualizer
        vis = SegLocalVisualizer(name=_vis_name())
        # by keyword: mmseg 1.2.2's __init__ passes them swapped
        vis.set_dataset_meta(classes=meta['classes'], palette=meta['palette'])
        return vis

    def predict(self, image):
        from mmseg.apis import inference_model
        sample = inference_model(self.model, image)
        labels = sample.pred_sem_seg.data[0].cpu().numpy()
        counts = np.bincount(labels.reshape(-1), minlength=len(self.classes))
        shares = {
            self.classes[i]: round(float(c) / labels.size, 4)
            for i, c in enumerate(counts) if c and i < len(self.classes)
        }
        self.visualizer.add_datasample('pred', image[..., ::-1], sample,
                                       draw_gt=False, show=False)
        record = dict(pixel_share=shares, label_map=labels.astype(np.uint8))
        return record, self.visualizer.get_image()


class ClassificationPredictor(Predictor):
    """mmpretrain's ``ImageClassificationInferencer`` and
    ``UniversalVisualizer``; the top class and every class scoring at least
    ``score_thr``."""

    def build_visualizer(self, meta):
        from mmpretrain.apis import ImageClassificationInferencer
        from mmpretrain.visualization import UniversalVisualizer
        self.inferencer = ImageClassificationInferencer(
            self.model, pretrained=False, classes=self.classes)
        return UniversalVisualizer(name=_vis_name())

    def predict(self, image):
        sample = self.inferencer(image, return_datasamples=True)[0]
        scores = sample.pred_score.cpu().tolist()
        label = int(sample.pred_label.item())
        record = dict(
            label=label, class_name=self.classes[label],
            score=round(scores[label], 4), classes={
                self.classes[i]: round(s, 4)
                for i, s in enumerate(scores) if s >= self.score_thr
            })
        self.visualizer.visualize_cls(image[..., ::-1], sample,
                                      classes=self.classes, draw_gt=False)
        return record, self.visualizer.get_image()


PREDICTORS = {
    'detection': DetectionPredictor,
    'segmentation': SegmentationPredictor,
    'classification': ClassificationPredictor,
}


# ------------------------------------------------------------------- demo
class Progress:
    """Prints ``done/total`` about ten times over a long input."""

    def __init__(self, total: int, what: str, quiet: bool = False):
        self.total, self.what, self.quiet = total, what, quiet
        self.every = max(1, total // 10) if total else 25
        self.start = time.time()

    def step(self, done: int) -> None:
        if self.quiet or not (done % self.every == 0 or done == self.total):
            return
        rate = done / max(time.time() - self.start, 1e-6)
        total = self.total or '?'
        print(f'[demo] {done}/{total} {self.what} ({rate:.1f}/s)', flush=True)


def _save_label_map(record: dict, out_dir: str, name: str) -> None:
    import cv2
    path = osp.join(out_dir, 'label_maps', osp.splitext(name)[0] + '.png')
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, record.pop('label_map'))
    record['label_map'] = osp.relpath(path, out_dir)


def run_demo(input_path: str, config: str, checkpoint: Optional[str],
             out_dir: str, device: str = 'cpu', score_thr: float = 0.3,
             cfg_options: Optional[dict] = None, quiet: bool = False) -> dict:
    """Predict on an image, a folder of images or a video; write
    ``predictions.json`` and the drawings to ``out_dir``. Returns the
    JSON's content (``task``, ``inputs``, ``results``: one record per
    image or frame, with ``file`` and ``frame``)."""
    from ..demo.render import write_rgb
    from ..runtime.config import load_config
    from ..runtime.preflight import check_checkpoint_file
    if not 0 <= score_thr <= 1:
        raise InputError(f'--score-thr must be in [0, 1], got {score_thr}')
    kind = input_kind(input_path)
    device = check_device(device)
    check_checkpoint_file(checkpoint, 'checkpoint')
    cfg = load_config(config, cfg_options)
    task = task_of(cfg)
    predictor = PREDICTORS[task](load_model(cfg, checkpoint, device),
                                 score_thr)
    writer, total = None, 0
    if kind == 'video':
        capture, fps, total = open_video(input_path)
        frames = video_frames(input_path, capture)
    else:
        paths = [input_path] if kind == 'image' else folder_images(input_path)
        total = len(paths)
        frames = (Frame(read_image(p), p, osp.basename(p)) for p in paths)
    progress = Progress(total, 'frames' if kind == 'video' else 'images', quiet
                        or total < 2)
    results = []
    for done, frame in enumerate(frames, 1):
        record, drawn = predictor.predict(frame.image)
        if 'label_map' in record:
            _save_label_map(record, out_dir, frame.name)
        h, w = frame.image.shape[:2]
        results.append(
            dict(file=frame.source, frame=frame.frame, height=h, width=w,
                 **record))
        if kind == 'video':
            writer = writer or video_writer(
                osp.join(out_dir, 'vis',
                         osp.splitext(osp.basename(input_path))[0] + '.mp4'),
                fps, drawn.shape)
            writer.write(np.ascontiguousarray(drawn[..., ::-1]))
        else:
            write_rgb(osp.join(out_dir, 'vis', frame.name), drawn)
        progress.step(done)
    if writer is not None:
        writer.release()
    if not results:
        raise InputError(f'{input_path} gave no frames to predict on')
    summary = dict(task=task, config=config, checkpoint=checkpoint,
                   device=device, score_thr=score_thr, input=input_path,
                   input_kind=kind, classes=list(predictor.classes),
                   results=results)
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'predictions.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


def video_writer(path: str, fps: float, shape: Sequence[int]):
    """An mp4 ``cv2.VideoWriter`` for frames of ``shape`` (H, W, 3)."""
    import cv2
    os.makedirs(osp.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (int(shape[1]), int(shape[0])))
    if not writer.isOpened():
        raise InputError(f'could not open {path} for writing a video')
    return writer
