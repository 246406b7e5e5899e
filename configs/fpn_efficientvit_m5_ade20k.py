# Semantic FPN with an EfficientViT-M5 backbone on ADE20K, 512x512 crops.
# Everything but the backbone (and the neck's input widths) is the M4 recipe:
# see fpn_efficientvit_m4_ade20k.py for the recipe, the feature pyramid and
# the BatchNorm handling.
#
#   tools/dist_train.sh configs/fpn_efficientvit_m5_ade20k.py 4
#
# ImageNet checkpoint of the official release, into checkpoints/:
# https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m5.pth
_base_ = ['./fpn_efficientvit_m4_ade20k.py']

model = dict(
    backbone=dict(
        arch='m5',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/efficientvit_m5.pth')),
    # stage widths of M5 at strides 16, 32, 64
    neck=dict(in_channels=[192, 288, 384]))
