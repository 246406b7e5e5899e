# RetinaNet with an EfficientViT-M3 backbone on COCO: the recipe of
# retinanet_efficientvit_m4_coco.py with the M3 backbone and its ImageNet
# weights (checkpoints/efficientvit_m3.pth, see _base_/backbones/).
_base_ = [
    './_base_/retinanet_efficientvit_fpn_1x_coco.py',
    './_base_/backbones/efficientvit_m3.py',
]
model = dict(backbone={{_base_.efficientvit_backbone}},
             neck=dict(in_channels={{_base_.efficientvit_channels}}))
