"""The transfer-learning walkthrough on the shapes (tools/transfer_demo.py):

1. pretrain the EfficientViT-M0 classifier on shape crops
   (``configs/demo/efficientvit_m0_shapes_cls.py``, ``tools/train.py``);
2. copy its last checkpoint, as it is, into the work dir under the name
   the detector config gives it (``pretrained`` of
   ``configs/demo/retinanet_efficientvit_m0_shapes_transfer.py``): the
   backbone loader takes its ``backbone.*`` keys and ignores the head;
3. fine-tune RetinaNet-M0 on the shapes scenes from it
   (``init_cfg=dict(type='Pretrained', checkpoint=...)``), and train the
   same detector from scratch on the same schedule
   (``model.backbone.init_cfg=None``);
4. evaluate both on the val split and write ``transfer_result.json``.
"""
import argparse
import json
import os
import os.path as osp
import re
import shutil
import time
from typing import Dict, Optional

from .steps import (DemoError, evaluate, generate_data, last_checkpoint, say,
                    train)

CLS_CONFIG = 'configs/demo/efficientvit_m0_shapes_cls.py'
DET_CONFIG = 'configs/demo/retinanet_efficientvit_m0_shapes_transfer.py'
# training-log lines the walkthrough shows (strings the printed configs
# do not hold)
PROGRESS = ('Epoch(val) [', 'EfficientViT backbone tensors from', 'Error',
            'error:')
_LOADED = re.compile(r'loaded (\d+) EfficientViT backbone tensors from (\S+)')


def backbone_load_line(log_path: str) -> Optional[str]:
    """The backbone loader's 'loaded N EfficientViT backbone tensors'
    message in a training log, or None when the log has none."""
    with open(log_path, errors='replace') as f:
        for line in f:
            if _LOADED.search(line):
                return line.strip().split(' - INFO - ')[-1]
    return None


def _load(path: str, options: Optional[dict] = None):
    from ..runtime.config import load_config
    return load_config(path, options)


def pretrain_classifier(args, work_dir: str) -> Dict[str, object]:
    """Steps 1-2: train the classifier, copy its last checkpoint to the
    detector config's ``pretrained`` path; returns its top-1 and paths."""
    cfg = _load(args.cls_config)
    generate_data('export_crops', cfg.shapes_data, cfg.data_root, False)
    cls_dir = osp.join(work_dir, 'classifier')
    say(f'step 1/4: pretraining the M0 classifier ({args.cls_config})')
    train(args.cls_config, cls_dir, {}, PROGRESS, args.threads)
    checkpoint = last_checkpoint(cls_dir)
    top1 = evaluate(cfg, checkpoint, cls_dir).metrics.get('accuracy/top1')
    say(f'classifier top-1 on its val crops: {top1:.1f} %')
    return dict(checkpoint=checkpoint, top1=top1)


def finetune(args, name: str, work_dir: str, options: dict) -> dict:
    """Train the detector config once (``options`` on top) and evaluate
    its last checkpoint: COCO bbox mAP, AP50, AP75 and the load message."""
    run_dir = osp.join(work_dir, name)
    start = time.time()
    log = train(args.det_config, run_dir, options, PROGRESS, args.threads)
    seconds = round(time.time() - start)
    cfg = _load(args.det_config, options)
    metrics = evaluate(cfg, last_checkpoint(run_dir), run_dir).metrics
    return dict(
        bbox_mAP=metrics.get('coco/bbox_mAP'),
        bbox_mAP_50=metrics.get('coco/bbox_mAP_50'),
        bbox_mAP_75=metrics.get('coco/bbox_mAP_75'), train_seconds=seconds,
        backbone_init=backbone_load_line(log))


def schedule_options(epochs: Optional[int]) -> dict:
    """``--cfg-options`` that set the detector's epochs (warm-up kept)."""
    if not epochs:
        return {}
    return {
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': epochs,
        'param_scheduler.1.end': epochs,
        'param_scheduler.1.T_max': epochs,
        'default_hooks.checkpoint.interval': epochs,
    }


