# EfficientViT-M2 backbone (stage widths 128, 192, 224) with the official
# ImageNet weights: https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m2.pth
_base_ = ['./efficientvit.py']
efficientvit_backbone = dict(
    arch='m2', init_cfg=dict(checkpoint='checkpoints/efficientvit_m2.pth'))
efficientvit_channels = [128, 192, 224]
