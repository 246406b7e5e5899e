# Semantic FPN with an EfficientViT-M4 backbone on ADE20K (150 classes),
# 512x512 crops. The paper has no segmentation results; this is the
# PVT/Swin Semantic-FPN recipe (Kirillov et al. 2019 head, as PVT trained
# it on ADE20K): AdamW lr 2e-4, weight decay 1e-4, poly decay (power 0.9),
# 40k iterations at 32 images per iteration (4 GPUs x 8 images). The
# pyramid and the BatchNorm handling are described in _base_/.
#
#   tools/dist_train.sh configs/fpn_efficientvit_m4_ade20k.py 4
#   python tools/train.py configs/fpn_efficientvit_m4_ade20k.py   # 1 process
#   python tools/test.py configs/fpn_efficientvit_m4_ade20k.py CKPT
#
# Needs ADE20K (ADEChallengeData2016) under data/ade/ (mmseg's layout:
# images/{training,validation}/*.jpg, annotations/{training,validation}/*.png)
# or `--cfg-options data_root=/path/to/ADEChallengeData2016`, and the
# ImageNet checkpoint of the official release in checkpoints/:
# https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth
_base_ = [
    './_base_/fpn_efficientvit_40k_ade20k.py',
    './_base_/backbones/efficientvit_m4.py',
]
model = dict(backbone={{_base_.efficientvit_backbone}},
             neck=dict(in_channels={{_base_.efficientvit_channels}}))
