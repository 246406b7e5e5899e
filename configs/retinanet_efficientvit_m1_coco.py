# RetinaNet with an EfficientViT-M1 backbone on COCO: the M4 recipe with
# the M1 backbone (official ImageNet release: checkpoints/efficientvit_m1.pth,
# https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m1.pth).
_base_ = ['./retinanet_efficientvit_m4_coco.py']

model = dict(
    backbone=dict(
        arch='m1',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/efficientvit_m1.pth')),
    neck=dict(in_channels=[128, 144, 192]))
