# UperNet (+ auxiliary FCN head) with an EfficientViT-M4 backbone on ADE20K
# (150 classes), 512x512 crops, with the Swin ADE20K recipe: AdamW lr 6e-5,
# betas (0.9, 0.999), weight decay 0.01, 1500-iteration linear warm-up then
# linear (poly, power 1) decay to 0, 160k iterations at 16 images per
# iteration (8 GPUs x 2 images). The pyramid UPerHead reads is described in
# _base_/models/upernet_efficientvit.py.
#
#   tools/dist_train.sh configs/upernet_efficientvit_m4_ade20k.py 8
#   python tools/test.py configs/upernet_efficientvit_m4_ade20k.py CKPT
#
# Needs ADE20K under data/ade/ADEChallengeData2016 (mmseg's layout) or
# `--cfg-options data_root=...`, and checkpoints/efficientvit_m4.pth from
# https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth
_base_ = [
    './_base_/upernet_efficientvit_160k_ade20k.py',
    './_base_/backbones/efficientvit_m4.py',
]
model = dict(backbone={{_base_.efficientvit_backbone}},
             neck=dict(in_channels={{_base_.efficientvit_channels}}))
