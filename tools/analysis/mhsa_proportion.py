"""Keep a fraction of the attention layers (MHSA), replace the rest by FFNs
of the same width, and measure each subnetwork (the paper's Fig. 3).

    python tools/analysis/mhsa_proportion.py CONFIG [CONFIG ...] \\
        [--labels A B ...] [--fractions 0 0.25 0.5 0.75 1] \\
        [--placement spread|first|last] [--batch-size 16] [--shape 224] \\
        [--threads 1] [--device cpu|cuda] \\
        [--data-config configs/demo/efficientvit_m0_shapes_cls.py \\
         --epochs 3] [--out-dir DIR]

    # Swin-T, DeiT-T and EfficientViT-M4 at 224x224, throughput and memory
    python tools/analysis/mhsa_proportion.py \\
        mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py \\
        mmpretrain::deit/deit-tiny_4xb256_in1k.py \\
        configs/efficientvit_m4_in1k.py --labels Swin-T DeiT-T M4

Every variant of a config is timed interleaved with the others in this
process (throughput, batch latency, peak memory). With --data-config and
--epochs each variant is first trained from scratch on that config's train
split (its optimizer, a short warm-up, cosine decay; the head sized for its
classes) and scored on its val split. Writes ``mhsa_proportion.csv`` and
``mhsa_proportion.png``.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    cli.add_configs(parser)
    parser.add_argument('--fractions', nargs='+', type=float,
                        default=[0., 0.25, 0.5, 0.75, 1.],
                        help='fractions of the attention layers to keep')
    parser.add_argument(
        '--placement', choices=['spread', 'first', 'last'], default='spread',
        help='which attention layers are kept: spread evenly over the depth '
        '(default), the first or the last ones')
    cli.add_device(parser)
    parser.add_argument('--batch-size', type=int, default=16,
                        help='batch of the throughput runs')
    cli.add_shape(parser, 'input size of the throughput runs')
    cli.add_threads(parser, 1, ', as the paper')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed runs per variant')
    parser.add_argument(
        '--data-config', help='classification config whose data the variants '
        'are trained on and scored with')
    cli.add_cfg_options(parser, '--data-options',
                        help='--cfg-options of the data config')
    parser.add_argument(
        '--epochs', type=float, default=0.,
        help='training epochs per variant (needs '
        '--data-config; default 0: no training)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-dir', default='work_dirs/mhsa_proportion')
    args = parser.parse_args(argv)
    args.shape = cli.parse_shape(parser, args.shape)
    cli.check_threads(parser, args.threads)
    args.labels = cli.config_labels(parser, args)
    if args.epochs > 0 and not args.data_config:
        parser.error('--epochs trains on the data of --data-config: give one')
    if any(not 0 <= f <= 1 for f in args.fractions):
        parser.error('--fractions must lie in [0, 1]')
    if args.batch_size < 1 or args.repeats < 1:
        parser.error('--batch-size and --repeats must be at least 1')
    cli.check_device(args.device)
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    from efficientvit_mm.analysis.mhsa_proportion import plot, study, write_csv
    from efficientvit_mm.apis import DEFAULT_SHAPES
    from efficientvit_mm.benchmarking.machine import describe_machine
    from efficientvit_mm.runtime import load_config
    from efficientvit_mm.runtime.args import output_paths
    torch.set_num_threads(args.threads)
    data_cfg = load_config(args.data_config, args.data_options) \
        if args.data_config else None
    shape = args.shape or DEFAULT_SHAPES['classification']
    print(f'machine: {describe_machine()}', flush=True)
    cfgs = [load_config(c, args.cfg_options) for c in args.configs]
    rows = []
    for label, cfg in zip(args.labels, cfgs):
        rows += study(cfg, label, args.fractions, args.batch_size, shape,
                      args.device, args.placement, data_cfg, args.epochs,
                      args.seed, lambda msg: print(msg, flush=True),
                      repeats=args.repeats, calls=1)
    csv_path, png_path = output_paths(args.out_dir, 'mhsa_proportion.csv',
                                      'mhsa_proportion.png')
    write_csv(rows, csv_path)
    title = (f'{args.device}, batch {args.batch_size}, {shape[0]}x{shape[1]},'
             f' {args.threads} thread(s), attention kept: {args.placement}')
    if data_cfg is not None and args.epochs > 0:
        title += (f'; trained {args.epochs:g} epoch(s) on '
                  f'{osp.basename(args.data_config)}')
    plot(rows, png_path, title)
    print(f'wrote {csv_path} and {png_path}', flush=True)
    return rows


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/analysis/mhsa_proportion.py', main)
