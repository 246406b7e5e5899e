"""The shapes demos: EfficientViT-M0 learns the synthetic shapes on the CPU,
for detection, segmentation or classification, in one command.

    .venv/bin/python tools/shapes_demo.py [det|seg|cls] [options]

Every demo runs the same four steps; only small parts differ per task (the
:class:`ShapesDemo` entries of :data:`SHAPES_DEMOS`):

1. **data** -- writes the shapes set the config's ``shapes_data`` describes
   (the arguments of ``efficientvit_mm.datasets.export_coco`` /
   ``export_ade`` / ``export_crops``) to its ``data_root``. A stamp,
   ``<data_root>/shapes_data.json``, records the settings: the data are
   reused when they match, and written afresh (nothing stale left behind)
   when they do not;
2. **training** -- ``tools/train.py`` in a subprocess, from scratch, with
   the lines worth seeing printed as it goes and the whole output in
   ``<work_dir>/train_stdout.log``;
3. **evaluation** -- the last checkpoint on the held-out val split (COCO bbox
   mAP, mIoU and per-class IoU, or top-1), through an mmengine ``Runner``
   whose output goes to ``<work_dir>/eval/eval.log``;
4. **drawing** -- ``<work_dir>/predictions.png``, predictions on val images
   (messages of the toolboxes in ``<work_dir>/draw.log``);

then ``<work_dir>/demo_result.json`` (metrics, wall time per step, paths).
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN_TOOL = osp.join(ROOT, 'tools', 'train.py')
PROG = 'tools/shapes_demo.py'
STAMP = 'shapes_data.json'
# training-log lines shown by every demo, besides the task's own
_PROGRESS_COMMON = ('Saving checkpoint', 'ERROR', 'Error', 'error:')
_INFO = ' - mmengine - INFO - '


class DemoError(RuntimeError):
    """A demo step cannot go on; the message says why."""


def say(msg: str) -> None:
    print(f'[demo] {msg}', flush=True)


@dataclass(frozen=True)
class Evaluation:
    """What step 3 found: the metrics of ``Runner.test()``, the number of
    val samples and the Runner's log file (for tables it only logs)."""
    metrics: dict
    num_val: int
    log_file: str


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


# ------------------------------------------------------------ shared steps
def generate_data(exporter: str, spec: dict, data_root: str, force: bool,
                  data_kind: str = 'shapes', progress_every: int = 0) -> bool:
    """Write the shapes set ``spec`` describes (the ``shapes_data`` of a
    demo config: ``splits``, ``seed`` and the other arguments of
    ``efficientvit_mm.datasets.<exporter>``) to ``data_root``.

    Returns False, writing nothing, when ``data_root`` holds a set written
    with the same settings (and ``force`` is off). Otherwise the set is
    written to a sibling folder and moved into place, replacing what the
    demo wrote there before, so no file of other settings is left. A
    folder the demo did not write is replaced only with ``force``.
    """
    from efficientvit_mm import datasets
    spec = json.loads(json.dumps(dict(spec)))  # tuples -> lists
    data_root = osp.normpath(data_root)
    stamp = osp.join(data_root, STAMP)
    if osp.isfile(stamp):
        with open(stamp) as f:
            same = json.load(f) == spec
        if same and not force:
            say(f'data already in {data_root} (same settings), skipping '
                'generation')
            return False
    elif osp.isdir(data_root) and os.listdir(data_root) and not force:
        raise DemoError(
            f'{data_root} holds files the demo did not write (no {STAMP}): '
            'pass --regenerate to replace them, or choose another '
            '--data-root')
    where = osp.realpath(data_root)
    for keep in (os.getcwd(), ROOT, osp.expanduser('~')):
        keep = osp.realpath(keep)
        if keep == where or keep.startswith(where.rstrip(os.sep) + os.sep):
            raise DemoError(f'the data root {data_root} holds {keep}; the '
                            'demo replaces its data root, choose a folder '
                            'of its own')
    kwargs = dict(spec)
    splits = kwargs.pop('splits')
    seed = kwargs.pop('seed')
    say(f'generating {data_kind} data in {data_root}: {splits} '
        f'{"scenes" if exporter == "export_crops" else "images"}, '
        f'seed {seed}')
    start = time.time()
    partial = data_root + '.partial'
    shutil.rmtree(partial, ignore_errors=True)
    written = getattr(datasets, exporter)(
        partial, splits, seed=seed, progress_every=progress_every, **kwargs)
    with open(osp.join(partial, STAMP), 'w') as f:
        json.dump(spec, f)
    if osp.isdir(data_root):
        shutil.rmtree(data_root)
    os.rename(partial, data_root)
    if exporter == 'export_crops':  # it counts what it wrote
        say(f'crops per split: {written}')
    say(f'data written in {time.time() - start:.0f}s')
    return True


