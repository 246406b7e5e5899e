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
``efficientvit_mm/apis/shapes_demo.py``; ``--help`` lists the options.
"""
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # run from a checkout without `pip install -e`
    sys.path.insert(0, ROOT)

# OpenMP threads that sleep instead of spinning while they wait (see
# efficientvit_mm.apis.shapes_demo.train); set before torch is imported, so
# evaluation and drawing in this process get it too.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

from efficientvit_mm.runtime.config import quiet_import_warnings  # noqa: E402

quiet_import_warnings()

from efficientvit_mm.apis import shapes_demo_main  # noqa: E402

if __name__ == '__main__':
    sys.exit(shapes_demo_main())
