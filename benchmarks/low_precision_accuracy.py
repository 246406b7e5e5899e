"""bf16 and INT8 against fp32 on a trained model's val set (issue 12: each
within 1 point of fp32 in top-1 or mAP), with the latency of each, timed
interleaved in the same run.

    .venv/bin/python benchmarks/low_precision_accuracy.py CONFIG CHECKPOINT
        [--val-images N] [--calib-images 64] [--threads 1]
        [--runtimes fp32 bf16 int8] [--cfg-options data_root=...]

e.g. on the shapes demos (tools/shapes_demo.py cls|det trains them):

    benchmarks/low_precision_accuracy.py \\
        configs/demo/efficientvit_m0_shapes_cls.py \\
        work_dirs/cls_shapes_demo/epoch_10.pth

fp32 is the deploy model in PyTorch, bf16 the same in bfloat16 (left out
where the CPU has no bf16 matrix units, unless named in --runtimes), int8
the exported whole model after static QDQ quantisation (per-channel
weights, calibrated on the first --calib-images train images) in
onnxruntime. See docs/deployment.md.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.deploy.precision_check import RUNTIMES
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--val-images', type=int, metavar='N',
                        help='the first N val images (default: all)')
    parser.add_argument('--calib-images', type=int, default=64, metavar='N')
    parser.add_argument('--runtimes', nargs='+', choices=RUNTIMES,
                        help='default: all the CPU can run')
    cli.add_threads(parser, 1, ', for every runtime')
    cli.add_cfg_options(parser)
    args = parser.parse_args(argv)
    cli.check_threads(parser, args.threads)
    for name in ('val_images', 'calib_images'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be positive')
    return args


def main(argv=None) -> dict:
    import torch

    from efficientvit_mm.apis import build_model
    from efficientvit_mm.benchmarking import describe_machine
    from efficientvit_mm.deploy.precision import bf16_supported
    from efficientvit_mm.deploy.precision_check import compare, format_report
    from efficientvit_mm.runtime import load_config
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.runtimes or (['fp32', 'bf16', 'int8']
                              if bf16_supported() else ['fp32', 'int8'])
    cfg = load_config(args.config, args.cfg_options)
    model = build_model(cfg, args.checkpoint)
    report = compare(cfg, model, names, args.val_images, args.calib_images)
    print(f'{describe_machine()} | {args.threads} thread(s) | '
          f'{report["num_images"]} val images, one per batch | '
          f'bf16 units: {"yes" if bf16_supported() else "none"}')
    print(format_report(report))
    return report


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('benchmarks/low_precision_accuracy.py', main)
