# UperNet (+ auxiliary FCN head) on an EfficientViT backbone (set by the
# task config, from ../backbones/).
#
# UperNet input. UPerHead fuses four levels at strides 4-32 and puts its
# pyramid pooling module on the coarsest. EfficientViT has only three stages
# (strides 16, 32, 64) and nothing finer than 16, so the same EfficientViTFPN
# as in the Semantic FPN config supplies the pyramid: two transposed-conv
# levels below stride 16 (-> 8 -> 4), every level 256 channels, the stride-64
# stage joining the top-down path. UPerHead reads the levels at strides
# 4, 8, 16, 32 (in_index 0-3; PPM on the 16x16 stride-32 map of a 512 crop),
# the auxiliary FCN head the stride-16 level, i.e. the last backbone stage
# at stride 16 after the top-down sum, where Swin's aux head also sits
# (stage 3, stride 16). The head widths are UperNet's usual ones (512 in
# UPerHead, 256 in the FCN head), so results compare with mmseg's other
# UperNet models. The neck outputs only these four levels (num_outs=4): the
# stride-64 stage feeds the top-down path but gets no output conv of its own.
_base_ = ['mmseg::_base_/models/upernet_swin.py']

model = dict(
    pretrained=None,
    # pad to the 512x512 training crops
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(_delete_=True, type='EfficientViT'),
    neck=dict(type='EfficientViTFPN', out_channels=256, start_level=0,
              num_extra_trans_convs=2, num_outs=4),
    decode_head=dict(in_channels=[256, 256, 256, 256], in_index=[0, 1, 2, 3],
                     pool_scales=(1, 2, 3, 6), channels=512, num_classes=150),
    auxiliary_head=dict(in_channels=256, in_index=2, channels=256,
                        num_classes=150))
