# EfficientViT-M3 on ImageNet-1k: the M4 recipe with the M3 backbone.
_base_ = ['./efficientvit_m4_in1k.py']

model = dict(backbone=dict(arch='m3'), head=dict(in_channels=320))
