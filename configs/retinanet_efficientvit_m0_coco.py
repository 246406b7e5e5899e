# RetinaNet with an EfficientViT-M0 backbone on COCO: the M4 recipe with
# the M0 backbone (official ImageNet release: checkpoints/efficientvit_m0.pth,
# https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m0.pth).
_base_ = ['./retinanet_efficientvit_m4_coco.py']

model = dict(
    backbone=dict(
        arch='m0',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/efficientvit_m0.pth')),
    neck=dict(in_channels=[64, 128, 192]))
