# Mask R-CNN on an EfficientViT backbone (set by the task config, from
# ../backbones/) with EfficientViTFPN: two transposed-conv levels (strides 4
# and 8) under the backbone's 16/32/64, the 4..64 pyramid of the RPN and RoI
# heads.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']

model = dict(
    backbone=dict(_delete_=True, type='EfficientViT'),
    neck=dict(_delete_=True, type='EfficientViTFPN', out_channels=256,
              start_level=0, num_extra_trans_convs=2, add_extra_convs=False,
              num_outs=5))
