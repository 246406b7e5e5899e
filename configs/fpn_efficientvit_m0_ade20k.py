# Semantic FPN with an EfficientViT-M0 backbone on ADE20K, 512x512 crops:
# the recipe of fpn_efficientvit_m4_ade20k.py with the M0 backbone and its
# ImageNet weights (checkpoints/efficientvit_m0.pth, see _base_/backbones/).
#
#   tools/dist_train.sh configs/fpn_efficientvit_m0_ade20k.py 4
_base_ = [
    './_base_/fpn_efficientvit_40k_ade20k.py',
    './_base_/backbones/efficientvit_m0.py',
]
model = dict(backbone={{_base_.efficientvit_backbone}},
             neck=dict(in_channels={{_base_.efficientvit_channels}}))
