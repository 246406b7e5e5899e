# RetinaNet with an EfficientViT-M4 backbone on COCO, the paper's recipe
# (EfficientViT, CVPR 2023, Table 7): AdamW 1e-4, 12 epochs, 1333x800,
# 8 GPUs x 2 images. Paper: 32.7 AP / 52.2 AP50 / 34.1 AP75 (val2017).
#
#   python tools/train.py configs/retinanet_efficientvit_m4_coco.py
#   tools/dist_train.sh configs/retinanet_efficientvit_m4_coco.py 8
#
# Needs COCO under data/coco/ (or --cfg-options data_root=/path/to/coco/)
# and the ImageNet checkpoint of the official release in checkpoints/:
# https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth
#
# The recipe is in _base_/ (model, schedule); the arch is chosen by the
# backbone base below, which sets the backbone and the neck's input widths
# together: another arch = another _base_/backbones/efficientvit_m*.py.
_base_ = [
    './_base_/retinanet_efficientvit_fpn_1x_coco.py',
    './_base_/backbones/efficientvit_m4.py',
]
model = dict(backbone={{_base_.efficientvit_backbone}},
             neck=dict(in_channels={{_base_.efficientvit_channels}}))
