# Mask R-CNN with an EfficientViT-M4 backbone on COCO, the paper's recipe
# (EfficientViT, CVPR 2023, Table 7): AdamW 1e-4, 12 epochs, 1333x800,
# 8 GPUs x 2 images. Paper: mask AP 31.0 / 51.2 AP50 / 32.2 AP75 (val2017).
#
#   python tools/train.py configs/mask_rcnn_efficientvit_m4_coco.py
#
# Needs COCO under data/coco/ and checkpoints/efficientvit_m4.pth (see
# configs/retinanet_efficientvit_m4_coco.py).
_base_ = [
    './_base_/mask_rcnn_efficientvit_fpn_1x_coco.py',
    './_base_/backbones/efficientvit_m4.py',
]
model = dict(backbone={{_base_.efficientvit_backbone}},
             neck=dict(in_channels={{_base_.efficientvit_channels}}))
