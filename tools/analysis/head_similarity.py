"""Head redundancy of every attention block (the paper's Fig. 4).

    python tools/analysis/head_similarity.py CONFIG CHECKPOINT \\
        [--measure maps|outputs] [--images DIR] [--num-images 64] \\
        [--shape 224] [--out-dir work_dirs/head_sim] \\
        [--compare CONFIG2 CHECKPOINT2 --labels cascaded MHSA]

For each attention block and head: the cosine similarity of the head's
attention map (or, with --measure outputs, its output) to each other
head's, averaged over the images (and windows), and its maximum over the
other heads. EfficientViT's cascaded group attention, mmpretrain's Swin
(WindowMSA) and ViT/DeiT attention are hooked alike. Writes
``head_similarity.csv`` and ``head_similarity.png``. Without ``--images``
(or without ImageNet) the images are synthetic shapes scenes. Comparing
with the MHSA-style variant: ``--compare CONFIG CKPT --compare-options
model.backbone.cascade=False``.
CHECKPOINT may be ``none`` for randomly initialised weights.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    cli.add_model(parser)
    parser.add_argument('--compare', nargs=2, metavar=('CONFIG', 'CKPT'),
                        help='a second model to plot beside the first')
    cli.add_cfg_options(parser, '--compare-options',
                        help='--cfg-options of the --compare model')
    parser.add_argument('--labels', nargs='+', default=None,
                        help='legend labels (default: config names)')
    parser.add_argument(
        '--measure', choices=['maps', 'outputs'], default='maps',
        help="compare the heads' attention maps (default, the paper's "
        "Fig. 4) or their outputs (map times V)")
    parser.add_argument('--images', help='folder of images (jpg/png)')
    parser.add_argument('--num-images', type=int, default=64)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--shape', type=int, default=224,
                        help='images are resized to shape x shape')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-dir', default='work_dirs/head_similarity')
    args = parser.parse_args(argv)
    if min(args.num_images, args.batch_size, args.shape) < 1:
        parser.error('--num-images, --batch-size and --shape must be at '
                     'least 1')
    runs = 2 if args.compare else 1
    if args.labels and len(args.labels) != runs:
        parser.error(f'--labels needs {runs} names')
    return args


def main(argv=None):
    args = parse_args(argv)
    import numpy as np

    from efficientvit_mm.analysis.head_similarity import (
        config_head_similarity, load_images, plot, write_csv)
    from efficientvit_mm.runtime import load_config
    from efficientvit_mm.runtime.args import checkpoint_or_none, output_paths
    images = load_images(args.images, args.num_images, args.shape, args.seed)
    runs = [(args.config, args.checkpoint, args.cfg_options)]
    if args.compare:
        runs.append((*args.compare, args.compare_options))
    labels = args.labels or [
        osp.splitext(osp.basename(c))[0] +
        (' (cascade off)'
         if o and o.get('model.backbone.cascade') is False else '')
        for c, _, o in runs
    ]
    cfgs = [load_config(config, options) for config, _, options in runs]
    results, rows = {}, []
    for i, (label, cfg, (_, ckpt, _)) in enumerate(zip(labels, cfgs, runs)):
        print(
            f'[{i + 1}/{len(runs)}] {label}: heads over {len(images)} '
            'images ...', flush=True)
        result = config_head_similarity(cfg, checkpoint_or_none(ckpt), images,
                                        args.batch_size, args.measure)
        results[label] = result
        rows += [dict(r, variant=label) for r in result]
        per_block = {}
        for r in result:
            per_block.setdefault(r['block'], []).append(r['max_cos_sim'])
        print(f'{label}: mean max similarity per block ' +
              ', '.join(f'{np.mean(v):.3f}' for v in per_block.values()) +
              f' | overall {np.mean([r["max_cos_sim"] for r in result]):.3f}')
    csv_path, png_path = output_paths(args.out_dir, 'head_similarity.csv',
                                      'head_similarity.png')
    write_csv(rows, csv_path)
    what = 'attention maps' if args.measure == 'maps' else 'outputs'
    plot(
        results, png_path,
        f'Head similarity ({what}) over {len(images)} images of '
        f'{args.shape}x{args.shape}', args.measure)
    print(f'wrote {csv_path} and {png_path}')
    return results


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/analysis/head_similarity.py', main)
