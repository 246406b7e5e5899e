# RetinaNet on an EfficientViT backbone (set by the task config, from
# ../backbones/) with EfficientViTFPN: the backbone's strides 16/32/64, one
# transposed-conv level at stride 8 and one conv level at 128 on the input
# (anchors at strides 8..128, as RetinaNet's usual pyramid).
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py']

model = dict(
    backbone=dict(_delete_=True, type='EfficientViT'),
    neck=dict(_delete_=True, type='EfficientViTFPN', out_channels=256,
              start_level=0, num_extra_trans_convs=1,
              add_extra_convs='on_input', num_outs=5))
