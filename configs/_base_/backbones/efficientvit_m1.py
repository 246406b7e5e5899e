# EfficientViT-M1 backbone (stage widths 128, 144, 192) with the official
# ImageNet weights: https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m1.pth
_base_ = ['./efficientvit.py']
efficientvit_backbone = dict(
    arch='m1', init_cfg=dict(checkpoint='checkpoints/efficientvit_m1.pth'))
efficientvit_channels = [128, 144, 192]
