#!/usr/bin/env python
"""Run an exported whole model (tools/export_onnx.py) on image files with
onnxruntime and draw its predictions, as tools/test.py --show-dir draws
PyTorch's (the config's visualizer, predictions only).

    python tools/infer_onnx.py MODEL.onnx CONFIG IMAGE [IMAGE ...] \\
        --out-dir vis

The config gives the pre-processing (test pipeline, data preprocessor),
the class names and the visualizer. Needs onnxruntime only (no mmdeploy).
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('model', help='.onnx file of tools/export_onnx.py')
    parser.add_argument('config', help='the config it was exported from')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--out-dir', required=True,
                        help='folder for the drawings (one per image)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections drawn from this score on')
    cli.add_threads(parser, 1)
    cli.add_cfg_options(parser)
    args = parser.parse_args(argv)
    cli.check_threads(parser, args.threads)
    return args


def main(argv=None) -> int:
    from efficientvit_mm.deploy.commands import infer_main
    return infer_main(parse_args(argv))


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/infer_onnx.py', main)
