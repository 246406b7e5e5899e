"""A synthetic "shapes" dataset for demos and tests of every task.

Scenes are drawn from a seeded generator, so the same ``(seed, index)``
always gives the same image and annotations, on any machine:

* filled shapes (circle, square, triangle, star, ...), each with a random
  size, rotation and colour, on a random background (flat, gradient,
  blotchy or striped) with sensor-like noise;
* objects may overlap; a later object hides the part of an earlier one
  below it, and the annotations describe what is *visible* (as COCO does).
  A placement is redrawn when it would hide too much of another object or
  punch a hole in it, so every visible mask is a set of simple polygons.

One scene API, three exporters:

* :func:`export_coco`  -- COCO instances (boxes and polygon masks) for mmdet;
* :func:`export_ade`   -- ADE20K-style images and label maps (0 = background)
  for mmseg;
* :func:`export_crops` -- ``split/<class>/*.png`` object crops, the folder
  layout of mmpretrain's ``CustomDataset``.

Command line (``python -m efficientvit_mm.datasets.shapes --help``)::

    python -m efficientvit_mm.datasets.shapes coco data/shapes \\
        --num-train 800 --num-val 100 --image-size 256
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

__all__ = [
    'SHAPE_CLASSES', 'DEFAULT_CLASSES', 'ShapeInstance', 'ShapesScene',
    'ShapesGenerator', 'export_coco', 'export_ade', 'export_crops',
    'split_seed', 'main'
]


# ----------------------------------------------------------------- geometry
def _regular(n: int, phase: float = 0.) -> np.ndarray:
    """Vertices of a regular n-gon of circumradius 1 (angle 0 points up)."""
    angles = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([np.sin(angles), -np.cos(angles)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    outer = _regular(points)
    inner_pts = inner * _regular(points, math.pi / points)
    return np.stack([outer, inner_pts], axis=1).reshape(-1, 2)


def _cross(arm: float = 0.36) -> np.ndarray:
    a, b = arm, 1.0 / math.sqrt(1 + arm**2)  # keep the circumradius 1
    a *= b
    return np.array([[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a],
                     [a, b], [-a, b], [-a, a], [-b, a], [-b, -a], [-a, -a]])


#: Outline of every available class, circumradius 1, centred on the origin.
SHAPE_CLASSES: Dict[str, np.ndarray] = {
    'circle': _regular(64),
    'square': _regular(4, math.pi / 4),
    'triangle': _regular(3),
    'star': _star(),
    'hexagon': _regular(6),
    'cross': _cross(),
}
#: Classes drawn unless the generator is told otherwise.
DEFAULT_CLASSES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'star')

# shapes whose look does not change when rotated
_ROTATION_FREE = {'circle'}


def split_seed(seed: int, split: str) -> int:
    """A per-split seed, so train and val scenes never coincide."""
    return int(seed) * 1000 + sum(ord(c) * 31**i
                                  for i, c in enumerate(split)) % 997


# -------------------------------------------------------------------- scenes
@dataclass
class ShapeInstance:
    """One visible object of a scene.

    Attributes:
        label: index into the generator's ``classes``.
        mask: (H, W) bool, the visible pixels.
        bbox: (x, y, w, h) of the visible pixels, in pixels.
        polygons: outlines of the visible parts, each ``[x0, y0, x1, ...]``
            (COCO polygon format, pixel-corner coordinates).
        area: number of visible pixels.
    """
    label: int
    mask: np.ndarray
    bbox: Tuple[int, int, int, int]
    polygons: List[List[float]]
    area: int


@dataclass
class ShapesScene:
    """An RGB image (H, W, 3) uint8 and its visible instances."""
    image: np.ndarray
    instances: List[ShapeInstance] = field(default_factory=list)
    classes: Tuple[str, ...] = DEFAULT_CLASSES

    @property
    def labels(self) -> np.ndarray:
        return np.array([i.label for i in self.instances], dtype=np.int64)

    @property
    def masks(self) -> np.ndarray:
        """(N, H, W) bool visible masks."""
        h, w = self.image.shape[:2]
        if not self.instances:
            return np.zeros((0, h, w), dtype=bool)
        return np.stack([i.mask for i in self.instances])

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) float32 boxes as (x1, y1, x2, y2)."""
        out = np.zeros((len(self.instances), 4), dtype=np.float32)
        for k, inst in enumerate(self.instances):
            x, y, w, h = inst.bbox
            out[k] = (x, y, x + w, y + h)
        return out

    def label_map(self) -> np.ndarray:
        """(H, W) uint8 semantic map: 0 background, class index + 1."""
        out = np.zeros(self.image.shape[:2], dtype=np.uint8)
        for inst in self.instances:
            out[inst.mask] = inst.label + 1
        return out