def train(config: str, work_dir: str, cfg_options: Dict[str, object],
          progress: Tuple[str, ...], threads: Optional[int] = None) -> str:
    """``tools/train.py config`` in a subprocess; prints the log lines that
    contain one of ``progress`` and writes the whole output to
    ``<work_dir>/train_stdout.log``. Returns that path."""
    cmd = [sys.executable, TRAIN_TOOL, config, '--work-dir', work_dir]
    if cfg_options:
        cmd.append('--cfg-options')
        cmd += [f'{key}={value}' for key, value in cfg_options.items()]
    log_path = osp.join(work_dir, 'train_stdout.log')
    os.makedirs(work_dir, exist_ok=True)
    say(f'training (full log: {log_path})')
    env = dict(os.environ, PYTHONWARNINGS='ignore', PYTHONUNBUFFERED='1')
    if env.get('OMP_WAIT_POLICY', '').upper() == 'PASSIVE':
        # tools/shapes_demo.py sets it when other jobs keep the CPU busy
        say('OpenMP threads sleep while they wait (OMP_WAIT_POLICY=PASSIVE, '
            'the CPU is shared); --threads 1 may be faster still')
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    tail: List[str] = []
    with open(log_path, 'w') as log, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env, cwd=os.getcwd()) as proc:
        for line in proc.stdout:
            log.write(line)
            tail = (tail + [line])[-40:]
            if any(p in line for p in progress):
                print('  ' + line.rstrip().split(_INFO)[-1], flush=True)
    if proc.returncode != 0:
        sys.stdout.write(''.join(tail))
        raise DemoError(f'training failed (exit {proc.returncode}); see '
                        f'{log_path}')
    return log_path


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint mmengine's ``last_checkpoint`` file names."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        raise DemoError(f'training wrote no checkpoint ({path} is missing)')
    with open(path) as f:
        return f.read().strip()


def evaluate(cfg, checkpoint: str, work_dir: str) -> Evaluation:
    """``Runner.test()`` of ``checkpoint`` with the config's test dataloader
    and evaluator; the Runner's output goes to ``<work_dir>/eval/eval.log``.
    """
    from mmengine.runner import Runner
    cfg = cfg.copy()
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(work_dir, 'eval')
    os.makedirs(cfg.work_dir, exist_ok=True)
    with open(osp.join(cfg.work_dir, 'eval.log'), 'w') as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        runner = Runner.from_cfg(cfg)
        metrics = runner.test()
    return Evaluation(
        dict(metrics), len(runner.test_dataloader.dataset),
        osp.join(cfg.work_dir, runner.timestamp, f'{runner.timestamp}.log'))


def _fmt(value, spec: str) -> str:
    """``value`` formatted, or 'n/a' when the evaluator gave none."""
    return 'n/a' if value is None else format(value, spec)


