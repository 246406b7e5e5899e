"""Training-step time and peak memory of our models beside a toolbox model
of the same task, in one run, same input size, batch and machine:

* det: RetinaNet-EfficientViT-M4 vs mmdet's RetinaNet-R18;
* seg: Semantic FPN-EfficientViT-M4 vs mmseg's Semantic FPN-ResNet-50.

    # CPU (default): 2 images of 512x512
    .venv/bin/python benchmarks/train_step.py det
    .venv/bin/python benchmarks/train_step.py seg
    # GPU, the issue's setting: batch 16 at 800x1216, fp32 then AMP
    python benchmarks/train_step.py det --device cuda --batch-size 16 \\
        --shape 800 1216
    python benchmarks/train_step.py det --device cuda --batch-size 16 \\
        --shape 800 1216 --amp
    # gradient checkpointing of the backbone (with_cp) at 1333x800
    .venv/bin/python benchmarks/train_step.py det --with-cp-figure

A step is one Runner iteration: ``model.train_step`` (data preprocessor,
forward, losses, backward) plus the optimizer step of each config's own
optim wrapper (AdamW for EfficientViT, SGD for the ResNets;
``AmpOptimWrapper`` with ``--amp``). The models see the same batch and are
timed in turn, after warm-up; the median step is reported. Weights are
random (no download): speed and memory do not depend on them. Off CUDA,
SyncBN becomes BN, as in any single-process run.

Peak memory is what the step allocates at its high point, on top of what
was allocated before it (model, optimizer state): on CUDA from
``torch.cuda.max_memory_allocated``, on the CPU from the allocation timeline
recorded by ``torch.profiler`` (``profile_memory=True``) over one step.

On the CPU, mmdet's focal loss falls back to a pure-PyTorch formula whose
intermediates (over 1 GiB at 1333x800) set the step's peak, where GPU
training runs mmcv's compiled kernel. ``--with-cp-figure`` therefore also
measures the detector with a CPU focal loss that stores what that kernel
stores (``efficientvit_mm.benchmarking.focal_loss``; same values and
gradients), which is the memory profile of GPU training.
"""
import contextlib
import json
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not

# task -> {name: config}: ours first, then the toolbox's own model
MODELS = {
    'det': {
        'RetinaNet EfficientViT-M4': 'retinanet_efficientvit_m4_coco.py',
        'RetinaNet R18 (mmdet)':
        'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
    },
    'seg': {
        'Semantic FPN EfficientViT-M4':
        'fpn_efficientvit_m4_ade20k.py',
        'Semantic FPN ResNet-50 (mmseg)':
        'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
    },
}


def configs(task: str) -> dict:
    """The configs of ``task``, ours as paths in this checkout."""
    return {
        name: config if '::' in config else osp.join(ROOT, 'configs', config)
        for name, config in MODELS[task].items()
    }


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('task', choices=list(MODELS))
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (AmpOptimWrapper)')
    parser.add_argument(
        '--batch-size', type=int,
        help='images per step (default: 2 on CPU, 16 on '
        'CUDA)')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='input size (default: 512 512 on CPU, 800 1216 '
        'on CUDA)')
    parser.add_argument(
        '--warmup', type=int, help='untimed steps per model (default 1 CPU, 5 '
        'CUDA)')
    parser.add_argument(
        '--repeats', type=int, help='timed steps per model (default 3 CPU, 20 '
        'CUDA)')
    cli.add_threads(parser, why=' (default: torch decides)')
    parser.add_argument('--boxes', type=int, default=8,
                        help='det: ground-truth boxes per image')
    parser.add_argument(
        '--with-cp-figure', action='store_true',
        help='det, instead: peak memory of RetinaNet-M4 at 1333x800 '
        'without and with with_cp=True (batch 2 unless --batch-size)')
    parser.add_argument('--json', action='store_true',
                        help='print the figures as JSON too')
    args = parser.parse_args(argv)
    cuda = args.device == 'cuda'
    if args.with_cp_figure and args.task != 'det':
        parser.error('--with-cp-figure measures the detector: use det')
    if args.batch_size is None:
        args.batch_size = 16 if cuda and not args.with_cp_figure else 2
    if args.shape is None:
        args.shape = [800, 1333] if args.with_cp_figure else (
            [800, 1216] if cuda else [512, 512])
    if args.warmup is None:
        args.warmup = 5 if cuda else 1
    if args.repeats is None:
        args.repeats = 20 if cuda else (1 if args.with_cp_figure else 3)
    if args.batch_size < 2 or min(args.shape) < 64 or args.repeats < 1:
        parser.error('needs --batch-size >= 2 (BatchNorm in training mode), '
                     '--shape >= 64, --repeats >= 1')
    cli.check_threads(parser, args.threads)
    if cuda:
        import torch
        if not torch.cuda.is_available():
            parser.error('--device cuda: no CUDA device is visible')
    return args


