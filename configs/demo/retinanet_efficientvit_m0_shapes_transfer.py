# Transfer learning on the shapes: RetinaNet-EfficientViT-M0 on the shapes
# scenes, its backbone initialised from the M0 classifier that
# configs/demo/efficientvit_m0_shapes_cls.py trains on crops of other
# shapes scenes (its checkpoint, `backbone.*` keys and all, loads as it is;
# the classifier's 4x4 stage-3 attention biases are resized to the 7x7
# windows here).
#
#   python tools/transfer_demo.py        # both runs and the comparison
#   python tools/train.py configs/demo/retinanet_efficientvit_m0_shapes_transfer.py
#   python tools/train.py configs/demo/retinanet_efficientvit_m0_shapes_transfer.py \
#       --cfg-options model.backbone.init_cfg=None    # the same from scratch
#
# Everything but the initialisation is the detection demo's
# (retinanet_efficientvit_m0_shapes.py), on a shorter schedule: 4 epochs of
# 1500 images instead of 10, so that each run takes a few minutes on a CPU.
# The BatchNorms of the backbone keep training (norm_eval=False): the
# classifier's statistics come from 64x64 crops, not from whole scenes.
_base_ = ['./retinanet_efficientvit_m0_shapes.py']

work_dir = 'work_dirs/transfer_demo/pretrained'
# where tools/transfer_demo.py puts the classifier's last checkpoint
pretrained = 'work_dirs/transfer_demo/cls_m0_shapes.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained',
                      checkpoint=pretrained)))

max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=300),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         T_max=max_epochs, eta_min=1e-5)
]
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
