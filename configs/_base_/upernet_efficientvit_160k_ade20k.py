# UperNet-EfficientViT on ADE20K (150 classes), 512x512 crops, with the Swin
# ADE20K recipe; the task configs (configs/upernet_efficientvit_m*_ade20k.py)
# add the backbone of their arch.
#
# BatchNorm as in fpn_efficientvit_40k_ade20k.py: SyncBN heads on GPUs,
# plain BN in one process or on CPUs (switched by mmengine and
# tools/train.py); the backbone's ImageNet BN statistics stay frozen
# (norm_eval=True).
_base_ = [
    './models/upernet_efficientvit.py',
    './datasets/ade20k_512x512.py',
    'mmseg::_base_/default_runtime.py',
    './schedules/adamw_160k_ade20k.py',
]
# 8 GPUs x 2 images = 16 images per iteration
train_dataloader = dict(batch_size=2)
# stop at the first non-finite loss or gradient (docs/troubleshooting.md);
# off with --cfg-options default_hooks.divergence.enabled=False
default_hooks = dict(divergence=dict(type='DivergenceHook'))