def measure(models, args, batch, **backbone):
    """Step figures of each config, interleaved, on ``batch``."""
    from efficientvit_mm.benchmarking.training import train_steps
    figures = train_steps(models, batch, args.device, args.amp, args.warmup,
                          args.repeats, backbone)
    if args.device == 'cuda':
        import torch
        torch.cuda.empty_cache()
    return [
        dict(model=name, peak_kind='step peak above model+optimizer', **f)
        for name, f in figures.items()
    ]


def with_cp_figure(args, batch, setting) -> dict:
    """Peak memory of RetinaNet-M4 without and with ``with_cp=True``.

    Off CUDA the detector is measured twice: with mmdet's CPU focal loss
    (a one-hot fallback whose intermediates dominate the step) and with a
    focal loss that stores what mmcv's CUDA kernel stores, which is the
    memory profile of GPU training. The backbone alone comes last."""
    from efficientvit_mm.benchmarking.focal_loss import cuda_like_focal_loss
    from efficientvit_mm.benchmarking.training import backbone_step
    config = configs('det')['RetinaNet EfficientViT-M4']
    losses = [('', contextlib.nullcontext)]
    if args.device != 'cuda':
        losses = [(', mmdet CPU focal loss', contextlib.nullcontext),
                  (', CUDA-like focal loss', cuda_like_focal_loss)]
    rows, savings = [], {}
    for label, context in losses:
        pair = []
        for with_cp in (False, True):
            with context():
                pair += measure(
                    {f'RetinaNet-M4 with_cp={with_cp}{label}': config}, args,
                    batch, with_cp=with_cp)
        rows += pair
        savings[f'detector{label}'] = \
            1 - pair[1]['peak_mem_gib'] / pair[0]['peak_mem_gib']
    pair = [
        dict(
            model=f'EfficientViT-M4 alone, with_cp={with_cp}',
            peak_kind='fwd+bwd above weights',
            **backbone_step(config, args.batch_size, args.shape, args.device,
                            with_cp=with_cp)) for with_cp in (False, True)
    ]
    rows += pair
    savings['backbone alone'] = \
        1 - pair[1]['peak_mem_gib'] / pair[0]['peak_mem_gib']
    print(table(rows, f'with_cp: {setting}'))
    for name, saving in savings.items():
        print(f'peak memory saved by with_cp ({name}): {100 * saving:.1f}%')
    return dict(setting=setting, rows=rows, with_cp_saving=savings)


def add_complexity(rows, models, shape) -> None:
    """Params and GFLOPs per image of each model, into its row."""
    from efficientvit_mm.analysis import count_complexity
    from efficientvit_mm.runtime import drop_pretrained, load_config
    for row in rows:
        cfg = load_config(models[row['model']])
        drop_pretrained(cfg.model)
        row['gflops'] = count_complexity(cfg, shape)['flops'] / 1e9


def table(rows, title):
    flops = all('gflops' in r for r in rows)
    lines = [
        title, f'{"model":50s} {"step (s)":>9s} {"min (s)":>8s} '
        f'{"peak mem (GiB)":>15s} {"params (M)":>10s}' +
        (f' {"GFLOPs/img":>10s}' if flops else '')
    ]
    for r in rows:
        lines.append(f'{r["model"]:50s} {r["step_s"]:9.3f} '
                     f'{r["step_s_min"]:8.3f} {r["peak_mem_gib"]:15.2f} '
                     f'{r["params_m"]:10.1f}' +
                     (f' {r["gflops"]:10.1f}' if flops else ''))
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    from efficientvit_mm.benchmarking import describe_machine
    from efficientvit_mm.benchmarking.training import det_batch, seg_batch

    # the optimizer builders log every parameter group: keep the table alone
    MMLogger.get_instance('train_step', log_level='WARNING')
    if args.task == 'det':
        init_default_scope('mmdet')
        batch = det_batch(args.batch_size, args.shape, args.boxes)
    else:
        init_default_scope('mmseg')
        batch = seg_batch(args.batch_size, args.shape)
    setting = (f'{args.device}{" + AMP" if args.amp else ""}, batch '
               f'{args.batch_size}, {args.shape[0]}x{args.shape[1]}, '
               f'torch {torch.__version__}, {describe_machine()}' +
               ('' if args.device == 'cuda' else
                f', {torch.get_num_threads()} threads'))
    if args.with_cp_figure:
        result = with_cp_figure(args, batch, setting)
    else:
        models = configs(args.task)
        rows = measure(models, args, batch)
        if args.task == 'seg':
            add_complexity(rows, models, args.shape)
        print(table(rows, f'train step: {setting}'))
        ours, theirs = rows
        print(f'{ours["model"]} / {theirs["model"]}: step time '
              f'x{ours["step_s"] / theirs["step_s"]:.2f}, peak memory '
              f'x{ours["peak_mem_gib"] / theirs["peak_mem_gib"]:.2f}')
        result = dict(setting=setting, rows=rows)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    sys.exit(main())
