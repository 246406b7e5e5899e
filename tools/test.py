#!/usr/bin/env python
"""Test (and evaluate) a checkpoint with an OpenMMLab 2.0 config.

Serves detection (mmdet), segmentation (mmseg) and classification
(mmpretrain) configs alike: the config's ``default_scope`` picks the
toolbox. Flags and behaviour are those of mmdet's ``tools/test.py``.

    python tools/test.py configs/retinanet_efficientvit_m4_coco.py ckpt.pth
    tools/dist_test.sh configs/retinanet_efficientvit_m4_coco.py ckpt.pth 8
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
        prog='tools/test.py',
        description='Test (and evaluate) a detector, segmentor or '
        'classifier')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        help='dump predictions: a .pkl file (detection, classification) or '
        'a folder of label maps (segmentation)')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='save images with predictions drawn on them; a relative path '
        'is placed under work_dir/<timestamp>/ (segmentation: under '
        'work_dir/, drawings in <dir>/vis_data/vis_image/)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
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


def enable_visualization(cfg, args) -> None:
    """Turn on the toolbox's visualization hook for --show / --show-dir."""
    from efficientvit_mm.runtime import PreflightError
    hooks = cfg.get('default_hooks') or {}
    hook = hooks.get('visualization')
    if hook is None:
        raise PreflightError(
            '--show/--show-dir need a visualization hook in default_hooks, '
            "e.g. visualization=dict(type='DetVisualizationHook')")
    scope = cfg.get('default_scope')
    if scope == 'mmpretrain':
        hook['enable'] = True
        if args.show_dir:
            hook['out_dir'] = args.show_dir
    else:
        hook['draw'] = True
        if args.show_dir:
            if scope == 'mmseg':
                # mmseg's hook has no output folder of its own: the
                # visualizer's backends save the drawings
                cfg.visualizer['save_dir'] = osp.join(cfg.work_dir,
                                                      args.show_dir)
            else:
                hook['test_out_dir'] = args.show_dir
    if scope == 'mmseg':
        hook['interval'] = 1  # mmseg draws every 50th image by default
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time


def add_dump(runner, cfg, out: str) -> None:
    """Save the raw predictions as the toolbox's own test tool does."""
    from efficientvit_mm.runtime import PreflightError
    scope = cfg.get('default_scope')
    if scope == 'mmseg':
        return  # handled through the evaluator before the runner is built
    if not out.endswith(('.pkl', '.pickle')):
        raise PreflightError(f'--out must be a .pkl file, got {out!r}')
    if scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
    else:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=out))


def build_cfg(args):
    from efficientvit_mm.runtime import preflight_test
    from efficientvit_mm.runtime.launch import tool_config
    cfg = tool_config(args.config, args.cfg_options, args.launcher,
                      args.work_dir)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.out and cfg.get('default_scope') == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    preflight_test(cfg, args.config, args.checkpoint)
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    from efficientvit_mm.runtime.launch import run_tool

    def test(runner, cfg):
        if args.out:
            add_dump(runner, cfg, args.out)
        runner.test()

    return run_tool('tools/test.py', lambda: build_cfg(args), test)


if __name__ == '__main__':
    sys.exit(main())
