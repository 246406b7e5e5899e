# EfficientViT-M0 backbone (stage widths 64, 128, 192) with the official
# ImageNet weights: https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m0.pth
_base_ = ['./efficientvit.py']
efficientvit_backbone = dict(
    arch='m0', init_cfg=dict(checkpoint='checkpoints/efficientvit_m0.pth'))
efficientvit_channels = [64, 128, 192]
