#!/usr/bin/env python
"""Plot loss and metric curves of one or more runs to a PNG.

    python tools/analysis/plot_curves.py work_dirs/retinanet_m4
    python tools/analysis/plot_curves.py RUN_A RUN_B --legend a b \\
        --keys loss coco/bbox_mAP --out curves.png

Each RUN is a work dir (its newest ``<timestamp>/vis_data/scalars.json``
is read) or a scalar log file. By default every ``loss*`` series and every
validation metric (``coco/bbox_mAP``, ``mIoU``, ``accuracy/top1``...) gets
a panel.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__,
                             'Plot loss and metric curves from mmengine logs')
    parser.add_argument('runs', nargs='+',
                        help='work dirs or vis_data/scalars.json files')
    parser.add_argument(
        '--keys', nargs='+', help='series to plot (default: losses and '
        'validation metrics)')
    parser.add_argument('--legend', nargs='+', help='one name per run')
    parser.add_argument('--out', default='curves.png', help='PNG to write')
    parser.add_argument('--title', help='figure title')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from efficientvit_mm.analysis.curves import plot_curves
    keys = plot_curves(args.runs, args.out, args.keys, args.legend, args.title)
    print(f'saved {len(keys)} curves ({", ".join(keys)}) to {args.out}')
    return 0


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/analysis/plot_curves.py', main)
