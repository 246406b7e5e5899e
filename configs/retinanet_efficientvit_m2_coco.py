# RetinaNet with an EfficientViT-M2 backbone on COCO: the M4 recipe with
# the M2 backbone (official ImageNet release: checkpoints/efficientvit_m2.pth,
# https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m2.pth).
_base_ = ['./retinanet_efficientvit_m4_coco.py']

model = dict(
    backbone=dict(
        arch='m2',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/efficientvit_m2.pth')),
    neck=dict(in_channels=[128, 192, 224]))
