#!/usr/bin/env python
"""The shapes demo: generate data, train RetinaNet-EfficientViT on the CPU,
evaluate, draw predictions.

    tools/setup_env.sh && .venv/bin/python tools/shapes_demo.py [det]

(``seg`` and ``cls`` run the segmentation and classification demos,
``tools/seg_shapes_demo.py`` / ``tools/cls_shapes_demo.py``, where present.)

1. writes the synthetic shapes set (COCO format, fixed seeds; the val split
   has its own seed) to ``data/shapes/`` unless it is already there;
2. trains ``configs/demo/retinanet_efficientvit_m0_shapes.py`` from scratch
   through ``tools/train.py`` (progress is printed as it goes);
3. evaluates the final checkpoint on the val split (COCO bbox mAP);
4. saves ``<work_dir>/predictions.png``: predictions drawn on val images.

The generator settings live in the config (``shapes_data``), so data and
model always agree.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# OpenMP threads that sleep instead of spinning while they wait: on a CPU
# shared with other jobs, spinning threads of a 2-thread torch run are
# descheduled in turn and a step becomes ~10x slower; on an idle machine the
# difference is within noise. Set before torch is first imported.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

from efficientvit_mm.runtime.config import quiet_import_warnings  # noqa: E402

quiet_import_warnings()

DEFAULT_CONFIG = 'configs/demo/retinanet_efficientvit_m0_shapes.py'
OTHER_TASKS = {'seg': 'seg_shapes_demo.py', 'cls': 'cls_shapes_demo.py'}
# lines of the training log worth showing while it runs
_PROGRESS = ('Epoch(train)', 'Epoch(val)', 'bbox_mAP', 'Saving checkpoint',
             'ERROR', 'Error', 'error:')


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        prog='tools/shapes_demo.py',
        description='Train RetinaNet-EfficientViT on synthetic shapes (CPU)')
    parser.add_argument('task', nargs='?', default='det', choices=['det'],
                        help='det (this demo); seg and cls hand over to '
                        'their own demo scripts')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--work-dir', default='work_dirs/shapes_demo')
    parser.add_argument('--data-root',
                        help='where the data go (default: the config\'s '
                        'data_root, data/shapes/)')
    parser.add_argument('--regenerate', action='store_true',
                        help='write the data even if they exist')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='passed on to tools/train.py')
    parser.add_argument('--num-vis', type=int, default=8,
                        help='val images drawn in predictions.png')
    return parser.parse_args(argv)


def say(msg: str) -> None:
    print(f'[demo] {msg}', flush=True)


def generate_data(cfg, data_root: str, force: bool) -> None:
    from efficientvit_mm.datasets import export_coco
    spec = dict(cfg.shapes_data)
    stamp = osp.join(data_root, 'shapes_data.json')
    if not force and osp.isfile(stamp):
        with open(stamp) as f:
            if json.load(f) == json.loads(json.dumps(spec)):
                say(f'data already in {data_root} (same settings), skipping '
                    f'generation')
                return
    splits = spec.pop('splits')
    seed = spec.pop('seed')
    say(f'generating shapes data in {data_root}: {splits} images, '
        f'seed {seed}')
    start = time.time()
    export_coco(data_root, splits, seed=seed, progress_every=500, **spec)
    with open(stamp, 'w') as f:
        json.dump(dict(cfg.shapes_data), f)
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
    env = dict(os.environ, PYTHONWARNINGS='ignore', PYTHONUNBUFFERED='1')
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
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


def evaluate(cfg, checkpoint: str, work_dir: str) -> dict:
    """COCO metrics of ``checkpoint`` on the val split; the Runner's and
    pycocotools' output goes to ``<work_dir>/eval/eval.log``."""
    import contextlib

    from mmengine.runner import Runner
    cfg = cfg.copy()
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(work_dir, 'eval')
    os.makedirs(cfg.work_dir, exist_ok=True)
    with open(osp.join(cfg.work_dir, 'eval.log'), 'w') as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        runner = Runner.from_cfg(cfg)
        return runner.test()