# --------------------------------------------------------------- drawing
def _text_strip(titles, width: int, height: int = 28, scale: float = 0.6,
                colours=None):
    """A white strip with ``titles`` centred in equal columns."""
    import cv2
    import numpy as np
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    step = width / len(titles)
    colours = colours or [(0, 0, 0)] * len(titles)
    for i, (title, colour) in enumerate(zip(titles, colours)):
        (w, _), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale,
                                    1)
        x = int(i * step + (step - w) / 2)
        cv2.putText(strip, title, (x, height - 9), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, colour, 1, cv2.LINE_AA)
    return strip


def _grid(tiles, cols: int, gap: int = 0):
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


def _write_rgb(path: str, image) -> None:
    import cv2
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {path}')


# ------------------------------------------------------------- detection
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


def _det_draw(cfg, checkpoint: str, out: str, num: int,
              score_thr: float = 0.5) -> str:
    """Predictions (score >= ``score_thr``) drawn on val images, 4 a row."""
    import warnings

    import mmcv
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    warnings.filterwarnings('ignore', message='Warning: The (bbox|polygon) '
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
        visualizer.add_datasample(
            name, mmcv.bgr2rgb(image), data_sample=result, draw_gt=False,
            show=False, pred_score_thr=score_thr)
        tiles.append(visualizer.get_image())
    _write_rgb(out, _grid(tiles, 4))
    return f'(score >= {score_thr})'


# ---------------------------------------------------------- segmentation
def per_class_iou(log_file: str) -> Dict[str, float]:
    """{class: IoU} from the last per-class table of an mmseg log."""
    try:
        with open(log_file) as f:
            text = f.read()
    except OSError:
        return {}
    start = text.rfind('per class results:')
    if start < 0:
        return {}
    out = {}
    for line in text[start:].splitlines()[1:]:
        m = re.match(r'\|\s*([^|]+?)\s*\|\s*([\d.]+|nan)\s*\|', line)
        if m:
            out[m.group(1)] = float(m.group(2))
        elif out and not line.startswith(('|', '+')):
            break
    return out


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


def _colour(label_map, palette):
    import numpy as np
    lut = np.full((256, 3), 255, dtype=np.uint8)  # ignore index: white
    lut[:len(palette)] = np.asarray(palette, dtype=np.uint8)
    return lut[label_map]


def _legend(classes, palette, width: int, height: int = 28):
    """A colour swatch and the name of every class."""
    import cv2
    import numpy as np
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 6
    for name, colour in zip(classes, palette):
        cv2.rectangle(strip, (x, 7), (x + 14, 21),
                      tuple(int(c) for c in colour), -1)
        cv2.rectangle(strip, (x, 7), (x + 14, 21), (128, 128, 128), 1)
        cv2.putText(strip, name, (x + 19, 19), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (0, 0, 0), 1, cv2.LINE_AA)
        (w, _), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        x += 19 + w + 12
    return strip


def _seg_draw(cfg, checkpoint: str, out: str, num: int) -> str:
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
        gt = cv2.imread(osp.join(ann_dir, osp.splitext(name)[0] + '.png'),
                        cv2.IMREAD_GRAYSCALE)
        image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        rows.append(_grid([image, _colour(gt, palette),
                           _colour(pred, palette)], 3, gap=4))
    grid = _grid(rows, 1, gap=4)
    grid = cv2.resize(grid, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    _write_rgb(out, np.concatenate([
        _text_strip(['image', 'ground truth', 'prediction'], grid.shape[1]),
        grid,
        _legend(model.dataset_meta['classes'], palette, grid.shape[1])
    ]))
    return '(image | ground truth | prediction)'


# -------------------------------------------------------- classification
def _cls_summary(ev: Evaluation):
    top1 = ev.metrics.get('accuracy/top1')
    return dict(top1=top1), [
        f'top-1 accuracy     {_fmt(top1, ".2f")} %  on {ev.num_val} '
        'held-out val crops']


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


def _cls_draw(cfg, checkpoint: str, out: str, num: int,
              cols: int = 8) -> str:
    """Val crops at 2x with the predicted class under each, green where it
    is right, red (and the true class) where it is wrong."""
    import cv2
    import numpy as np
    from mmpretrain.apis import ImageClassificationInferencer
    crops = val_crops(cfg, num)
    if not crops:
        raise DemoError('no val crops to draw')
    inferencer = ImageClassificationInferencer(
        model=cfg, pretrained=checkpoint, device='cpu')
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
        caption = [_text_strip([pred], width, 20, 0.45, [colour])]
        caption.append(_text_strip(
            [f'true: {label}' if not ok else ''], width, 18, 0.4))
        tiles.append(np.concatenate([image] + caption))
    grid = _grid(tiles, cols, gap=6)
    _write_rgb(out, np.concatenate([
        _text_strip(['predicted class: green right, red wrong (true class '
                     'below)'], grid.shape[1]), grid]))
    return f'({right}/{len(crops)} drawn crops right)'


SHAPES_DEMOS: Dict[str, ShapesDemo] = {
    'det': ShapesDemo(
        scope='mmdet', model='RetinaNet-EfficientViT-M0',
        config='configs/demo/retinanet_efficientvit_m0_shapes.py',
        work_dir='work_dirs/shapes_demo', num_vis=8,
        exporter='export_coco', data_kind='COCO-format shapes',
        progress_every=500,
        progress=('Epoch(train)', 'Epoch(val)', 'bbox_mAP'),
        metric='COCO bbox mAP', summarise=_det_summary, draw=_det_draw),
    'seg': ShapesDemo(
        scope='mmseg', model='Semantic FPN-EfficientViT-M0',
        config='configs/demo/fpn_efficientvit_m0_shapes_seg.py',
        work_dir='work_dirs/seg_shapes_demo', num_vis=6,
        exporter='export_ade', data_kind='ADE-style shapes',
        progress_every=1000, progress=('Iter(train)', 'mIoU:'),
        metric='mIoU', summarise=_seg_summary, draw=_seg_draw),
    'cls': ShapesDemo(
        scope='mmpretrain', model='EfficientViT-M0 classifier',
        config='configs/demo/efficientvit_m0_shapes_cls.py',
        work_dir='work_dirs/cls_shapes_demo', num_vis=32,
        exporter='export_crops', data_kind='shape-crop',
        progress_every=200,
        progress=('Epoch(train)', 'Epoch(val)', 'accuracy/top1'),
        metric='top-1 accuracy', summarise=_cls_summary, draw=_cls_draw),
}


# -------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Train EfficientViT-M0 from scratch on synthetic shapes '
        'on the CPU, evaluate it and draw its predictions: det (RetinaNet, '
        'COCO bbox mAP), seg (Semantic FPN, mIoU) or cls (classifier on '
        'object crops, top-1).')
    parser.add_argument('task', nargs='?', default='det',
                        choices=list(SHAPES_DEMOS),
                        help='which demo (default: det)')
    parser.add_argument('--config', help="default: the task's demo config")
    parser.add_argument('--work-dir', help='default: work_dirs/shapes_demo, '
                        'work_dirs/seg_shapes_demo or '
                        'work_dirs/cls_shapes_demo')
    parser.add_argument('--data-root', help="where the data go (default: "
                        "the config's data_root)")
    parser.add_argument('--regenerate', action='store_true',
                        help='write the data again, replacing what is in '
                        'the data root')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides, also passed on to '
                        'tools/train.py (shapes_data.* changes the data)')
    parser.add_argument('--num-vis', type=int, help='val samples in '
                        'predictions.png (default: det 8, seg 6, cls 32)')
    parser.add_argument(
        '--threads', type=int,
        help='CPU threads (OMP_NUM_THREADS of the training); default: '
        "torch's (one per core). On a machine other jobs keep busy, 1 can "
        'be much faster than threads that wait for each other')
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    demo = SHAPES_DEMOS[args.task]
    args.config = args.config or demo.config
    args.work_dir = args.work_dir or demo.work_dir
    args.num_vis = demo.num_vis if args.num_vis is None else args.num_vis
    if args.num_vis < 1:
        parser.error('--num-vis must be at least 1')
    if args.threads is not None and args.threads < 1:
        parser.error('--threads must be at least 1')
    return args