def _mask_polygons(mask: np.ndarray) -> List[List[float]]:
    """Outer outlines of a hole-free mask, as COCO polygons.

    The contour is traced on a 2x nearest-upsampled mask: its points are then
    a quarter pixel inside the true pixel edges, and pycocotools (used by
    mmdet and by COCO evaluation) rasterises the polygons back to exactly
    ``mask``.
    """
    up = cv2.resize(
        mask.astype(np.uint8), None, fx=2, fy=2,
        interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        pts = (contour.reshape(-1, 2).astype(np.float64) + 0.5) / 2
        if len(pts) < 3:  # cannot happen on a 2x mask; kept as a guard
            continue
        polygons.append([round(float(v), 2) for v in pts.reshape(-1)])
    return polygons


def _has_hole(mask: np.ndarray) -> bool:
    _, hierarchy = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return hierarchy is not None and bool((hierarchy[0, :, 3] >= 0).any())


class ShapesGenerator:
    """Seeded generator of shape scenes.

    Args:
        classes: names from :data:`SHAPE_CLASSES`, in label order.
        image_size: ``int`` or ``(height, width)``.
        num_objects: inclusive range of objects per image.
        size_range: object circumradius as a fraction of the shorter image
            side, ``(min, max)``; the radius is drawn log-uniformly.
        min_visible: every object keeps at least this fraction of its pixels
            visible; placements that break it are redrawn.
        min_area: objects (and visible parts) smaller than this many pixels
            are not placed.
        noise: standard deviation of the pixel noise (0-255 scale).
        seed: scenes are a pure function of ``(seed, index)``.
    """

    def __init__(self, classes: Sequence[str] = DEFAULT_CLASSES,
                 image_size: Union[int, Tuple[int, int]] = 256,
                 num_objects: Tuple[int, int] = (1, 6),
                 size_range: Tuple[float, float] = (0.06, 0.25),
                 min_visible: float = 0.6, min_area: int = 36,
                 noise: float = 6.0, seed: int = 0):
        unknown = [c for c in classes if c not in SHAPE_CLASSES]
        if unknown or not classes:
            raise ValueError(f'unknown shape classes {unknown}; choose from '
                             f'{sorted(SHAPE_CLASSES)}')
        if len(set(classes)) != len(classes):
            raise ValueError(f'classes must be unique, got {list(classes)}')
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.height, self.width = (int(v) for v in image_size)
        if min(self.height, self.width) < 16:
            raise ValueError(f'image_size must be at least 16 pixels, got '
                             f'{image_size}')
        lo, hi = num_objects
        if not 0 <= lo <= hi:
            raise ValueError(f'num_objects must be (min, max) with '
                             f'0 <= min <= max, got {num_objects}')
        smin, smax = size_range
        if not 0 < smin <= smax <= 0.5:
            raise ValueError(f'size_range must satisfy 0 < min <= max <= '
                             f'0.5, got {size_range}')
        if not 0 < min_visible <= 1:
            raise ValueError(f'min_visible must be in (0, 1], got '
                             f'{min_visible}')
        self.classes = tuple(classes)
        self.num_objects = (int(lo), int(hi))
        self.size_range = (float(smin), float(smax))
        self.min_visible = float(min_visible)
        self.min_area = int(min_area)
        self.noise = float(noise)
        self.seed = int(seed)

    # ---------------------------------------------------------- drawing
    def _background(self, rng: np.random.Generator) -> np.ndarray:
        h, w = self.height, self.width
        kind = rng.choice(['flat', 'gradient', 'blotches', 'stripes'])
        base = rng.uniform(0, 255, 3)
        if kind == 'flat':
            img = np.broadcast_to(base, (h, w, 3)).copy()
        elif kind == 'gradient':
            other = rng.uniform(0, 255, 3)
            angle = rng.uniform(0, 2 * math.pi)
            yy, xx = np.mgrid[0:h, 0:w]
            t = (xx * math.cos(angle) + yy * math.sin(angle))
            t = (t - t.min()) / max(t.max() - t.min(), 1)
            img = base * (1 - t[..., None]) + other * t[..., None]
        elif kind == 'blotches':
            cells = rng.integers(3, 7)
            coarse = rng.normal(0, 40, (cells, cells, 3))
            img = base + cv2.resize(coarse,
                                    (w, h), interpolation=cv2.INTER_CUBIC)
        else:
            other = rng.uniform(0, 255, 3)
            period = rng.uniform(8, 32)
            angle = rng.uniform(0, math.pi)
            yy, xx = np.mgrid[0:h, 0:w]
            t = (xx * math.cos(angle) + yy * math.sin(angle)) / period
            t = (np.sin(2 * math.pi * t) > 0).astype(np.float64)
            # faint stripes, so shapes stay the strongest edges
            img = base + 0.35 * (other - base) * t[..., None]
        return img

    def _colour(self, rng: np.random.Generator,
                background: np.ndarray) -> np.ndarray:
        """A colour that stands out from the background's mean colour."""
        mean = background.reshape(-1, 3).mean(0)
        best, best_dist = None, -1.
        for _ in range(16):
            colour = rng.uniform(0, 255, 3)
            dist = float(np.linalg.norm(colour - mean))
            if dist > 110:
                return colour
            if dist > best_dist:
                best, best_dist = colour, dist
        return best

    def _outline(self, rng: np.random.Generator, label: int,
                 radius: float) -> np.ndarray:
        """Outline (K, 2) of a shape centred at a random valid position."""
        name = self.classes[label]
        pts = SHAPE_CLASSES[name] * radius
        if name not in _ROTATION_FREE:
            angle = rng.uniform(0, 2 * math.pi)
            rot = np.array([[math.cos(angle), -math.sin(angle)],
                            [math.sin(angle), math.cos(angle)]])
            pts = pts @ rot.T
        lo, hi = pts.min(0), pts.max(0)
        # keep the whole outline inside the image
        cx = rng.uniform(-lo[0], self.width - hi[0])
        cy = rng.uniform(-lo[1], self.height - hi[1])
        return pts + np.array([cx, cy])

    def _rasterise(self, outline: np.ndarray) -> np.ndarray:
        mask = np.zeros((self.height, self.width), dtype=np.uint8)
        shift = 4  # sub-pixel vertex precision
        pts = np.round((outline - 0.5) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=shift)
        return mask.astype(bool)

    # ------------------------------------------------------------ scenes
    def scene(self, index: int) -> ShapesScene:
        """The scene number ``index`` of this generator's seed."""
        rng = np.random.default_rng([self.seed, int(index)])
        image = self._background(rng)
        short = min(self.height, self.width)
        count = int(rng.integers(self.num_objects[0], self.num_objects[1] + 1))
        full: List[np.ndarray] = []  # full mask of each placed object
        visible: List[np.ndarray] = []
        labels: List[int] = []
        colours: List[np.ndarray] = []
        for _ in range(count):
            label = int(rng.integers(len(self.classes)))
            for _attempt in range(20):
                radius = short * math.exp(
                    rng.uniform(
                        math.log(self.size_range[0]),
                        math.log(self.size_range[1])))
                mask = self._rasterise(self._outline(rng, label, radius))
                if mask.sum() < self.min_area:
                    continue
                if self._fits(mask, full, visible):
                    break
            else:
                continue  # no room for this object: leave it out
            for k in range(len(visible)):
                visible[k] = visible[k] & ~mask
            full.append(mask)
            visible.append(mask.copy())
            labels.append(label)
            colours.append(self._colour(rng, image))

        for mask, colour in zip(visible, colours):
            shade = colour * rng.uniform(0.85, 1.15)
            image[mask] = shade
        if self.noise > 0:
            image = image + rng.normal(0, self.noise, image.shape)
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)

        instances = []
        for label, mask in zip(labels, visible):
            ys, xs = np.nonzero(mask)
            x0, y0 = int(xs.min()), int(ys.min())
            bbox = (x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1)
            instances.append(
                ShapeInstance(label, mask, bbox, _mask_polygons(mask),
                              int(mask.sum())))
        return ShapesScene(image, instances, self.classes)

    def _fits(self, mask: np.ndarray, full: List[np.ndarray],
              visible: List[np.ndarray]) -> bool:
        """Would ``mask`` on top keep every earlier object visible enough
        and hole-free?"""
        for whole, seen in zip(full, visible):
            hidden = seen & mask
            if not hidden.any():
                continue
            left = seen & ~mask
            if left.sum() < max(self.min_visible * whole.sum(), self.min_area):
                return False
            if _has_hole(left):
                return False
        return True

    def __iter__(self) -> Iterator[ShapesScene]:
        index = 0
        while True:
            yield self.scene(index)
            index += 1

    def scenes(self, num: int) -> Iterator[ShapesScene]:
        for index in range(num):
            yield self.scene(index)


