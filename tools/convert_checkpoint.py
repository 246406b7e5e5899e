#!/usr/bin/env python
"""Convert released EfficientViT checkpoints to efficientvit_mm models.

    # ImageNet classifiers (official or timm) -> backbone.* + head.*
    python tools/convert_checkpoint.py efficientvit_m4.pth \\
        efficientvit_m4_mm.pth

    # official mmdet 2.x COCO detectors, checked key by key against our model
    python tools/convert_checkpoint.py \\
        retinanet_efficientvit_m4_fpn_1x_coco.pth \\
        retinanet_efficientvit_m4_coco.pth \\
        --config configs/retinanet_efficientvit_m4_coco.py

The output is ``{'state_dict': ..., 'meta': ...}``: use it with
``tools/test.py CONFIG OUTPUT`` or ``load_from``. With ``--config`` the
model is built (without its pretrained weights) and the conversion fails
unless every key and shape matches.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__,
                             'Convert official/timm EfficientViT checkpoints')
    parser.add_argument('src', help='release checkpoint (local path or URL)')
    parser.add_argument('dst', help='output file')
    parser.add_argument(
        '--config',
        help='config of the target model: check every converted key and '
        'shape against it')
    cli.add_cfg_options(parser, help='override settings of --config')
    return cli.parse_debug_args(parser, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from efficientvit_mm.apis import build_model
    from efficientvit_mm.checkpoint import convert_file
    from efficientvit_mm.runtime import (PreflightError, drop_pretrained,
                                         load_config)
    if not args.src.startswith(('http://', 'https://')) and \
            not osp.isfile(args.src):
        raise PreflightError(f'checkpoint {args.src} not found')
    if osp.abspath(args.src) == osp.abspath(args.dst):
        raise PreflightError('dst must differ from src')
    model = None
    if args.config:
        cfg = load_config(args.config, args.cfg_options)
        drop_pretrained(cfg.model)  # only the keys matter here
        model = build_model(cfg)
    result = convert_file(args.src, args.dst, model)
    meta = result['meta']
    checked = f', checked against {meta["checked_with"]}' \
        if 'checked_with' in meta else ''
    print(f'converted {meta["kind"]} checkpoint ({meta["source_layout"]} '
          f'layout, {len(result["state_dict"])} tensors{checked}) -> '
          f'{args.dst}')
    return 0


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/convert_checkpoint.py', main)
