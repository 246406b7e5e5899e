# EfficientViT-M3 backbone (stage widths 128, 240, 320) with the official
# ImageNet weights: https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m3.pth
_base_ = ['./efficientvit.py']
efficientvit_backbone = dict(
    arch='m3', init_cfg=dict(checkpoint='checkpoints/efficientvit_m3.pth'))
efficientvit_channels = [128, 240, 320]
