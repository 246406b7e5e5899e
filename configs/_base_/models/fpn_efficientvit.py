# Semantic FPN on an EfficientViT backbone (set by the task config, from
# ../backbones/).
#
# Feature pyramid. EfficientViT's stages sit at strides 16, 32 and 64. The
# EfficientViTFPN neck adds two 2x2 stride-2 transposed-conv levels below the
# finest one (16 -> 8 -> 4) and, with num_outs=4, returns the four levels
# at strides 4, 8, 16, 32 that FPNHead reads (in_index 0-3), the levels of
# the classic Semantic FPN. The stride-64 stage is *used*, not pooled away:
# its lateral joins the top-down path, so the stride-32...4 maps all carry
# its context; it only gets no output conv of its own, which no head would
# read.
_base_ = ['mmseg::_base_/models/fpn_r50.py']

model = dict(
    # EncoderDecoder would otherwise hand ResNet's ImageNet URL to the
    # backbone
    pretrained=None,
    # pad to the 512x512 training crops
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(_delete_=True, type='EfficientViT'),
    neck=dict(_delete_=True, type='EfficientViTFPN', out_channels=256,
              start_level=0, num_extra_trans_convs=2, num_outs=4),
    decode_head=dict(in_channels=[256, 256, 256, 256], in_index=[0, 1, 2, 3],
                     feature_strides=[4, 8, 16,
                                      32], channels=128, num_classes=150))
