#!/usr/bin/env python
"""Export an EfficientViT model to ONNX and check it against PyTorch.

    python tools/export_onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H W]
    python tools/export_onnx.py CONFIG CHECKPOINT OUT.onnx --backbone

The whole model, in deploy mode (every BatchNorm folded), with dynamic
batch, height and width:

* classification configs: the classifier, ``logits``;
* detection configs: the detector with its post-processing, ``dets`` (x1,
  y1, x2, y2, score) and ``labels`` after NMS, and ``masks`` (28x28 per
  detection) for Mask R-CNN;
* segmentation configs: the segmentor, ``label_map``.

Detectors and segmentors go through mmdeploy's rewrites, with our
compatibility fixes for torch 2.14 (efficientvit_mm/deploy/mmdeploy_compat.py).
``--backbone`` exports the backbone alone (its stage maps).

Then onnxruntime runs the graph beside PyTorch on random inputs below, at
and above the export size (max abs diff <= 1e-4 on maps, logits and
scores, the same detections), and, for whole models, on the images of the
config's val set: the same predictions and the same metric (mAP, mIoU or
top-1, within 0.5 points); the latency of both runtimes is printed. See
docs/deployment.md.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.deploy.mmdeploy_compat import OPSET
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('config')
    parser.add_argument(
        'checkpoint', help='efficientvit_mm checkpoint '
        '(tools/convert_checkpoint.py makes one from '
        'official/timm files)')
    parser.add_argument('output', help='path of the .onnx file to write')
    cli.add_shape(parser, 'input size traced at export')
    parser.add_argument('--backbone', action='store_true',
                        help='export the backbone alone (its stage maps)')
    parser.add_argument('--opset', type=int, default=OPSET,
                        help=f'ONNX opset, 11 or higher (default {OPSET})')
    parser.add_argument(
        '--val-images', type=int, metavar='N',
        help='verify on the first N images of the val set (default: all)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections compared from this score on')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip the check on the val set')
    parser.add_argument('--no-benchmark', action='store_true',
                        help='skip the latency measurement')
    cli.add_threads(parser, 1, ', for both runtimes')
    cli.add_cfg_options(parser)
    args = parser.parse_args(argv)
    args.shape = cli.parse_shape(parser, args.shape)
    cli.check_threads(parser, args.threads)
    if args.opset < 11:
        parser.error(f'--opset must be 11 or higher, got {args.opset}')
    if args.val_images is not None and args.val_images < 1:
        parser.error('--val-images must be positive')
    return args


def main(argv=None) -> int:
    from efficientvit_mm.deploy.commands import export_main
    return export_main(parse_args(argv))


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/export_onnx.py', main)
