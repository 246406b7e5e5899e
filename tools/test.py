#!/usr/bin/env python
"""Evaluate a checkpoint on the test split of an OpenMMLab 2.0 config.

One tool for detection (mmdet), segmentation (mmseg) and classification
(mmpretrain) configs: the config's ``default_scope`` picks the toolbox.

    python tools/test.py configs/retinanet_efficientvit_m4_coco.py ckpt.pth
    tools/dist_test.sh configs/retinanet_efficientvit_m4_coco.py ckpt.pth 8
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('config', help='the config the checkpoint was '
                        'trained with')
    parser.add_argument('checkpoint', help='the weights to evaluate')
    cli.add_work_dir(parser, 'the metrics and logs of this run')
    parser.add_argument(
        '--out', help='also keep the raw predictions: a .pkl file (detection, '
        'classification) or a folder of label maps (segmentation)')
    parser.add_argument(
        '--show', action='store_true',
        help='display each image with its predictions in a window')
    parser.add_argument(
        '--show-dir',
        help='draw the predictions on every test image into this folder '
        '(relative folders go into the run\'s work_dir/<timestamp>/; '
        'segmentation: work_dir/<dir>/vis_data/vis_image/)')
    parser.add_argument(
        '--deploy', choices=['fp32', 'bf16'],
        help='evaluate the inference structure: every BatchNorm folded '
        '(fp32), and with bf16 the dense parts in bfloat16 (for CPUs with '
        'bf16 matrix units)')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='with --show: seconds each image stays on screen')
    return cli.parse_run_args(parser, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from efficientvit_mm.runtime.launch import (add_prediction_dump, run_tool,
                                                test_config)

    def test(runner, cfg):
        if args.out:
            add_prediction_dump(runner, cfg, args.out)
        runner.test()

    return run_tool('tools/test.py', lambda: test_config(args), test)


if __name__ == '__main__':
    sys.exit(main())
