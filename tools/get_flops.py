#!/usr/bin/env python
"""Print the parameters and FLOPs of a model built from a config.

    python tools/get_flops.py CONFIG [--shape H W] [--cfg-options ...]

FLOPs are counted as multiply-adds, as the EfficientViT paper counts them,
with mmengine's FlopAnalyzer on one image in eval mode. Works for
classification (mmpretrain, default 224x224), detection (mmdet, default
800x1333) and segmentation (mmseg, default 512x512) configs.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__.split('\n')[0])
    parser.add_argument('config', help='the model to count')
    cli.add_shape(parser)
    cli.add_cfg_options(parser)
    args = parser.parse_args(argv)
    args.shape = cli.parse_shape(parser, args.shape)
    return args


def main(argv=None):
    args = parse_args(argv)
    from efficientvit_mm.analysis import count_complexity
    from efficientvit_mm.runtime import load_config
    result = count_complexity(
        load_config(args.config, args.cfg_options), args.shape)
    print(f'config:  {args.config}')
    print(f'task:    {result["scope"]}')
    print(f'input:   1 x 3 x {result["shape"][0]} x {result["shape"][1]}')
    print(f'params:  {result["params"] / 1e6:.2f} M')
    print(f'FLOPs:   {result["flops"] / 1e9:.3f} G '
          f'({result["flops"] / 1e6:.0f} M multiply-adds)')
    return result


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/get_flops.py', main)
