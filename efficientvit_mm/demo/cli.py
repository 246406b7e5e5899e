"""``tools/shapes_demo.py``: the command line of the shapes demos."""
import argparse
import contextlib
import json
import os.path as osp
import sys
import time

from ..errors import UserError
from .steps import (DemoError, evaluate, generate_data, last_checkpoint, say,
                    train)
from .tasks import SHAPES_DEMOS, ShapesDemo

PROG = 'tools/shapes_demo.py'
# training-log lines shown by every demo, besides the task's own
_PROGRESS_COMMON = ('Saving checkpoint', 'ERROR', 'Error', 'error:',
                    'cores busy:', 'warning:')


def build_parser() -> argparse.ArgumentParser:
    from ..runtime import args as cli
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
    parser.add_argument('--work-dir', help="default: the config's work_dir")
    parser.add_argument(
        '--data-root', help="where the data go (default: "
        "the config's data_root)")
    parser.add_argument(
        '--regenerate', action='store_true',
        help='write the data again, replacing what the '
        'data root holds')
    cli.add_cfg_options(
        parser, help='config overrides, also passed on to '
        'tools/train.py (shapes_data.* changes the data)')
    parser.add_argument(
        '--num-vis', type=int, help='val samples in predictions.png (default: '
        "the config's shapes_demo.num_vis)")
    cli.add_threads(
        parser, why=': OMP_NUM_THREADS of the training, the most it uses; '
        "default: torch's (one per core). While other processes keep cores "
        'busy, the training uses fewer (AdaptiveThreadsHook)')
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    from ..runtime import args as cli
    parser = build_parser()
    args = parser.parse_args(argv)
    args.config = args.config or SHAPES_DEMOS[args.task].config
    if args.num_vis is not None and args.num_vis < 1:
        parser.error('--num-vis must be at least 1')
    cli.check_threads(parser, args.threads)
    return args


def _load(args, demo: ShapesDemo):
    from ..runtime.config import load_config
    options = dict(args.cfg_options or {})
    if args.data_root:
        options['data_root'] = args.data_root
    cfg = load_config(args.config, options)
    if cfg.get('default_scope') != demo.scope:
        raise DemoError(
            f'{args.config} is a {cfg.get("default_scope")} config; the '
            f'{args.task} demo needs a {demo.scope} config')
    for key, what in (('shapes_data', f'the {demo.exporter} arguments of '
                       'its data'), ('shapes_demo', 'model, metric, num_vis '
                                     'and progress of the demo')):
        if key not in cfg:
            raise DemoError(f'{args.config} has no {key} settings ({what})')
    return cfg


def run_shapes_demo(args: argparse.Namespace) -> dict:
    """The four steps for ``args.task``; returns the summary written to
    ``<work_dir>/demo_result.json``."""
    demo = SHAPES_DEMOS[args.task]
    start = time.time()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from mmengine.registry import init_default_scope

    import efficientvit_mm  # noqa: F401
    cfg = _load(args, demo)
    init_default_scope(demo.scope)
    shown = cfg.shapes_demo
    work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', f'{args.task}_shapes_demo')
    num_vis = args.num_vis or shown.num_vis
    seconds = {}
    clock = [start]

    def lap(step: str) -> None:
        now = time.time()
        seconds[step] = round(now - clock[0])
        clock[0] = now

    say('step 1/4: data')
    generate_data(demo.exporter, cfg.shapes_data, cfg.data_root,
                  args.regenerate)
    lap('data')
    say(f'step 2/4: training {shown.model} from scratch on the CPU')
    options = dict(data_root=cfg.data_root)
    options.update(args.cfg_options or {})
    train(args.config, work_dir, options,
          tuple(shown.progress) + _PROGRESS_COMMON, args.threads)
    lap('train')
    checkpoint = last_checkpoint(work_dir)
    say(f'step 3/4: {shown.metric} of {checkpoint} on the val split')
    evaluation = evaluate(cfg, checkpoint, work_dir)
    metrics, lines = demo.summarise(evaluation)
    lap('eval')
    out = osp.join(work_dir, 'predictions.png')
    say(f'step 4/4: drawing predictions on {num_vis} val samples')
    # the toolboxes' loading messages and progress bars go to a log
    with open(osp.join(work_dir, 'draw.log'), 'w') as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        note = demo.draw(cfg, checkpoint, out, num_vis)
    lap('draw')
    seconds['total'] = round(time.time() - start)

    summary = dict(task=args.task, config=args.config, **metrics,
                   num_val=evaluation.num_val, seconds=seconds,
                   checkpoint=checkpoint, predictions=out)
    with open(osp.join(work_dir, 'demo_result.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    say('-' * 60)
    for line in lines:
        say(line)
    say(f'wall time          {(time.time() - start) / 60:.1f} min (data '
        f'{seconds["data"]}s, training {seconds["train"]}s, evaluation '
        f'{seconds["eval"]}s, drawing {seconds["draw"]}s)')
    say(f'predictions        {out}  {note}')
    say(f'curves             python tools/analysis/plot_curves.py '
        f'{work_dir}')
    return summary


def shapes_demo_main(argv=None) -> int:
    """``tools/shapes_demo.py``: exit status 0, or 1 with a one-line error
    (2 for bad arguments, from argparse)."""
    args = parse_args(argv)
    try:
        run_shapes_demo(args)
    except UserError as err:
        print(f'{PROG}: error: {err}', file=sys.stderr)
        return 1
    return 0
