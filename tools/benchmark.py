#!/usr/bin/env python
"""Inference speed of a model: images/s, batch-1 latency, peak memory.

    python tools/benchmark.py --arch m4                  # paper CPU method
    python tools/benchmark.py --arch m4 --mode eager deploy --compare-timm
    python tools/benchmark.py --arch m4 --device cuda --amp \\
        --batch-size 2048 \\
        --mode deploy cudagraph --json m4_gpu.json
    python tools/benchmark.py configs/retinanet_efficientvit_m4_coco.py \\
        --shape 800 1333 --batch-size 1

Modes (several may be given; they are timed interleaved in one process):
eager (as built), deploy (BatchNorm folded by switch_to_deploy), compile
(deploy + torch.compile; on the CPU with weight freezing) and cudagraph
(deploy captured in a CUDA graph).
Our modes run channels_last unless --no-channels-last. With --compare-timm,
timm's efficientvit_m* gets the same weights and is timed beside them, as
shipped (eager, NCHW), and the ratio to it is printed.
"""
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not

ARCHS = [f'm{i}' for i in range(6)]


def arch_config(arch: str) -> str:
    """The ImageNet classifier config of an arch."""
    return osp.join(ROOT, 'configs', f'efficientvit_{arch}_in1k.py')


def parse_args(argv=None):
    from efficientvit_mm.benchmarking.inference import MODES
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('config', nargs='?', help='config file (or --arch)')
    parser.add_argument(
        '--arch', choices=ARCHS, help='the ImageNet classifier configs/'
        'efficientvit_<arch>_in1k.py')
    parser.add_argument('--batch-size', type=int,
                        help='default: 16 on the CPU, 2048 on CUDA')
    cli.add_shape(parser)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    cli.add_threads(parser, why=' (default: 1 on the CPU, as the paper '
                    'measures)')
    parser.add_argument('--amp', action='store_true',
                        help='autocast: fp16 on CUDA, bf16 on the CPU')
    parser.add_argument('--mode', nargs='+', choices=MODES,
                        default=['eager', 'deploy'])
    parser.add_argument('--no-channels-last', action='store_true',
                        help='keep NCHW memory format for our modes')
    parser.add_argument(
        '--compare-timm', action='store_true',
        help="time timm's efficientvit_m* with the same "
        'weights (needs `pip install timm`)')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=7,
                        help='timed runs per mode; the median is reported')
    parser.add_argument('--iters', type=int, default=3,
                        help='forward passes per timed run (at least)')
    parser.add_argument('--json', metavar='PATH',
                        help='also write the figures to this JSON file')
    args = parser.parse_args(argv)
    if (args.config is None) == (args.arch is None):
        parser.error('give a config or --arch, not both')
    args.shape = cli.parse_shape(parser, args.shape)
    cli.check_threads(parser, args.threads)
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is visible')
    if 'cudagraph' in args.mode and args.device != 'cuda':
        parser.error('cudagraph mode needs --device cuda')
    return args


def main(argv=None):
    args = parse_args(argv)
    from efficientvit_mm.benchmarking.inference import (benchmark_config,
                                                        format_results)
    from efficientvit_mm.runtime import load_config
    config = args.config or arch_config(args.arch)
    report = benchmark_config(
        load_config(config), args.mode, args.device, args.batch_size,
        args.shape, args.amp, not args.no_channels_last, args.compare_timm,
        args.threads, warmup=args.warmup, repeats=args.repeats,
        calls=args.iters)
    report['config'] = config
    print(format_results(report, config))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)
    return report['results']


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/benchmark.py', main)
