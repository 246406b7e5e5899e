#!/usr/bin/env python
"""Run a trained model on your own image, folder of images or video.

    python tools/demo.py INPUT CONFIG CHECKPOINT [--out-dir outputs/demo]
        [--device cpu|cuda] [--score-thr 0.3]

Detection, instance segmentation, semantic segmentation and classification
configs alike. Writes OUT_DIR/predictions.json (one record per image or
frame: boxes, masks as COCO RLE, label maps, classes and scores) and the
drawings: OUT_DIR/vis/<image> or OUT_DIR/vis/<video>.mp4 (segmentation
label maps also as OUT_DIR/label_maps/*.png).
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument(
        'input', help='an image, a folder of images or a '
        'video (.mp4, .avi, ...)')
    parser.add_argument('config', help='the config of the model')
    parser.add_argument('checkpoint', help='its trained weights')
    parser.add_argument(
        '--out-dir', default='outputs/demo',
        help='for predictions.json and the drawings '
        '(default: outputs/demo)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu',
                        help='where the model runs (default: cpu)')
    parser.add_argument(
        '--score-thr', type=float, default=0.3, metavar='THR',
        help='detections (and classes) scoring lower are left out of the '
        'JSON and the drawings (default: 0.3)')
    cli.add_cfg_options(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from efficientvit_mm.apis import run_demo
    summary = run_demo(args.input, args.config, args.checkpoint, args.out_dir,
                       args.device, args.score_thr, args.cfg_options)
    print(f'[demo] {summary["task"]}: {len(summary["results"])} '
          f'{"frames" if summary["input_kind"] == "video" else "images"} -> '
          f'{osp.join(args.out_dir, "predictions.json")} and '
          f'{osp.join(args.out_dir, "vis")}/')
    return 0


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/demo.py', main)
