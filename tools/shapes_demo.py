#!/usr/bin/env python
"""The shapes demos: EfficientViT-M0 learns synthetic shapes on the CPU, with
no dataset, no pretrained weights and no GPU.

    tools/setup_env.sh && .venv/bin/python tools/shapes_demo.py det
    .venv/bin/python tools/shapes_demo.py seg
    .venv/bin/python tools/shapes_demo.py cls

det: RetinaNet, COCO bbox mAP
(configs/demo/retinanet_efficientvit_m0_shapes.py); seg: Semantic FPN, mIoU
and per-class IoU (configs/demo/fpn_efficientvit_m0_shapes_seg.py); cls:
classifier on object crops, top-1 (configs/demo/efficientvit_m0_shapes_cls.py).
Each writes its data (the config's ``shapes_data``), trains through
tools/train.py, evaluates, saves ``<work_dir>/predictions.png`` and
``<work_dir>/demo_result.json``. The steps live in
``efficientvit_mm/demo/``; ``--help`` lists the options.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not

if __name__ == '__main__':
    from efficientvit_mm.demo import shapes_demo_main
    sys.exit(shapes_demo_main())
