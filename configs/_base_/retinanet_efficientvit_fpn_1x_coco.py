# RetinaNet-EfficientViT on COCO with the paper's recipe, for every arch:
# the task configs (configs/retinanet_efficientvit_m*_coco.py) add the
# backbone of their arch.
_base_ = [
    './models/retinanet_efficientvit_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    './schedules/adamw_1x_coco.py',
    'mmdet::_base_/default_runtime.py',
]
data_root = 'data/coco/'
# 8 GPUs x 2 images
train_dataloader = dict(batch_size=2, num_workers=2)
# stop at the first non-finite loss or gradient (docs/troubleshooting.md);
# off with --cfg-options default_hooks.divergence.enabled=False
default_hooks = dict(divergence=dict(type='DivergenceHook'))
