# EfficientViT-M5 backbone (stage widths 192, 288, 384) with the official
# ImageNet weights: https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m5.pth
_base_ = ['./efficientvit.py']
efficientvit_backbone = dict(
    arch='m5', init_cfg=dict(checkpoint='checkpoints/efficientvit_m5.pth'))
efficientvit_channels = [192, 288, 384]