# ----------------------------------------------------------------- exporters
def _write_image(path: str, image: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.endswith(
        ('.jpg', '.jpeg')) else []
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params):
        raise OSError(f'could not write {path}')


def _progress(done: int, total: int, what: str, every: int) -> None:
    if every and (done % every == 0 or done == total):
        print(f'[shapes] {what}: {done}/{total} images', flush=True)


def export_coco(out_dir: str, splits: Dict[str, int], seed: int = 0,
                img_suffix: str = '.jpg', progress_every: int = 0,
                **generator_kwargs) -> Dict[str, str]:
    """Write COCO instance annotations with boxes and polygon masks.

    Layout: ``out_dir/<split>/<id><img_suffix>`` and
    ``out_dir/annotations/instances_<split>.json``. Each split is drawn with
    its own seed (:func:`split_seed`). Returns ``{split: ann_file}``.
    """
    ann_files = {}
    for split, num in splits.items():
        gen = ShapesGenerator(seed=split_seed(seed, split), **generator_kwargs)
        images, annotations = [], []
        for index, scene in enumerate(gen.scenes(num)):
            name = f'{index:06d}{img_suffix}'
            _write_image(osp.join(out_dir, split, name), scene.image)
            image_id = index + 1
            images.append(
                dict(id=image_id, file_name=name, height=gen.height,
                     width=gen.width))
            for inst in scene.instances:
                annotations.append(
                    dict(
                        id=len(annotations) + 1, image_id=image_id,
                        category_id=inst.label + 1,
                        bbox=[float(v)
                              for v in inst.bbox], area=float(inst.area),
                        segmentation=inst.polygons, iscrowd=0))
            _progress(index + 1, num, f'coco {split}', progress_every)
        coco = dict(
            info=dict(
                description='efficientvit_mm synthetic shapes', seed=seed,
                split=split, generator=dict(image_size=[gen.height, gen.width],
                                            num_objects=list(gen.num_objects),
                                            size_range=list(gen.size_range),
                                            min_visible=gen.min_visible)),
            licenses=[], categories=[
                dict(id=i + 1, name=name, supercategory='shape')
                for i, name in enumerate(gen.classes)
            ], images=images, annotations=annotations)
        ann_file = osp.join(out_dir, 'annotations', f'instances_{split}.json')
        os.makedirs(osp.dirname(ann_file), exist_ok=True)
        with open(ann_file, 'w') as f:
            json.dump(coco, f)
        ann_files[split] = ann_file
    return ann_files


