# Semantic FPN-EfficientViT on ADE20K (150 classes), 512x512 crops, for
# every arch: the task configs (configs/fpn_efficientvit_m*_ade20k.py) add
# the backbone of their arch.
#
# BatchNorm. The head's norm_cfg is SyncBN, for multi-GPU runs. In one
# process mmengine's Runner turns every SyncBN into plain BN by itself; for
# multi-process runs without GPUs (gloo), tools/train.py does the same
# before the model is built (SyncBN needs CUDA). The backbone keeps its
# ImageNet BN statistics frozen (norm_eval=True), as the official
# downstream EfficientViT code does.
_base_ = [
    './models/fpn_efficientvit.py',
    './datasets/ade20k_512x512.py',
    'mmseg::_base_/default_runtime.py',
    './schedules/adamw_poly_40k_ade20k.py',
]
# 4 GPUs x 8 images = 32 images per iteration
train_dataloader = dict(batch_size=8)
# stop at the first non-finite loss or gradient (docs/troubleshooting.md);
# off with --cfg-options default_hooks.divergence.enabled=False
default_hooks = dict(divergence=dict(type='DivergenceHook'))
