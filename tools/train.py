#!/usr/bin/env python
"""Train a model from an OpenMMLab 2.0 config.

Serves detection (mmdet), segmentation (mmseg) and classification
(mmpretrain) configs alike: the config's ``default_scope`` picks the
toolbox. Flags and behaviour are those of mmdet's ``tools/train.py``.

    python tools/train.py configs/retinanet_efficientvit_m4_coco.py
    tools/dist_train.sh configs/retinanet_efficientvit_m4_coco.py 8
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # run from a checkout without `pip install -e`
    sys.path.insert(0, ROOT)

from efficientvit_mm.runtime.config import quiet_import_warnings  # noqa: E402

quiet_import_warnings()


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        prog='tools/train.py',
        description='Train a detector, segmentor or classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by the real total batch size '
        '(auto_scale_lr.base_batch_size in the config)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or, without a path, from '
        'the latest checkpoint in the work dir')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, xxx=yyy (lists: key="[a,b]"). '
        'data_root=PATH moves every dataset and evaluator file under the '
        'new root')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args):
    from efficientvit_mm.apis.train_step import amp_optim_wrapper
    from efficientvit_mm.runtime import PreflightError, preflight_train
    from efficientvit_mm.runtime.launch import check_amp, tool_config
    cfg = tool_config(args.config, args.cfg_options, args.launcher,
                      args.work_dir)

    if args.amp:
        check_amp()
        if not cfg.get('optim_wrapper'):
            raise PreflightError('--amp needs an optim_wrapper in the config')
        try:  # AGCOptimWrapper -> AGCAmpOptimWrapper, others -> Amp...
            cfg.optim_wrapper = amp_optim_wrapper(cfg.optim_wrapper)
        except ValueError as err:
            raise PreflightError(f'--amp: {err}') from None

    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or 'base_batch_size' not in scale:
            raise PreflightError(
                '--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=N) '
                'in the config (N = the total batch size its lr is for)')
        scale['enable'] = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    preflight_train(cfg, args.config)
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    from efficientvit_mm.runtime.launch import run_tool
    return run_tool('tools/train.py', lambda: build_cfg(args),
                    lambda runner, cfg: runner.train())


if __name__ == '__main__':
    sys.exit(main())
