"""Split inference time into compute- and memory-bound work per block role
(the paper's Fig. 2), for one model or several side by side.

    python tools/analysis/runtime_breakdown.py CONFIG [CONFIG ...] \\
        [--labels A B ...] [--device cpu|cuda] [--batch-size 16] \\
        [--shape 224] [--threads 1] [--deploy] [--out-dir DIR]

    python tools/analysis/runtime_breakdown.py \\
        mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py \\
        mmpretrain::deit/deit-tiny_4xb256_in1k.py \\
        configs/efficientvit_m4_in1k.py --labels Swin-T DeiT-T EfficientViT-M4

Blocks are charged by role: stem, patch embed/merging, downsampling,
attention, token mixing (depthwise convs), FFN/MLP, conv block (ResNet),
normalisation, other (residual adds between blocks, pooling, head). Other
models: --role ClassName=role. Writes ``runtime_breakdown.csv`` (model,
role, kind, operator group, ms per forward) and ``runtime_breakdown.png``.
Weights do not change the timing, so models are built without weights.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    cli.add_configs(parser)
    cli.add_device(parser)
    parser.add_argument('--batch-size', type=int, default=16)
    cli.add_shape(parser)
    cli.add_threads(parser, 1, ', as the paper')
    parser.add_argument('--deploy', action='store_true',
                        help='fold BatchNorm first (switch_to_deploy)')
    parser.add_argument('--runs', type=int, default=3,
                        help='profiled forwards per model')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--role', nargs='+', metavar='CLASS=ROLE',
        help='role of the modules of a class this tool does '
        'not know, e.g. MyAttention=attention')
    parser.add_argument('--out-dir', default='work_dirs/runtime_breakdown')
    args = parser.parse_args(argv)
    args.shape = cli.parse_shape(parser, args.shape)
    cli.check_threads(parser, args.threads)
    args.labels = cli.config_labels(parser, args)
    if args.batch_size < 1 or args.runs < 1 or args.warmup < 0:
        parser.error('--batch-size and --runs must be at least 1, --warmup '
                     'at least 0')
    cli.check_device(args.device)
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    from efficientvit_mm.analysis.runtime_breakdown import (config_breakdown,
                                                            format_summary,
                                                            parse_roles, plot,
                                                            write_csv)
    from efficientvit_mm.apis import DEFAULT_SHAPES
    from efficientvit_mm.runtime import load_config, task_of
    from efficientvit_mm.runtime.args import output_paths
    torch.set_num_threads(args.threads)
    roles = parse_roles(args.role)
    # every config is read before the first is profiled: a bad one fails
    # at once, not after minutes of profiling
    cfgs = [load_config(c, args.cfg_options) for c in args.configs]
    results, shapes = {}, set()
    for i, (label, config,
            cfg) in enumerate(zip(args.labels, args.configs, cfgs)):
        print(f'[{i + 1}/{len(args.labels)}] profiling {label} ...',
              flush=True)
        shape = tuple(args.shape or DEFAULT_SHAPES[task_of(cfg)])
        shapes.add(f'{shape[0]}x{shape[1]}')
        results[label] = config_breakdown(cfg, shape, args.batch_size,
                                          args.device, args.deploy, args.runs,
                                          args.warmup, roles, config)
        print(format_summary(label, results[label]), flush=True)
    csv_path, png_path = output_paths(args.out_dir, 'runtime_breakdown.csv',
                                      'runtime_breakdown.png')
    write_csv(results, csv_path)
    title = (f'{args.device}, batch {args.batch_size}, '
             f'{" / ".join(sorted(shapes))}, {args.threads} thread(s)'
             f'{", deploy" if args.deploy else ""}')
    plot(results, png_path, title)
    print(f'wrote {csv_path} and {png_path}')
    return results


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/analysis/runtime_breakdown.py', main)