def export_ade(out_dir: str, splits: Optional[Dict[str,
                                                   int]] = None, seed: int = 0,
               img_suffix: str = '.jpg', progress_every: int = 0,
               **generator_kwargs) -> Dict[str, Tuple[str, str]]:
    """Write an ADE20K-style semantic segmentation set.

    Layout: ``out_dir/images/<split>/<id><img_suffix>`` and
    ``out_dir/annotations/<split>/<id>.png`` (uint8 label map, 0 =
    background, class ``k`` = ``k + 1``; with mmseg's ``reduce_zero_label``
    background is ignored, without it it is class 0). Splits default to
    ``training`` and ``validation``. Returns ``{split: (img_dir, ann_dir)}``.
    """
    splits = splits or dict(training=200, validation=50)
    dirs = {}
    for split, num in splits.items():
        gen = ShapesGenerator(seed=split_seed(seed, split), **generator_kwargs)
        img_dir = osp.join(out_dir, 'images', split)
        ann_dir = osp.join(out_dir, 'annotations', split)
        for index, scene in enumerate(gen.scenes(num)):
            stem = f'{index:06d}'
            _write_image(osp.join(img_dir, stem + img_suffix), scene.image)
            os.makedirs(ann_dir, exist_ok=True)
            if not cv2.imwrite(
                    osp.join(ann_dir, stem + '.png'), scene.label_map()):
                raise OSError(f'could not write a label map in {ann_dir}')
            _progress(index + 1, num, f'ade {split}', progress_every)
        dirs[split] = (img_dir, ann_dir)
    with open(osp.join(out_dir, 'classes.txt'), 'w') as f:
        f.write('\n'.join(('background', ) + gen.classes) + '\n')
    return dirs


