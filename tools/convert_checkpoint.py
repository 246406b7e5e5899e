#!/usr/bin/env python
"""Convert released EfficientViT checkpoints to efficientvit_mm models.

    # ImageNet classifiers (official or timm) -> backbone.* + head.*
    python tools/convert_checkpoint.py efficientvit_m4.pth efficientvit_m4_mm.pth

    # official mmdet 2.x COCO detectors, checked key by key against our model
    python tools/convert_checkpoint.py retinanet_efficientvit_m4_fpn_1x_coco.pth \\
        retinanet_efficientvit_m4_coco.pth \\
        --config configs/retinanet_efficientvit_m4_coco.py

The output is ``{'state_dict': ..., 'meta': ...}``: use it with
``tools/test.py CONFIG OUTPUT`` or ``load_from``. With ``--config`` the
model is built (without its pretrained weights) and the conversion fails
unless every key and shape matches.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from efficientvit_mm.runtime.config import quiet_import_warnings  # noqa: E402

quiet_import_warnings()


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        prog='tools/convert_checkpoint.py',
        description='Convert official/timm EfficientViT checkpoints')
    parser.add_argument('src', help='release checkpoint (local path or URL)')
    parser.add_argument('dst', help='output file')
    parser.add_argument(
        '--config',
        help='config of the target model: check every converted key and '
        'shape against it')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of --config')
    return parser.parse_args(argv)


def build_model(config, cfg_options):
    from mmengine.registry import MODELS, init_default_scope

    from efficientvit_mm.runtime import load_config
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmengine'))

    def drop_pretrained(node):
        if isinstance(node, dict):
            init = node.get('init_cfg')
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                node['init_cfg'] = None
            for value in node.values():
                drop_pretrained(value)

    drop_pretrained(cfg.model)  # only the keys matter here
    return MODELS.build(cfg.model)


def main(argv=None) -> int:
    args = parse_args(argv)
    import efficientvit_mm  # noqa: F401
    from efficientvit_mm.models.utils import CheckpointMismatchError
    from efficientvit_mm.models.utils.convert import convert_file
    from efficientvit_mm.runtime import PreflightError
    try:
        model = build_model(args.config, args.cfg_options) \
            if args.config else None
        if not args.src.startswith(('http://', 'https://')) and \
                not osp.isfile(args.src):
            raise PreflightError(f'checkpoint {args.src} not found')
        if osp.abspath(args.src) == osp.abspath(args.dst):
            raise PreflightError('dst must differ from src')
        result = convert_file(args.src, args.dst, model)
    except (PreflightError, CheckpointMismatchError, RuntimeError) as err:
        print(f'tools/convert_checkpoint.py: error: {err}', file=sys.stderr)
        return 1
    meta = result['meta']
    checked = f', checked against {meta["checked_with"]}' \
        if 'checked_with' in meta else ''
    print(f'converted {meta["kind"]} checkpoint ({meta["source_layout"]} '
          f'layout, {len(result["state_dict"])} tensors{checked}) -> '
          f'{args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