def run_transfer_demo(args: argparse.Namespace) -> dict:
    """The four steps; returns what ``transfer_result.json`` holds."""
    start = time.time()
    det_cfg = _load(args.det_config)
    work_dir = args.work_dir
    os.makedirs(work_dir, exist_ok=True)
    generate_data('export_coco', det_cfg.shapes_data, det_cfg.data_root, False)
    cls = pretrain_classifier(args, work_dir)
    target = osp.join(work_dir, osp.basename(det_cfg.pretrained))
    shutil.copyfile(cls['checkpoint'], target)
    say(f'step 2/4: classifier checkpoint copied to {target}')
    schedule = schedule_options(args.epochs)
    if args.seed is not None:
        schedule['randomness.seed'] = args.seed
    say('step 3/4: RetinaNet-M0 initialised from the classifier')
    pretrained = finetune(
        args, 'pretrained', work_dir,
        dict(schedule, **{'model.backbone.init_cfg.checkpoint': target}))
    if not pretrained['backbone_init']:
        raise DemoError('the fine-tuning log has no backbone-loading line: '
                        'the classifier weights were not loaded')
    say('step 4/4: the same detector from scratch, same schedule')
    scratch = finetune(args, 'scratch', work_dir,
                       dict(schedule, **{'model.backbone.init_cfg': None}))
    epochs = args.epochs or det_cfg.train_cfg.max_epochs
    result = dict(
        classifier=cls, epochs=epochs,
        seed=det_cfg.randomness.seed if args.seed is None else args.seed,
        train_images=det_cfg.shapes_data.splits.train, pretrained=pretrained,
        scratch=scratch, minutes=round((time.time() - start) / 60, 1))
    with open(osp.join(work_dir, 'transfer_result.json'), 'w') as f:
        json.dump(result, f, indent=2)
    say('-' * 60)
    say(f'classifier top-1   {cls["top1"]:.1f} %')
    say(f'backbone init      {pretrained["backbone_init"]}')
    for name, run in (('from classifier', pretrained), ('from scratch',
                                                        scratch)):
        say(f'{name:<18} bbox mAP {run["bbox_mAP"]:.3f} (AP50 '
            f'{run["bbox_mAP_50"]:.3f}, AP75 {run["bbox_mAP_75"]:.3f}), '
            f'{run["train_seconds"]}s of training, {epochs} epochs')
    say(f'result             {osp.join(work_dir, "transfer_result.json")}')
    return result


def build_parser() -> argparse.ArgumentParser:
    from ..runtime import args as cli
    parser = argparse.ArgumentParser(
        prog='tools/transfer_demo.py',
        description='Pretrain the EfficientViT-M0 classifier on shape '
        'crops, fine-tune RetinaNet-M0 on shapes scenes from it, train the '
        'same detector from scratch, and compare the two mAPs.')
    parser.add_argument('--work-dir', default='work_dirs/transfer_demo')
    parser.add_argument('--cls-config', default=CLS_CONFIG)
    parser.add_argument('--det-config', default=DET_CONFIG)
    parser.add_argument(
        '--epochs', type=int,
        help="detector epochs of both runs (default: the config's)")
    parser.add_argument(
        '--seed', type=int,
        help="random seed of both detector runs (default: the config's)")
    cli.add_threads(parser, why=': OMP_NUM_THREADS of the trainings')
    return parser


def transfer_demo_main(argv=None) -> int:
    from ..errors import UserError
    from ..runtime import args as cli
    from ..runtime.errors import print_user_error
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.check_threads(parser, args.threads)
    if args.epochs is not None and args.epochs < 1:
        parser.error('--epochs must be at least 1')
    try:
        run_transfer_demo(args)
    except UserError as err:
        print_user_error(parser.prog, err)
        return 1
    return 0
