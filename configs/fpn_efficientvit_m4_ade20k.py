# Semantic FPN with an EfficientViT-M4 backbone on ADE20K (150 classes),
# 512x512 crops. The paper has no segmentation results; this is the
# PVT/Swin Semantic-FPN recipe (Kirillov et al. 2019 head, as PVT trained
# it on ADE20K): AdamW lr 2e-4, weight decay 1e-4, poly decay (power 0.9),
# 40k iterations at 32 images per iteration (4 GPUs x 8 images).
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
#
# Feature pyramid. EfficientViT's stages sit at strides 16, 32 and 64. The
# EfficientViTFPN neck adds two 2x2 stride-2 transposed-conv levels below the
# finest one (16 -> 8 -> 4) and, with num_outs=4, returns the four levels
# at strides 4, 8, 16, 32 that FPNHead reads (in_index 0-3), the levels of
# the classic Semantic FPN. The stride-64 stage is *used*, not pooled away:
# its lateral joins the top-down path, so the stride-32...4 maps all carry
# its context; it only gets no output conv of its own, which no head would
# read.
#
# BatchNorm. The head's norm_cfg is SyncBN, for multi-GPU runs. In one
# process mmengine's Runner turns every SyncBN into plain BN by itself; for
# multi-process runs without GPUs (gloo), tools/train.py does the same
# before the model is built (SyncBN needs CUDA). The backbone keeps its
# ImageNet BN statistics frozen (norm_eval=True), as the official
# downstream EfficientViT code does.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['efficientvit_mm'], allow_failed_imports=False)

data_root = 'data/ade/ADEChallengeData2016'
crop_size = (512, 512)
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    # EncoderDecoder would otherwise hand ResNet's ImageNet URL to the
    # backbone
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='EfficientViT',
        arch='m4',
        # 7x7 windows in every stage, as the released downstream models; the
        # ImageNet biases of stage 3 (4x4 windows) are resized on loading
        window_size=7,
        out_indices=(0, 1, 2),
        frozen_stages=-1,
        norm_eval=True,
        with_cp=False,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/efficientvit_m4.pth')),
    neck=dict(
        _delete_=True,
        type='EfficientViTFPN',
        in_channels=[128, 256, 384],
        out_channels=256,
        start_level=0,
        num_extra_trans_convs=2,
        num_outs=4),
    decode_head=dict(
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=128,
        num_classes=150,
        norm_cfg=norm_cfg))

# 4 GPUs x 8 images = 32 images per iteration
train_dataloader = dict(batch_size=8, num_workers=4)
val_dataloader = dict(batch_size=1, num_workers=4)
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
    # the attention biases are a learned table (like Swin's relative
    # position bias): no weight decay
    paramwise_cfg=dict(
        custom_keys={'attention_biases': dict(decay_mult=0.)}))
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        begin=0,
        end=40000,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000,
                 val_interval=4000)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=4000, max_keep_ckpts=3,
                    save_best='mIoU'))
# `--auto-scale-lr` scales lr to the real total batch size
auto_scale_lr = dict(enable=False, base_batch_size=32)
