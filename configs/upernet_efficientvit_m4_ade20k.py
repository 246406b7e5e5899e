# UperNet (+ auxiliary FCN head) with an EfficientViT-M4 backbone on ADE20K
# (150 classes), 512x512 crops, with the Swin ADE20K recipe: AdamW lr 6e-5,
# betas (0.9, 0.999), weight decay 0.01, 1500-iteration linear warm-up then
# linear (poly, power 1) decay to 0, 160k iterations at 16 images per
# iteration (8 GPUs x 2 images).
#
#   tools/dist_train.sh configs/upernet_efficientvit_m4_ade20k.py 8
#   python tools/test.py configs/upernet_efficientvit_m4_ade20k.py CKPT
#
# Needs ADE20K under data/ade/ADEChallengeData2016 (mmseg's layout) or
# `--cfg-options data_root=...`, and checkpoints/efficientvit_m4.pth from
# https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth
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
#
# BatchNorm as in fpn_efficientvit_m4_ade20k.py: SyncBN heads on GPUs, plain
# BN in one process or on CPUs (switched by mmengine and tools/train.py);
# the backbone's ImageNet BN statistics stay frozen (norm_eval=True).
_base_ = [
    'mmseg::_base_/models/upernet_swin.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['efficientvit_mm'], allow_failed_imports=False)

data_root = 'data/ade/ADEChallengeData2016'
crop_size = (512, 512)
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='EfficientViT',
        arch='m4',
        window_size=7,
        out_indices=(0, 1, 2),
        frozen_stages=-1,
        norm_eval=True,
        with_cp=False,
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/efficientvit_m4.pth')),
    neck=dict(
        type='EfficientViTFPN',
        in_channels=[128, 256, 384],
        out_channels=256,
        start_level=0,
        num_extra_trans_convs=2,
        num_outs=4),
    decode_head=dict(
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        num_classes=150,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=256,
        in_index=2,
        channels=256,
        num_classes=150,
        norm_cfg=norm_cfg))

# 8 GPUs x 2 images = 16 images per iteration
train_dataloader = dict(batch_size=2, num_workers=4)
val_dataloader = dict(batch_size=1, num_workers=4)
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    # Swin spares its position-bias table and norm layers from weight decay;
    # EfficientViT's counterparts are the attention-bias table and the BNs
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        custom_keys={'attention_biases': dict(decay_mult=0.)}))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.0,
        begin=1500,
        end=160000,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000,
                 val_interval=16000)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=16000, max_keep_ckpts=3,
                    save_best='mIoU'))
auto_scale_lr = dict(enable=False, base_batch_size=16)
