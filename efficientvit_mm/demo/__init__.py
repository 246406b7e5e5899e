"""The shapes demos: EfficientViT-M0 learns the synthetic shapes on the CPU,
for detection, segmentation or classification, in one command.

    .venv/bin/python tools/shapes_demo.py [det|seg|cls] [options]

Every demo runs the same four steps; only small parts differ per task (the
:class:`ShapesDemo` entries of :data:`SHAPES_DEMOS`):

1. **data** -- writes the shapes set the config's ``shapes_data`` describes
   (the arguments of ``efficientvit_mm.datasets.export_coco`` /
   ``export_ade`` / ``export_crops``) to its ``data_root``. A stamp,
   ``<data_root>/shapes_data.json``, records the settings: the data are
   reused when they match, and written afresh (nothing stale left behind)
   when they do not;
2. **training** -- ``tools/train.py`` in a subprocess, from scratch, with
   the lines worth seeing printed as it goes and the whole output in
   ``<work_dir>/train_stdout.log``;
3. **evaluation** -- the last checkpoint on the held-out val split (COCO bbox
   mAP, mIoU and per-class IoU, or top-1), through an mmengine ``Runner``
   whose output goes to ``<work_dir>/eval/eval.log``;
4. **drawing** -- ``<work_dir>/predictions.png``, predictions on val images
   (messages of the toolboxes in ``<work_dir>/draw.log``);

then ``<work_dir>/demo_result.json`` (metrics, wall time per step, paths).

The steps are in :mod:`.steps`, the drawing in :mod:`.render`, the three
demos in :mod:`.tasks` and the command line in :mod:`.cli`.
"""
from .cli import run_shapes_demo, shapes_demo_main
from .steps import DemoError
from .tasks import SHAPES_DEMOS, ShapesDemo

__all__ = [
    'SHAPES_DEMOS', 'DemoError', 'ShapesDemo', 'run_shapes_demo',
    'shapes_demo_main'
]