def draw_predictions(cfg, checkpoint: str, out: str, num: int,
                     score_thr: float = 0.5) -> None:
    import mmcv
    import numpy as np
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    import warnings
    warnings.filterwarnings('ignore', message='Warning: The (bbox|polygon) '
                            'is out of bounds')
    model = init_detector(cfg, checkpoint, device='cpu')
    visualizer = VISUALIZERS.build(
        dict(type='DetLocalVisualizer', name='shapes_demo_vis'))
    visualizer.dataset_meta = model.dataset_meta
    ds = cfg.test_dataloader.dataset
    img_dir = osp.join(ds.data_root, ds.data_prefix.img)
    names = sorted(os.listdir(img_dir))[:num]
    tiles = []
    for name in names:
        # BGR in, as LoadImageFromFile gives it in training; RGB to draw
        image = mmcv.imread(osp.join(img_dir, name))
        result = inference_detector(model, image)
        visualizer.add_datasample(
            name, mmcv.bgr2rgb(image), data_sample=result, draw_gt=False,
            show=False, pred_score_thr=score_thr)
        tiles.append(visualizer.get_image())
    cols = min(4, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    h, w = tiles[0].shape[:2]
    grid = np.full((rows * h, cols * w, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile[:h, :w]
    mmcv.imwrite(grid[..., ::-1], out)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in OTHER_TASKS:
        script = osp.join(ROOT, 'tools', OTHER_TASKS[argv[0]])
        if not osp.isfile(script):
            print(f'tools/shapes_demo.py: error: the {argv[0]} demo '
                  f'(tools/{OTHER_TASKS[argv[0]]}) is not in this checkout',
                  file=sys.stderr)
            return 1
        return subprocess.call([sys.executable, script] + argv[1:])
    args = parse_args(argv)
    start = time.time()
    import efficientvit_mm  # noqa: F401
    from mmengine.registry import init_default_scope

    from efficientvit_mm.runtime import PreflightError, load_config
    try:
        options = dict(args.cfg_options or {})
        if args.data_root:
            options['data_root'] = args.data_root
        cfg = load_config(args.config, options)
    except PreflightError as err:
        print(f'tools/shapes_demo.py: error: {err}', file=sys.stderr)
        return 1
    if 'shapes_data' not in cfg:
        print(f'tools/shapes_demo.py: error: {args.config} has no '
              f'shapes_data settings', file=sys.stderr)
        return 1
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    data_root = cfg.data_root

    say('step 1/4: data')
    generate_data(cfg, data_root, args.regenerate)
    t_data = time.time()
    say('step 2/4: training RetinaNet-EfficientViT-M0 from scratch on the '
        'CPU')
    train(args, data_root)
    t_train = time.time()
    checkpoint = last_checkpoint(args.work_dir)
    say(f'step 3/4: COCO evaluation of {checkpoint} on the val split')
    metrics = evaluate(cfg, checkpoint, args.work_dir)
    t_eval = time.time()
    out = osp.join(args.work_dir, 'predictions.png')
    say(f'step 4/4: drawing predictions on {args.num_vis} val images')
    draw_predictions(cfg, checkpoint, out, args.num_vis)
    total = time.time() - start

    summary = dict(
        bbox_mAP=metrics.get('coco/bbox_mAP'),
        bbox_mAP_50=metrics.get('coco/bbox_mAP_50'),
        bbox_mAP_75=metrics.get('coco/bbox_mAP_75'),
        seconds=dict(data=round(t_data - start), train=round(t_train - t_data),
                     eval=round(t_eval - t_train), total=round(total)),
        checkpoint=checkpoint, predictions=out)
    with open(osp.join(args.work_dir, 'demo_result.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    say('-' * 60)
    say(f'COCO bbox mAP      {summary["bbox_mAP"]:.3f}   '
        f'(AP50 {summary["bbox_mAP_50"]:.3f}, '
        f'AP75 {summary["bbox_mAP_75"]:.3f}) on '
        f'{cfg.shapes_data["splits"]["val"]} held-out val images')
    say(f'wall time          {total / 60:.1f} min (data '
        f'{summary["seconds"]["data"]}s, training '
        f'{summary["seconds"]["train"]}s, evaluation '
        f'{summary["seconds"]["eval"]}s)')
    say(f'predictions        {out}')
    say(f'curves             python tools/analysis/plot_curves.py '
        f'{args.work_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
