#!/usr/bin/env python
"""Train the model of an OpenMMLab 2.0 config.

One tool for detection (mmdet), segmentation (mmseg) and classification
(mmpretrain) configs: the config's ``default_scope`` picks the toolbox.

    python tools/train.py configs/retinanet_efficientvit_m4_coco.py
    tools/dist_train.sh configs/retinanet_efficientvit_m4_coco.py 8
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def parse_args(argv=None):
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('config', help='the config to train')
    cli.add_work_dir(parser, 'checkpoints and logs')
    parser.add_argument(
        '--amp', action='store_true',
        help='train in mixed precision (fp16 autocast and a dynamic loss '
        'scale; needs a GPU)')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by the real total batch size '
        '(auto_scale_lr.base_batch_size in the config)')
    parser.add_argument(
        '--resume', nargs='?', const='auto', metavar='CHECKPOINT',
        help='pick up an interrupted run where it stopped (the newest '
        'checkpoint of the work dir, or CHECKPOINT)')
    return cli.parse_run_args(parser, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from efficientvit_mm.runtime.launch import run_tool, train_config
    return run_tool('tools/train.py', lambda: train_config(args),
                    lambda runner, cfg: runner.train(), command='train')


if __name__ == '__main__':
    sys.exit(main())
