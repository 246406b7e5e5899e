# EfficientViT-M0 on ImageNet-1k: the M4 recipe with the M0 backbone.
_base_ = ['./efficientvit_m4_in1k.py']

model = dict(backbone=dict(arch='m0'), head=dict(in_channels=192))
