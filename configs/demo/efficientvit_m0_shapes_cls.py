# The classification demo: EfficientViT-M0 trained from scratch on crops of
# the synthetic shapes scenes, on the CPU (2 cores, a few minutes), reaching
# >= 90% top-1 on its val split.
#
#   .venv/bin/python tools/demo.py cls     # data, training, top-1
#   python tools/train.py configs/demo/efficientvit_m0_shapes_cls.py
#
# The data (data/shapes_cls/, written by `python -m
# efficientvit_mm.datasets.shapes crops data/shapes_cls --splits
# train=600,val=100`) are mmpretrain CustomDataset folders
# <split>/<class>/*.png: 64x64 crops around each object (circle, square,
# star, triangle), often with parts of its neighbours; the val split has its
# own seed.
#
# What differs from the ImageNet recipe (configs/efficientvit_m4_in1k.py),
# and why: 4 classes at 64x64 (the stage maps are 4x4, 2x2 and 1x1, each
# attended whole); no RandAugment/Mixup/CutMix/erasing (the generator already
# varies colour, size, rotation and clutter, and the run is short); 10
# epochs of 64 images with a 1-epoch warm-up at lr 2e-3.
_base_ = ['../efficientvit_m0_in1k.py']

data_root = 'data/shapes_cls'
num_classes = 4

model = dict(
    head=dict(num_classes=num_classes, topk=(1, )),
    train_cfg=dict(_delete_=True))
data_preprocessor = dict(num_classes=num_classes)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='val',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=2e-3, weight_decay=0.025))
max_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
auto_scale_lr = dict(base_batch_size=64)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1,
                    save_best='auto'))
