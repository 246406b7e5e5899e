# The classification demo: EfficientViT-M0 trained from scratch on crops of
# the synthetic shapes scenes, on the CPU: 95.2% top-1 on its val split in
# about a minute on 2 idle cores (the goal is >= 90% within 5 minutes).
#
#   .venv/bin/python tools/shapes_demo.py cls   # data, training, top-1, PNG
#   python tools/train.py configs/demo/efficientvit_m0_shapes_cls.py
#
# The data (data/shapes_cls/, written by tools/shapes_demo.py cls with the
# `shapes_data` settings below) are mmpretrain CustomDataset folders
# <split>/<class>/*.png: 64x64 crops around each object (circle, square,
# star, triangle), often with parts of its neighbours, from 600 train and 100
# val scenes of 256x256 (about 2100 and 350 crops); the val split has its
# own seed.
#
# What differs from the ImageNet recipe (configs/efficientvit_m4_in1k.py),
# and why: 4 classes at 64x64 (the stage maps are 4x4, 2x2 and 1x1, each
# attended whole); no RandAugment/Mixup/CutMix/erasing (the generator already
# varies colour, size, rotation and clutter, and the run is short); 10
# epochs of 64 images with a 1-epoch warm-up at lr 2e-3.
_base_ = ['../efficientvit_m0_in1k.py']

data_root = 'data/shapes_cls'
classes = ('circle', 'square', 'triangle', 'star')
num_classes = len(classes)
# how tools/shapes_demo.py cls presents this demo, and where it works
work_dir = 'work_dirs/cls_shapes_demo'
shapes_demo = dict(model='EfficientViT-M0 classifier', metric='top-1 accuracy',
                   num_vis=32, progress=['Epoch(train)', 'Epoch(val)', 'top1'])
# what tools/shapes_demo.py cls writes to data_root (export_crops arguments;
# `splits` counts scenes, each giving one crop per object)
shapes_data = dict(
    splits=dict(train=600, val=100), seed=0, crop_size=64, margin=0.15,
    min_side=8, classes=list(classes), image_size=256, num_objects=[1, 6],
    size_range=[0.06, 0.25])

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
dataset = dict(type='CustomDataset', data_root=data_root)
loader = dict(batch_size=64, num_workers=1, persistent_workers=True)
train_dataloader = dict(
    dataset=dict(_delete_=True, data_prefix='train', pipeline=train_pipeline,
                 **dataset), **loader)
val_dataloader = dict(
    dataset=dict(_delete_=True, data_prefix='val', pipeline=test_pipeline,
                 **dataset), **loader)
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

# fixed seed: the demo's figure is reproducible run to run
randomness = dict(seed=0)
# as many threads as the cores other processes leave free, decided every few
# seconds (on a shared CPU, threads waiting for a descheduled partner make
# steps ~10x slower)
custom_hooks = [dict(type='AdaptiveThreadsHook')]
