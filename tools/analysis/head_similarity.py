"""Head redundancy of every attention block (the paper's Fig. 4).

    python tools/analysis/head_similarity.py CONFIG CHECKPOINT \\
        [--images DIR] [--num-images 64] [--out-dir work_dirs/head_sim] \\
        [--compare CONFIG2 CHECKPOINT2 --labels cascaded MHSA]

For each attention block and head: the cosine similarity of the head's
output to each other head's output, averaged over the images, and its
maximum over the other heads. Writes ``head_similarity.csv`` and
``head_similarity.png``. Without ``--images`` (or without ImageNet) the
images are synthetic shapes scenes. Comparing with the MHSA-style variant:
``--compare CONFIG CKPT --compare-options model.backbone.cascade=False``.
CHECKPOINT may be ``none`` for randomly initialised weights.
"""
import argparse
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, ROOT)

import efficientvit_mm  # noqa: E402,F401
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from efficientvit_mm.analysis import head_similarity  # noqa: E402
from efficientvit_mm.analysis.head_similarity import plot, write_csv  # noqa
from efficientvit_mm.apis import build_model, load_config, task_of  # noqa
from efficientvit_mm.apis.complexity import TensorForward, data_samples  # noqa
from efficientvit_mm.models.utils import (extract_state_dict,  # noqa: E402
                                          load_checkpoint_file)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint, or 'none'")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--compare', nargs=2, metavar=('CONFIG', 'CKPT'),
                        help='a second model to plot beside the first')
    parser.add_argument('--compare-options', nargs='+', action=DictAction,
                        help='--cfg-options of the --compare model')
    parser.add_argument('--labels', nargs='+', default=None,
                        help='legend labels (default: config names)')
    parser.add_argument('--images', help='folder of images (jpg/png)')
    parser.add_argument('--num-images', type=int, default=64)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--shape', type=int, default=224,
                        help='images are resized to shape x shape')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out-dir', default='work_dirs/head_similarity')
    return parser.parse_args(argv)


def load_images(args) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB images."""
    import cv2
    if args.images:
        files = sorted(f for ext in ('jpg', 'jpeg', 'png', 'JPEG')
                       for f in glob.glob(os.path.join(args.images, '**',
                                                       f'*.{ext}'),
                                          recursive=True))
        if not files:
            raise SystemExit(f'no jpg/png images found under {args.images}')
        images = []
        for path in files[:args.num_images]:
            bgr = cv2.imread(path)
            images.append(cv2.resize(bgr, (args.shape, args.shape))[..., ::-1])
        return np.stack(images)
    from efficientvit_mm.datasets.shapes import ShapesGenerator
    gen = ShapesGenerator(image_size=args.shape, seed=args.seed)
    return np.stack([s.image for s in gen.scenes(args.num_images)])


def batches(images: np.ndarray, cfg, batch_size: int):
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor')
    mean = torch.tensor(pre.get('mean', [123.675, 116.28, 103.53]))
    std = torch.tensor(pre.get('std', [58.395, 57.12, 57.375]))
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size].copy()).float()
        x = (x - mean) / std  # images are RGB, as the models expect
        yield x.permute(0, 3, 1, 2).contiguous()


def analyse(config, checkpoint, options, images, args):
    cfg = load_config(config, options)
    model = build_model(cfg)
    if checkpoint.lower() != 'none':
        state = extract_state_dict(load_checkpoint_file(checkpoint))
        model.load_state_dict(state, strict=True)
    task = task_of(cfg)
    net = TensorForward(model, data_samples(task, (args.shape, args.shape)))
    return head_similarity(net, batches(images, cfg, args.batch_size))


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    images = load_images(args)
    runs = [(args.config, args.checkpoint, args.cfg_options)]
    if args.compare:
        runs.append((*args.compare, args.compare_options))
    labels = args.labels or [
        os.path.splitext(os.path.basename(c))[0] +
        (' (cascade off)' if o and o.get('model.backbone.cascade') is False
         else '') for c, _, o in runs
    ]
    if len(labels) != len(runs):
        raise SystemExit(f'--labels needs {len(runs)} names')
    results, rows = {}, []
    for label, (config, ckpt, options) in zip(labels, runs):
        result = analyse(config, ckpt, options, images, args)
        results[label] = result
        rows += [dict(r, variant=label) for r in result]
        per_block = {}
        for r in result:
            per_block.setdefault(r['block'], []).append(r['max_cos_sim'])
        print(f'{label}: mean max similarity per block ' + ', '.join(
            f'{np.mean(v):.3f}' for v in per_block.values()) +
            f' | overall {np.mean([r["max_cos_sim"] for r in result]):.3f}')
    csv_path = os.path.join(args.out_dir, 'head_similarity.csv')
    png_path = os.path.join(args.out_dir, 'head_similarity.png')
    write_csv(rows, csv_path)
    plot(results, png_path, f'Head similarity over {len(images)} images')
    print(f'wrote {csv_path} and {png_path}')
    return results


if __name__ == '__main__':
    main()
