#!/usr/bin/env python
"""The segmentation demo: Semantic FPN + EfficientViT-M0 learns the shapes.

No dataset and no pretrained weights needed. In one command, on the CPU:

1. writes the synthetic shapes set as ADE20K-style image / label-map pairs
   (``efficientvit_mm.datasets.export_ade`` with the config's
   ``shapes_data`` settings) to ``data/shapes_ade/``, unless it is there;
2. trains ``configs/demo/fpn_efficientvit_m0_shapes_seg.py`` from scratch
   through ``tools/train.py``;
3. evaluates the final checkpoint on the validation split: mIoU and the IoU
   of every class (background included);
4. segments a few validation images with mmseg's ``inference_model`` and
   saves ``<work_dir>/predictions.png``: image | ground truth | prediction.

    .venv/bin/python tools/seg_shapes_demo.py

About 10 minutes on 2 CPU cores.
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # run from a checkout without `pip install -e`
    sys.path.insert(0, ROOT)

from efficientvit_mm.runtime.config import quiet_import_warnings  # noqa: E402

quiet_import_warnings()

DEFAULT_CONFIG = 'configs/demo/fpn_efficientvit_m0_shapes_seg.py'
# lines of the training log worth showing while it runs
_PROGRESS = ('Iter(train)', 'mIoU:', 'Saving checkpoint', 'ERROR', 'Error',
             'error:')


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        prog='tools/seg_shapes_demo.py',
        description='Train Semantic FPN-EfficientViT-M0 on synthetic shapes '
        '(CPU), report mIoU, save a PNG of predicted masks')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/seg_shapes_demo')
    parser.add_argument('--data-root',
                        help="where the data go (default: the config's "
                        'data_root, data/shapes_ade/)')
    parser.add_argument('--regenerate', action='store_true',
                        help='write the data even if they exist')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='passed on to tools/train.py')
    parser.add_argument('--num-vis', type=int, default=6,
                        help='validation images in predictions.png')
    parser.add_argument(
        '--threads', type=int,
        help='CPU threads of the training (OMP_NUM_THREADS); default: '
        "torch's (one per core). On a machine other jobs keep busy, 1 is "
        'much faster than threads that wait for each other')
    args = parser.parse_args(argv)
    if args.num_vis < 1:
        parser.error('--num-vis must be at least 1')
    if args.threads is not None and args.threads < 1:
        parser.error('--threads must be at least 1')
    return args


def say(msg: str) -> None:
    print(f'[demo] {msg}', flush=True)


def generate_data(cfg, data_root: str, force: bool) -> None:
    """Write the shapes set described by ``cfg.shapes_data``, unless the
    same settings were written there before."""
    from efficientvit_mm.datasets import export_ade
    spec = json.loads(json.dumps(dict(cfg.shapes_data)))  # tuples -> lists
    stamp = osp.join(data_root, 'shapes_data.json')
    if not force and osp.isfile(stamp):
        with open(stamp) as f:
            if json.load(f) == spec:
                say(f'data already in {data_root} (same settings), skipping '
                    'generation')
                return
    kwargs = dict(spec)
    splits = kwargs.pop('splits')
    seed = kwargs.pop('seed')
    if 'image_size' in kwargs:
        kwargs['image_size'] = tuple(kwargs['image_size'])
    say(f'generating ADE-style shapes data in {data_root}: {splits} images, '
        f'seed {seed}')
    start = time.time()
    export_ade(data_root, splits, seed=seed, progress_every=1000, **kwargs)
    with open(stamp, 'w') as f:
        json.dump(spec, f)
    say(f'data written in {time.time() - start:.0f}s')


def train(args, data_root: str) -> None:
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), args.config,
           '--work-dir', args.work_dir, '--cfg-options',
           f'data_root={data_root}']
    for key, value in (args.cfg_options or {}).items():
        cmd.append(f'{key}={value}')
    log_path = osp.join(args.work_dir, 'train_stdout.log')
    os.makedirs(args.work_dir, exist_ok=True)
    say(f'training (full log: {log_path})')
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    if args.threads:
        env['OMP_NUM_THREADS'] = str(args.threads)
    tail = []
    with open(log_path, 'w') as log, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env, cwd=os.getcwd()) as proc:
        for line in proc.stdout:
            log.write(line)
            tail = (tail + [line])[-40:]
            if any(p in line for p in _PROGRESS):
                print('  ' + line.rstrip().split(' - mmengine - INFO - ')[-1],
                      flush=True)
    if proc.returncode != 0:
        sys.stdout.write(''.join(tail))
        raise SystemExit(f'[demo] training failed (exit {proc.returncode}); '
                         f'see {log_path}')


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def evaluate(cfg, checkpoint: str, work_dir: str):
    """mmseg's IoUMetric on the validation split, as tools/test.py runs it.

    Returns (metrics, per-class IoU): IoUMetric returns only the averages
    and logs the per-class table, which is read back from the log.
    """
    from mmengine.runner import Runner
    cfg = cfg.copy()
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(work_dir, 'eval')
    cfg.default_hooks.logger.interval = 10**6  # keep the output short
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    log = osp.join(cfg.work_dir, runner.timestamp, f'{runner.timestamp}.log')
    return metrics, per_class_iou(log)


def per_class_iou(log_file: str) -> dict:
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


def _colour(label_map, palette):
    import numpy as np
    lut = np.full((256, 3), 255, dtype=np.uint8)  # ignore index: white
    lut[:len(palette)] = np.asarray(palette, dtype=np.uint8)
    return lut[label_map]


def _text_strip(titles, width: int, height: int = 28):
    """Column titles, evenly spaced over ``width``."""
    import cv2
    import numpy as np
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    step = width / len(titles)
    for i, title in enumerate(titles):
        (w, _), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
        x = int(i * step + (step - w) / 2)
        cv2.putText(strip, title, (x, height - 9), cv2.FONT_HERSHEY_SIMPLEX,
                    0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


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


def draw_predictions(cfg, checkpoint: str, out: str, num: int) -> None:
    """Rows of image | ground truth | prediction, segmented one image at a
    time with mmseg's single-image API."""
    import cv2
    import numpy as np
    from mmseg.apis import inference_model, init_model
    model = init_model(cfg, checkpoint, device='cpu')
    palette = model.dataset_meta['palette']
    ds = cfg.test_dataloader.dataset
    img_dir = osp.join(ds.data_root, ds.data_prefix.img_path)
    ann_dir = osp.join(ds.data_root, ds.data_prefix.seg_map_path)
    names = sorted(os.listdir(img_dir))[:num]
    rows = []
    for name in names:
        path = osp.join(img_dir, name)
        pred = inference_model(model, path).pred_sem_seg.data[0]
        pred = pred.cpu().numpy().astype(np.uint8)
        gt = cv2.imread(osp.join(ann_dir, osp.splitext(name)[0] + '.png'),
                        cv2.IMREAD_GRAYSCALE)
        image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        gap = np.full((image.shape[0], 4, 3), 255, dtype=np.uint8)
        rows.append(np.concatenate([
            image, gap, _colour(gt, palette), gap, _colour(pred, palette)
        ], axis=1))
    gap = np.full((4, rows[0].shape[1], 3), 255, dtype=np.uint8)
    grid = np.concatenate([x for row in rows for x in (row, gap)][:-1])
    grid = cv2.resize(grid, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    grid = np.concatenate([
        _text_strip(['image', 'ground truth', 'prediction'], grid.shape[1]),
        grid,
        _legend(model.dataset_meta['classes'], palette, grid.shape[1])
    ])
    os.makedirs(osp.dirname(out) or '.', exist_ok=True)
    if not cv2.imwrite(out, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {out}')


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    import efficientvit_mm  # noqa: F401
    from mmengine.registry import init_default_scope

    from efficientvit_mm.runtime import PreflightError, load_config
    try:
        options = dict(args.cfg_options or {})
        if args.data_root:
            options['data_root'] = args.data_root
        cfg = load_config(args.config, options)
    except PreflightError as err:
        print(f'tools/seg_shapes_demo.py: error: {err}', file=sys.stderr)
        return 1
    if 'shapes_data' not in cfg:
        print(f'tools/seg_shapes_demo.py: error: {args.config} has no '
              'shapes_data settings (the export_ade arguments of its data)',
              file=sys.stderr)
        return 1
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    data_root = cfg.data_root

    say('step 1/4: data')
    generate_data(cfg, data_root, args.regenerate)
    t_data = time.time()
    say('step 2/4: training Semantic FPN-EfficientViT-M0 from scratch on '
        'the CPU')
    train(args, data_root)
    t_train = time.time()
    checkpoint = last_checkpoint(args.work_dir)
    say(f'step 3/4: mIoU of {checkpoint} on the validation split')
    metrics, per_class = evaluate(cfg, checkpoint, args.work_dir)
    t_eval = time.time()
    out = osp.join(args.work_dir, 'predictions.png')
    say(f'step 4/4: segmenting {args.num_vis} validation images')
    draw_predictions(cfg, checkpoint, out, args.num_vis)
    total = time.time() - start

    num_val = cfg.shapes_data['splits']['validation']
    summary = dict(
        mIoU=metrics.get('mIoU'), aAcc=metrics.get('aAcc'),
        mAcc=metrics.get('mAcc'), IoU_per_class=per_class,
        seconds=dict(data=round(t_data - start),
                     train=round(t_train - t_data),
                     eval=round(t_eval - t_train), total=round(total)),
        checkpoint=checkpoint, predictions=out)
    with open(osp.join(args.work_dir, 'demo_result.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    say('-' * 60)
    say(f'mIoU               {summary["mIoU"]:.2f}   (aAcc '
        f'{summary["aAcc"]:.2f}, mAcc {summary["mAcc"]:.2f}) on {num_val} '
        'held-out validation images')
    if per_class:
        say('IoU per class      ' + ', '.join(
            f'{name} {iou:.1f}' for name, iou in per_class.items()))
    say(f'wall time          {total / 60:.1f} min (data '
        f'{summary["seconds"]["data"]}s, training '
        f'{summary["seconds"]["train"]}s, evaluation '
        f'{summary["seconds"]["eval"]}s)')
    say(f'predictions        {out}  (image | ground truth | prediction)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
