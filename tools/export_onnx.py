#!/usr/bin/env python
"""Export an EfficientViT model to ONNX and check it with onnxruntime.

    python tools/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H W]

* classification configs export the whole classifier (logits), dynamic batch;
* detection and segmentation configs export the backbone (its three stage
  maps), dynamic batch, height and width.

The model is exported in deploy mode (every BatchNorm folded). onnxruntime
then runs it beside PyTorch: the max abs difference of every output must be
<= 1e-4 (at the export shape, and for dense models at a second shape too),
and the CPU throughput of both is printed. Needs the optional extras:
``pip install onnx onnxruntime``. See efficientvit_mm/deploy/onnx.py for
what dynamic shapes cover.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('config')
    parser.add_argument(
        'checkpoint', help='efficientvit_mm checkpoint '
        '(tools/convert_checkpoint.py makes one from '
        'official/timm files)')
    parser.add_argument('output', help='path of the .onnx file to write')
    cli.add_shape(parser, 'export input size')
    parser.add_argument('--opset', type=int, default=17)
    cli.add_threads(parser, 1, ', for both runtimes when timing')
    parser.add_argument(
        '--batch-size', type=int,
        help='timing batch (default 16 for classification, '
        '1 for dense models)')
    parser.add_argument('--no-benchmark', action='store_true',
                        help='only export and check')
    args = parser.parse_args(argv)
    args.shape = cli.parse_shape(parser, args.shape)
    cli.check_threads(parser, args.threads)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from efficientvit_mm.apis import DEFAULT_SHAPES, build_model
    from efficientvit_mm.benchmarking.timing import median, time_interleaved
    from efficientvit_mm.deploy import onnx
    from efficientvit_mm.runtime import load_config, task_of
    cfg = load_config(args.config)
    task = task_of(cfg)
    shape = args.shape or DEFAULT_SHAPES[task]
    module, names, axes = onnx.exportable(
        build_model(cfg, args.checkpoint), task)
    onnx.export(module, names, axes, shape, args.output, args.opset)
    part = 'classifier' if task == 'classification' else 'backbone'
    print(f'exported {task} model ({part}, deploy mode) to {args.output}')

    session = onnx.ort_session(args.output, args.threads)
    shapes = [(2, 3) + tuple(shape)]
    if task != 'classification':
        shapes.append((1, 3, shape[0] + 64, shape[1] - 32))
    worst = 0.
    for s in shapes:
        diff = onnx.max_difference(session, module, torch.randn(*s))
        worst = max(worst, diff)
        print(f'onnxruntime vs PyTorch at {s}: max abs diff {diff:.2e}')
    if worst > onnx.TOLERANCE:
        print(f'FAILED: max abs diff {worst:.2e} > {onnx.TOLERANCE:g}')
        return 1
    print(f'check passed (<= {onnx.TOLERANCE:g})')

    if not args.no_benchmark:
        torch.set_num_threads(args.threads)
        batch = args.batch_size or (16 if task == 'classification' else 1)
        xb = torch.randn(batch, 3, *shape)
        xcl = xb.contiguous(memory_format=torch.channels_last)
        fast = module.to(memory_format=torch.channels_last)
        feed = {'input': xb.numpy()}

        def run_torch():
            with torch.inference_mode():
                fast(xcl)

        times = time_interleaved(
            {
                'torch': run_torch,
                'ort': lambda: session.run(None, feed)
            }, warmup=2, repeats=7)
        print(f'CPU throughput, {args.threads} thread(s), batch {batch}, '
              f'{shape[0]}x{shape[1]}: PyTorch deploy '
              f'{batch / median(times["torch"]):.1f} img/s | onnxruntime '
              f'{batch / median(times["ort"]):.1f} img/s')
    return 0


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/export_onnx.py', main)