def _load(args, demo: ShapesDemo):
    from efficientvit_mm.runtime import PreflightError, load_config
    options = dict(args.cfg_options or {})
    if args.data_root:
        options['data_root'] = args.data_root
    try:
        cfg = load_config(args.config, options)
    except PreflightError as err:
        raise DemoError(str(err)) from None
    if cfg.get('default_scope') != demo.scope:
        raise DemoError(
            f'{args.config} is a {cfg.get("default_scope")} config; the '
            f'{args.task} demo needs a {demo.scope} config')
    if 'shapes_data' not in cfg:
        raise DemoError(
            f'{args.config} has no shapes_data settings (the '
            f'{demo.exporter} arguments of its data)')
    return cfg


def run_shapes_demo(args: argparse.Namespace) -> dict:
    """The four steps for ``args.task``; returns the summary written to
    ``<work_dir>/demo_result.json``."""
    demo = SHAPES_DEMOS[args.task]
    start = time.time()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    import efficientvit_mm  # noqa: F401
    from mmengine.registry import init_default_scope
    cfg = _load(args, demo)
    init_default_scope(demo.scope)
    seconds = {}
    clock = [start]

    def lap(step: str) -> None:
        now = time.time()
        seconds[step] = round(now - clock[0])
        clock[0] = now

    say('step 1/4: data')
    generate_data(demo.exporter, cfg.shapes_data, cfg.data_root,
                  args.regenerate, demo.data_kind, demo.progress_every)
    lap('data')
    say(f'step 2/4: training {demo.model} from scratch on the CPU')
    options = dict(data_root=cfg.data_root)
    options.update(args.cfg_options or {})
    train(args.config, args.work_dir, options,
          demo.progress + _PROGRESS_COMMON, args.threads)
    lap('train')
    checkpoint = last_checkpoint(args.work_dir)
    say(f'step 3/4: {demo.metric} of {checkpoint} on the val split')
    evaluation = evaluate(cfg, checkpoint, args.work_dir)
    metrics, lines = demo.summarise(evaluation)
    lap('eval')
    out = osp.join(args.work_dir, 'predictions.png')
    say(f'step 4/4: drawing predictions on {args.num_vis} val samples')
    # the toolboxes' loading messages and progress bars go to a log
    with open(osp.join(args.work_dir, 'draw.log'), 'w') as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        note = demo.draw(cfg, checkpoint, out, args.num_vis)
    lap('draw')
    seconds['total'] = round(time.time() - start)

    summary = dict(task=args.task, config=args.config, **metrics,
                   num_val=evaluation.num_val, seconds=seconds,
                   checkpoint=checkpoint, predictions=out)
    with open(osp.join(args.work_dir, 'demo_result.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    say('-' * 60)
    for line in lines:
        say(line)
    say(f'wall time          {(time.time() - start) / 60:.1f} min (data '
        f'{seconds["data"]}s, training {seconds["train"]}s, evaluation '
        f'{seconds["eval"]}s, drawing {seconds["draw"]}s)')
    say(f'predictions        {out}  {note}')
    say(f'curves             python tools/analysis/plot_curves.py '
        f'{args.work_dir}')
    return summary


def shapes_demo_main(argv=None) -> int:
    """``tools/shapes_demo.py``: exit status 0, or 1 with a one-line error
    (2 for bad arguments, from argparse)."""
    args = parse_args(argv)
    try:
        run_shapes_demo(args)
    except DemoError as err:
        print(f'{PROG}: error: {err}', file=sys.stderr)
        return 1
    return 0
