# RetinaNet with an EfficientViT-M5 backbone on COCO: the M4 recipe with
# the M5 backbone (official ImageNet release: checkpoints/efficientvit_m5.pth,
# https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m5.pth).
_base_ = ['./retinanet_efficientvit_m4_coco.py']

model = dict(
    backbone=dict(
        arch='m5',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/efficientvit_m5.pth')),
    neck=dict(in_channels=[192, 288, 384]))
