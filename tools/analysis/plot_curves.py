#!/usr/bin/env python
"""Plot loss and metric curves of one or more runs to a PNG.

    python tools/analysis/plot_curves.py work_dirs/retinanet_efficientvit_m4_coco
    python tools/analysis/plot_curves.py RUN_A RUN_B --legend a b \\
        --keys loss coco/bbox_mAP --out curves.png

Each RUN is a work dir (its newest ``<timestamp>/vis_data/scalars.json``
is read) or a scalar log file. By default every ``loss*`` series and every
validation metric (``coco/bbox_mAP``, ``mIoU``, ``accuracy/top1``...) gets
a panel.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='tools/analysis/plot_curves.py',
        description='Plot loss and metric curves from mmengine logs')
    parser.add_argument('runs', nargs='+',
                        help='work dirs or vis_data/scalars.json files')
    parser.add_argument('--keys', nargs='+',
                        help='series to plot (default: losses and '
                        'validation metrics)')
    parser.add_argument('--legend', nargs='+', help='one name per run')
    parser.add_argument('--out', default='curves.png', help='PNG to write')
    parser.add_argument('--title', help='figure title')
    return parser.parse_args(argv)


def default_keys(train, val):
    losses = sorted(k for k in train if k.startswith('loss'))
    metrics = sorted(k for k in val)
    # the headline metrics first (mAP, mIoU, top-1), the rest after
    head = [k for k in metrics if k.endswith(('bbox_mAP', 'segm_mAP', 'mIoU',
                                              'top1'))]
    return losses + head + [k for k in metrics if k not in head]


def main(argv=None) -> int:
    args = parse_args(argv)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from efficientvit_mm.runtime.logs import load_scalars
    if args.legend and len(args.legend) != len(args.runs):
        print('tools/analysis/plot_curves.py: error: --legend needs one name '
              'per run', file=sys.stderr)
        return 1
    try:
        logs = [load_scalars(run) for run in args.runs]
    except (FileNotFoundError, ValueError) as err:
        print(f'tools/analysis/plot_curves.py: error: {err}', file=sys.stderr)
        return 1
    keys = args.keys
    if not keys:
        keys = []
        for train, val, _ in logs:
            keys += [k for k in default_keys(train, val) if k not in keys]
        # at most 8 panels by default: losses and the headline metrics
        keys = keys[:8]
    missing = [k for k in keys if not any(k in t or k in v
                                          for t, v, _ in logs)]
    if missing or not keys:
        known = sorted({k for t, v, _ in logs for k in list(t) + list(v)})
        print(f'tools/analysis/plot_curves.py: error: no series {missing} '
              f'in the logs; available: {known}', file=sys.stderr)
        return 1
    names = args.legend or [osp.basename(osp.normpath(r)) for r in args.runs]
    cols = min(len(keys), 3)
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for name, (train, val, unit) in zip(names, logs):
            series, xlabel = (train[key], 'iteration') if key in train else \
                (val.get(key, []), unit)
            if not series:
                continue
            xs, ys = zip(*series)
            ax.plot(xs, ys, marker='o' if key not in train else None,
                    markersize=3, label=name)
            ax.set_xlabel(xlabel)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        if len(logs) > 1:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f'saved {len(keys)} curves ({", ".join(keys)}) to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
