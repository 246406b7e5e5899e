# EfficientViT-M2 on ImageNet-1k: the M4 recipe with the M2 backbone.
_base_ = ['./efficientvit_m4_in1k.py']

model = dict(backbone=dict(arch='m2'), head=dict(in_channels=224))
