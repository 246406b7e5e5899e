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
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
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
        # the released detectors use 7x7 windows in every stage; the
        # ImageNet biases of stage 3 (4x4) are resized when loading
        window_size=7,
        out_indices=(0, 1, 2),
        frozen_stages=-1,
        # as in the official downstream code: every BatchNorm of the
        # backbone stays in eval mode while training
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
        # strides 16/32/64 from the backbone, one transposed-conv level at
        # stride 8 and one conv level at 128: anchors at 8..128 as usual
        num_extra_trans_convs=1,
        add_extra_convs='on_input',
        num_outs=5))

train_dataloader = dict(batch_size=2, num_workers=2)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={'attention_biases': dict(decay_mult=0.)}))

# 12 epochs, lr x0.1 at epochs 8 and 11, 500-iteration linear warm-up from
# 0.001 x lr: the schedule_1x base as is.

# 8 GPUs x 2 images; `--auto-scale-lr` scales lr to the real batch size
auto_scale_lr = dict(enable=False, base_batch_size=16)
