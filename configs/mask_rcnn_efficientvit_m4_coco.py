# Mask R-CNN with an EfficientViT-M4 backbone on COCO, the paper's recipe
# (EfficientViT, CVPR 2023, Table 7): AdamW 1e-4, 12 epochs, 1333x800,
# 8 GPUs x 2 images. Paper: mask AP 31.0 / 51.2 AP50 / 32.2 AP75 (val2017).
#
#   python tools/train.py configs/mask_rcnn_efficientvit_m4_coco.py
#
# Needs COCO under data/coco/ and checkpoints/efficientvit_m4.pth (see
# configs/retinanet_efficientvit_m4_coco.py).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['efficientvit_mm'], allow_failed_imports=False)

data_root = 'data/coco/'

model = dict(
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
        _delete_=True,
        type='EfficientViTFPN',
        in_channels=[128, 256, 384],
        out_channels=256,
        start_level=0,
        # two transposed-conv levels (strides 4 and 8) under the backbone's
        # 16/32/64: the 4..64 pyramid of the RPN and RoI heads
        num_extra_trans_convs=2,
        add_extra_convs=False,
        num_outs=5))

train_dataloader = dict(batch_size=2, num_workers=2)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={'attention_biases': dict(decay_mult=0.)}))

auto_scale_lr = dict(enable=False, base_batch_size=16)