def export_crops(out_dir: str, splits: Optional[Dict[str, int]] = None,
                 seed: int = 0, crop_size: int = 64, margin: float = 0.15,
                 min_side: int = 8, progress_every: int = 0,
                 **generator_kwargs) -> Dict[str, int]:
    """Write object crops in mmpretrain ``CustomDataset`` folder layout.

    Layout: ``out_dir/<split>/<class>/<image>_<k>.png``, one square crop
    (``crop_size`` pixels, box plus ``margin`` on each side) per object whose
    visible box is at least ``min_side`` pixels. ``splits`` counts *scenes*
    per split (default ``train`` 200, ``val`` 50). Returns the number of
    crops per split.
    """
    splits = splits or dict(train=200, val=50)
    counts = {}
    for split, num in splits.items():
        gen = ShapesGenerator(seed=split_seed(seed, split), **generator_kwargs)
        for name in gen.classes:  # every class folder exists, even if empty
            os.makedirs(osp.join(out_dir, split, name), exist_ok=True)
        written = 0
        for index, scene in enumerate(gen.scenes(num)):
            for k, inst in enumerate(scene.instances):
                x, y, w, h = inst.bbox
                if min(w, h) < min_side:
                    continue
                side = max(w, h) * (1 + 2 * margin)
                cx, cy = x + w / 2, y + h / 2
                x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
                x1, y1 = x0 + int(round(side)), y0 + int(round(side))
                pad = max(0, -x0, -y0, x1 - gen.width, y1 - gen.height)
                image = np.pad(scene.image, ((pad, pad), (pad, pad), (0, 0)),
                               mode='edge')
                crop = image[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
                crop = cv2.resize(crop, (crop_size, crop_size),
                                  interpolation=cv2.INTER_AREA)
                _write_image(
                    osp.join(out_dir, split, gen.classes[inst.label],
                             f'{index:06d}_{k}.png'), crop)
                written += 1
            _progress(index + 1, num, f'crops {split}', progress_every)
        counts[split] = written
    return counts


# ---------------------------------------------------------------------- CLI
def _parse_splits(text: str) -> Dict[str, int]:
    splits = {}
    for item in text.split(','):
        name, _, num = item.partition('=')
        if not name or not num.isdigit():
            raise argparse.ArgumentTypeError(
                f'splits look like train=800,val=100; got {text!r}')
        splits[name] = int(num)
    return splits


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m efficientvit_mm.datasets.shapes',
        description='Write the synthetic shapes dataset (fixed seed).')
    parser.add_argument(
        'format', choices=['coco', 'ade', 'crops'],
        help='coco: detection/instance segmentation; ade: '
        'semantic segmentation; crops: classification')
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument(
        '--splits', type=_parse_splits, default=None,
        help='scenes per split, e.g. train=800,val=100 (defaults: coco '
        'train=800,val=100; ade training=200,validation=50; crops '
        'train=200,val=50)')
    parser.add_argument('--image-size', type=int, nargs='+', default=[256],
                        help='side, or height width (default 256)')
    parser.add_argument('--classes', nargs='+', default=list(DEFAULT_CLASSES),
                        choices=sorted(SHAPE_CLASSES))
    parser.add_argument('--num-objects', type=int, nargs=2, default=[1, 6],
                        metavar=('MIN', 'MAX'))
    parser.add_argument('--size-range', type=float, nargs=2,
                        default=[0.06, 0.25], metavar=('MIN', 'MAX'),
                        help='circumradius / shorter image side')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if len(args.image_size) not in (1, 2):
        parser.error('--image-size takes one or two numbers')
    size = tuple(args.image_size) if len(args.image_size) == 2 else \
        args.image_size[0]
    kwargs = dict(classes=args.classes, image_size=size,
                  num_objects=tuple(args.num_objects),
                  size_range=tuple(args.size_range), seed=args.seed,
                  progress_every=100)
    try:
        if args.format == 'coco':
            out = export_coco(args.out_dir, args.splits
                              or dict(train=800, val=100), **kwargs)
        elif args.format == 'ade':
            out = export_ade(args.out_dir, args.splits, **kwargs)
        else:
            out = export_crops(args.out_dir, args.splits, **kwargs)
    except ValueError as err:
        parser.error(str(err))
    print(f'[shapes] wrote {args.format} data to {args.out_dir}: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
