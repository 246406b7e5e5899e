"""Drawing a demo's predictions: grids of val images with detections,
label maps or predicted classes, written as one PNG."""
import os
import os.path as osp
from typing import List, Tuple

from .steps import DemoError


def text_strip(titles, width: int, height: int = 28, scale: float = 0.6,
               colours=None):
    """A white strip with ``titles`` centred in equal columns."""
    import cv2
    import numpy as np
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    step = width / len(titles)
    colours = colours or [(0, 0, 0)] * len(titles)
    for i, (title, colour) in enumerate(zip(titles, colours)):
        (w, _), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x = int(i * step + (step - w) / 2)
        cv2.putText(strip, title, (x, height - 9), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, colour, 1, cv2.LINE_AA)
    return strip


def tile_grid(tiles, cols: int, gap: int = 0):
    """Equal-size RGB tiles in rows of ``cols``, white between and after."""
    import numpy as np
    cols = min(cols, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    h, w = tiles[0].shape[:2]
    grid = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255,
                   dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = r * (h + gap), c * (w + gap)
        grid[y:y + h, x:x + w] = tile[:h, :w]
    return grid


def write_rgb(path: str, image) -> None:
    import cv2
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {path}')


def draw_detections(cfg, checkpoint: str, out: str, num: int,
                    score_thr: float = 0.5) -> str:
    """Predictions (score >= ``score_thr``) drawn on val images, 4 a row."""
    import warnings

    import mmcv
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    warnings.filterwarnings(
        'ignore', message='Warning: The (bbox|polygon) '
        'is out of bounds')
    model = init_detector(cfg, checkpoint, device='cpu')
    visualizer = VISUALIZERS.build(
        dict(type='DetLocalVisualizer', name='shapes_demo_vis'))
    visualizer.dataset_meta = model.dataset_meta
    ds = cfg.test_dataloader.dataset
    img_dir = osp.join(ds.data_root, ds.data_prefix.img)
    tiles = []
    for name in sorted(os.listdir(img_dir))[:num]:
        # BGR in, as LoadImageFromFile gives it in training; RGB to draw
        image = mmcv.imread(osp.join(img_dir, name))
        result = inference_detector(model, image)
        visualizer.add_datasample(name, mmcv.bgr2rgb(image),
                                  data_sample=result, draw_gt=False,
                                  show=False, pred_score_thr=score_thr)
        tiles.append(visualizer.get_image())
    write_rgb(out, tile_grid(tiles, 4))
    return f'(score >= {score_thr})'


def colour_labels(label_map, palette):
    import numpy as np
    lut = np.full((256, 3), 255, dtype=np.uint8)  # ignore index: white
    lut[:len(palette)] = np.asarray(palette, dtype=np.uint8)
    return lut[label_map]


def legend(classes, palette, width: int, height: int = 28):
    """A colour swatch and the name of every class."""
    import cv2
    import numpy as np
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 6
    for name, colour in zip(classes, palette):
        cv2.rectangle(strip, (x, 7), (x + 14, 21),
                      tuple(int(c) for c in colour), -1)
        cv2.rectangle(strip, (x, 7), (x + 14, 21), (128, 128, 128), 1)
        cv2.putText(strip, name, (x + 19, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
        (w, _), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        x += 19 + w + 12
    return strip


def draw_segmentation(cfg, checkpoint: str, out: str, num: int) -> str:
    """Rows of image | ground truth | prediction, segmented one image at a
    time with mmseg's single-image API, shown at 2x."""
    import cv2
    import numpy as np
    from mmseg.apis import inference_model, init_model
    model = init_model(cfg, checkpoint, device='cpu')
    palette = model.dataset_meta['palette']
    ds = cfg.test_dataloader.dataset
    img_dir = osp.join(ds.data_root, ds.data_prefix.img_path)
    ann_dir = osp.join(ds.data_root, ds.data_prefix.seg_map_path)
    rows = []
    for name in sorted(os.listdir(img_dir))[:num]:
        path = osp.join(img_dir, name)
        pred = inference_model(model, path).pred_sem_seg.data[0]
        pred = pred.cpu().numpy().astype(np.uint8)
        gt = cv2.imread(
            osp.join(ann_dir,
                     osp.splitext(name)[0] + '.png'), cv2.IMREAD_GRAYSCALE)
        image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        rows.append(
            tile_grid([
                image,
                colour_labels(gt, palette),
                colour_labels(pred, palette)
            ], 3, gap=4))
    grid = tile_grid(rows, 1, gap=4)
    grid = cv2.resize(grid, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    write_rgb(
        out,
        np.concatenate([
            text_strip(['image', 'ground truth', 'prediction'], grid.shape[1]),
            grid,
            legend(model.dataset_meta['classes'], palette, grid.shape[1])
        ]))
    return '(image | ground truth | prediction)'


_GREEN, _RED = (0, 150, 0), (210, 0, 0)


def val_crops(cfg, num: int) -> List[Tuple[str, str]]:
    """(path, true class) of ``num`` val crops of a ``CustomDataset``
    folder, in scene order (so the classes mix)."""
    ds = cfg.test_dataloader.dataset
    root = osp.join(ds.data_root, ds.data_prefix)
    items = [(name, osp.join(root, label, name), label)
             for label in sorted(os.listdir(root))
             if osp.isdir(osp.join(root, label))
             for name in os.listdir(osp.join(root, label))]
    return [(path, label) for _, path, label in sorted(items)[:num]]


def draw_classification(cfg, checkpoint: str, out: str, num: int,
                        cols: int = 8) -> str:
    """Val crops at 2x with the predicted class under each, green where it
    is right, red (and the true class) where it is wrong."""
    import cv2
    import numpy as np
    from mmpretrain.apis import ImageClassificationInferencer
    crops = val_crops(cfg, num)
    if not crops:
        raise DemoError('no val crops to draw')
    inferencer = ImageClassificationInferencer(model=cfg,
                                               pretrained=checkpoint,
                                               device='cpu')
    results = inferencer([path for path, _ in crops], batch_size=32)
    tiles, right = [], 0
    for (path, label), result in zip(crops, results):
        pred = result['pred_class']
        ok = pred == label
        right += ok
        colour = _GREEN if ok else _RED
        image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, None, fx=2, fy=2,
                           interpolation=cv2.INTER_NEAREST)
        image = cv2.copyMakeBorder(image, 4, 4, 4, 4, cv2.BORDER_CONSTANT,
                                   value=colour)
        width = image.shape[1]
        caption = [text_strip([pred], width, 20, 0.45, [colour])]
        caption.append(
            text_strip([f'true: {label}' if not ok else ''], width, 18, 0.4))
        tiles.append(np.concatenate([image] + caption))
    grid = tile_grid(tiles, cols, gap=6)
    write_rgb(
        out,
        np.concatenate([
            text_strip([
                'predicted class: green right, red wrong (true class '
                'below)'
            ], grid.shape[1]), grid
        ]))
    return f'({right}/{len(crops)} drawn crops right)'
