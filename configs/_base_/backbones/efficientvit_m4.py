# EfficientViT-M4 backbone (stage widths 128, 256, 384) with the official
# ImageNet weights: https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth
_base_ = ['./efficientvit.py']
efficientvit_backbone = dict(
    arch='m4', init_cfg=dict(checkpoint='checkpoints/efficientvit_m4.pth'))
efficientvit_channels = [128, 256, 384]
