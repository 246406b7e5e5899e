"""Print the parameters and FLOPs of a model built from a config.

    python tools/get_flops.py CONFIG [--shape H W] [--cfg-options ...]

FLOPs are counted as multiply-adds, as the EfficientViT paper counts them,
with mmengine's FlopAnalyzer on one image in eval mode. Works for
classification (mmpretrain, default 224x224), detection (mmdet, default
800x1333) and segmentation (mmseg, default 512x512) configs.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import efficientvit_mm  # noqa: E402,F401  (registers modules, compat fixes)
from mmengine.config import DictAction  # noqa: E402

from efficientvit_mm.apis import count_complexity, load_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', metavar='N',
                        help='input size: H W, or one value for H = W '
                        '(default: 224 for classification, 800 1333 for '
                        'detection, 512 for segmentation)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        metavar='KEY=VALUE',
                        help='override config settings, as in tools/train.py')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error(f'--shape takes H W or one size, got {args.shape}')
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    shape = None if args.shape is None else (
        args.shape * 2 if len(args.shape) == 1 else args.shape)
    result = count_complexity(cfg, shape)
    print(f'config:  {args.config}')
    print(f'task:    {result["scope"]}')
    print(f'input:   1 x 3 x {result["shape"][0]} x {result["shape"][1]}')
    print(f'params:  {result["params"] / 1e6:.2f} M')
    print(f'FLOPs:   {result["flops"] / 1e9:.3f} G '
          f'({result["flops"] / 1e6:.0f} M multiply-adds)')
    return result


if __name__ == '__main__':
    main()
