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
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # run from a checkout without `pip install -e`
    sys.path.insert(0, ROOT)


def cpu_is_busy(sample_s: float = 0.5) -> bool:
    """Whether other processes keep at least half of the CPU busy right
    now (from /proc/stat over ``sample_s``; a load average would still
    count the set-up that ran just before)."""
    def snapshot():
        with open('/proc/stat') as f:
            ticks = [float(v) for v in f.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, total

    try:
        idle0, total0 = snapshot()
        time.sleep(sample_s)
        idle1, total1 = snapshot()
    except (OSError, ValueError, IndexError):  # not Linux
        return False
    return 1 - (idle1 - idle0) / max(total1 - total0, 1.) >= 0.5


# On a CPU other jobs keep busy, OpenMP threads that spin while they wait
# are descheduled in turn and a step can become ~10x slower; threads that
# sleep avoid that. On an idle machine spinning is 1.6-2x faster for these
# small models, so it stays the default there. Decided before torch is
# imported, so this process (evaluation, drawing) and the training
# subprocess both get it.
if 'OMP_WAIT_POLICY' not in os.environ and cpu_is_busy():
    os.environ['OMP_WAIT_POLICY'] = 'PASSIVE'

from efficientvit_mm.runtime.config import quiet_import_warnings  # noqa: E402

quiet_import_warnings()

from efficientvit_mm.apis import shapes_demo_main  # noqa: E402

if __name__ == '__main__':
    sys.exit(shapes_demo_main())
