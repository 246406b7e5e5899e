"""CPU training-step time: Semantic FPN with EfficientViT-M4 against mmseg's
Semantic FPN with ResNet-50, in the same run, on the same batch.

    .venv/bin/python benchmarks/seg_train_step.py [--shape 512 512]
        [--batch-size 2] [--repeats 5] [--threads N]

A step is what the Runner does each iteration: ``model.train_step`` (data
preprocessor, forward, loss, backward) and the optimizer step of each
config's own optim_wrapper (AdamW for EfficientViT, SGD for ResNet-50).
Both models see the same images and label maps; they are timed in turn
(interleaved), after warm-up, and the median of ``--repeats`` steps is
reported, so a busy spell of the machine hits both alike. Weights are
random (no download): speed does not depend on them. SyncBN becomes BN, as
in any single-process run.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # this checkout's package, installed or not
    sys.path.insert(0, ROOT)

MODELS = {
    'Semantic FPN EfficientViT-M4':
    osp.join(ROOT, 'configs', 'fpn_efficientvit_m4_ade20k.py'),
    'Semantic FPN ResNet-50 (mmseg)':
    'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py',
}


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 512],
                        metavar=('H', 'W'), help='input size (default 512)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed steps per model (default 1)')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed steps per model (default 5)')
    cli.add_threads(parser, why=' (default: torch decides)')
    args = parser.parse_args(argv)
    if min(args.shape) < 64 or args.batch_size < 2 or args.repeats < 1:
        parser.error('needs --shape >= 64, --batch-size >= 2 (BatchNorm in '
                     'training mode), --repeats >= 1')
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    from efficientvit_mm.analysis import count_complexity
    from efficientvit_mm.benchmarking import describe_machine
    from efficientvit_mm.benchmarking.training import seg_batch, train_steps
    from efficientvit_mm.runtime import drop_pretrained, load_config
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = seg_batch(args.batch_size, args.shape)
    figures = train_steps(MODELS, batch, warmup=args.warmup,
                          repeats=args.repeats)
    print(f'CPU train step, batch {args.batch_size} x 3 x {args.shape[0]} x '
          f'{args.shape[1]}, {torch.get_num_threads()} threads, median of '
          f'{args.repeats} (torch {torch.__version__}; {describe_machine()})')
    print(f'{"model":34s} {"params":>8s} {"GFLOPs/img":>10s} {"s/step":>8s} '
          f'{"img/s":>7s}')
    for name, config in MODELS.items():
        cfg = load_config(config)
        drop_pretrained(cfg.model)
        cx = count_complexity(cfg, args.shape)
        sec = figures[name]['step_s']
        print(f'{name:34s} {cx["params"] / 1e6:7.1f}M '
              f'{cx["flops"] / 1e9:10.1f} {sec:8.2f} '
              f'{args.batch_size / sec:7.2f}')
    first, second = (f['step_s'] for f in figures.values())
    print(f"EfficientViT-M4 step time = {first / second:.2f} x ResNet-50's")


if __name__ == '__main__':
    main()
