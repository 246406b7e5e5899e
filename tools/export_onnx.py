"""Export an EfficientViT model to ONNX and check it with onnxruntime.

    python tools/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H W]

* classification configs export the whole classifier (logits), dynamic batch;
* detection and segmentation configs export the backbone (its three stage
  maps), dynamic batch, height and width.

The model is exported in deploy mode (every BatchNorm folded). onnxruntime
then runs it beside PyTorch: the max abs difference of every output must be
<= 1e-4 (at the export shape, and for dense models at a second shape too),
and the CPU throughput of both is printed. Needs the optional extras:
``pip install onnx onnxruntime``.

Dynamic shapes: a stage map no larger than one attention window is attended
whole in PyTorch, which the traced graph does not reproduce; the exported
backbone is exact whenever the stage-3 map exceeds the window in height or
width (inputs above 448 px on one side with 7x7 windows), as detection and
segmentation inputs do. Export at the size you deploy.
"""
import argparse
import os
import statistics
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import efficientvit_mm  # noqa: E402,F401
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from efficientvit_mm.apis import build_model, load_config, task_of  # noqa
from efficientvit_mm.apis.complexity import DEFAULT_SHAPES  # noqa: E402
from efficientvit_mm.apis.measure import time_interleaved  # noqa: E402
from efficientvit_mm.models.utils import (  # noqa: E402
    extract_state_dict, load_checkpoint_file, switch_to_deploy)

TOLERANCE = 1e-4


class ClassifierLogits(nn.Module):
    """Image tensor -> logits, without the data preprocessor."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(x, mode='tensor')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='efficientvit_mm checkpoint '
                        '(tools/convert_checkpoint.py makes one from '
                        'official/timm files)')
    parser.add_argument('output', help='path of the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs='+', metavar='N',
                        help='export input H W (default: 224 for '
                        'classification, 800 1333 detection, 512 '
                        'segmentation)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--threads', type=int, default=1,
                        help='CPU threads of both runtimes when timing')
    parser.add_argument('--batch-size', type=int,
                        help='timing batch (default 16 for classification, '
                        '1 for dense models)')
    parser.add_argument('--no-benchmark', action='store_true',
                        help='only export and check')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error(f'--shape takes H W or one size, got {args.shape}')
    return args


def load_weights(model: nn.Module, path: str) -> None:
    state = extract_state_dict(load_checkpoint_file(path))
    missing, unexpected = [], []
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise SystemExit(
            f'{path} does not fit this config: missing {missing[:8]}, '
            f'unexpected {unexpected[:8]}. Convert official/timm files with '
            f'tools/convert_checkpoint.py first.')
    model.load_state_dict(state, strict=True)


def exportable(cfg, model: nn.Module):
    """(module, output names, dynamic axes) for the task of ``cfg``."""
    if task_of(cfg) == 'classification':
        axes = {'input': {0: 'batch'}, 'logits': {0: 'batch'}}
        return ClassifierLogits(model), ['logits'], axes
    names = [f'stage{i}' for i in model.backbone.out_indices]
    axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
    axes.update({n: {0: 'batch', 2: f'{n}_h', 3: f'{n}_w'} for n in names})
    return model.backbone, names, axes


def check(session, module, x) -> float:
    with torch.no_grad():
        expected = module(x)
    expected = expected if isinstance(expected, (tuple, list)) else [expected]
    got = session.run(None, {'input': x.numpy()})
    return max(float(np.abs(g - e.numpy()).max())
               for g, e in zip(got, expected))


def main(argv=None):
    args = parse_args(argv)
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        raise SystemExit('tools/export_onnx.py needs the optional extras: '
                         'pip install onnx onnxruntime') from None
    cfg = load_config(args.config)
    task = task_of(cfg)
    shape = DEFAULT_SHAPES[task] if args.shape is None else tuple(
        args.shape * 2 if len(args.shape) == 1 else args.shape)
    model = build_model(cfg)
    load_weights(model, args.checkpoint)
    switch_to_deploy(model)
    module, names, axes = exportable(cfg, model)
    module.eval()
    x = torch.randn(1, 3, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer notes on shape arithmetic
        torch.onnx.export(module, (x, ), args.output, dynamo=False,
                          input_names=['input'], output_names=names,
                          dynamic_axes=axes, opset_version=args.opset)
    print(f'exported {task} model ({"classifier" if task == "classification" else "backbone"}'
          f', deploy mode) to {args.output}')

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.output, options,
                                   providers=['CPUExecutionProvider'])
    shapes = [(2, 3) + shape]
    if task != 'classification':
        shapes.append((1, 3, shape[0] + 64, shape[1] - 32))
    worst = 0.
    for s in shapes:
        diff = check(session, module, torch.randn(*s))
        worst = max(worst, diff)
        print(f'onnxruntime vs PyTorch at {s}: max abs diff {diff:.2e}')
    if worst > TOLERANCE:
        print(f'FAILED: max abs diff {worst:.2e} > {TOLERANCE:g}')
        return 1
    print(f'check passed (<= {TOLERANCE:g})')

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
            {'torch': run_torch,
             'ort': lambda: session.run(None, feed)}, warmup=2, repeats=7)
        t_torch, t_ort = (statistics.median(times[k])
                          for k in ('torch', 'ort'))
        print(f'CPU throughput, {args.threads} thread(s), batch {batch}, '
              f'{shape[0]}x{shape[1]}: PyTorch deploy {batch / t_torch:.1f} '
              f'img/s | onnxruntime {batch / t_ort:.1f} img/s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
