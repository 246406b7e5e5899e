# The segmentation demo: Semantic FPN with EfficientViT-M0, trained from
# scratch on the synthetic shapes set, on the CPU, in about 10 minutes
# (2 cores), reaching mIoU >= 60 on its val split.
#
#   .venv/bin/python tools/shapes_demo.py seg   # data, training, mIoU, PNG
#   python tools/train.py configs/demo/fpn_efficientvit_m0_shapes_seg.py
#
# The data (data/shapes_ade/, written by tools/shapes_demo.py seg with the
# `shapes_data` settings below) are ADE20K-style pairs: images/<split>/*.jpg
# and annotations/<split>/*.png label maps, 0 = background, 1-4 = circle,
# square, triangle, star; 1-4 overlapping shapes of random size, rotation
# and colour on varied backgrounds; the validation split has its own seed.
#
# What differs from the ADE20K recipe, and why:
# * 5 classes, background included (Pascal VOC style): reduce_zero_label is
#   off, mIoU averages the 5 IoUs;
# * no ImageNet weights exist here: the backbone starts from scratch, so its
#   BatchNorms train (norm_eval=False) and the lr is 10x higher with a short
#   warm-up;
# * neck and head are 32 channels wide (256 and 128 in the recipe): the
#   stride-4 maps dominate the cost on a CPU, and 32 channels learn these 5
#   classes as fast per iteration as 64 did, 30% cheaper;
# * 128x128 images with 1-4 shapes of 15-38 px radius (with the
#   generator's default 8-32 px the smallest triangles and stars are 1-2
#   stride-16 tokens wide, and learning was about twice as slow), 16 per
#   iteration, flips only (the generator already varies size, rotation,
#   colour and background);
# * 1600 iterations (8.5 passes over 3000 images), 100 of warm-up, poly
#   decay.
_base_ = ['../fpn_efficientvit_m0_ade20k.py']

data_root = 'data/shapes_ade'
classes = ('background', 'circle', 'square', 'triangle', 'star')
metainfo = dict(
    classes=classes, palette=[[0, 0, 0], [220, 20, 60], [0, 130, 230],
                              [250, 170, 30], [20, 180, 60]])
image_size = (128, 128)
# how tools/shapes_demo.py seg presents this demo, and where it works
work_dir = 'work_dirs/seg_shapes_demo'
shapes_demo = dict(model='Semantic FPN-EfficientViT-M0', metric='mIoU',
                   num_vis=6, progress=['Iter(train)', 'mIoU:'])
# what tools/shapes_demo.py seg writes to data_root (export_ade arguments)
shapes_data = dict(
    splits=dict(training=3000, validation=200), seed=0, image_size=image_size,
    classes=classes[1:], num_objects=(1, 4), size_range=(0.12, 0.3))
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    data_preprocessor=dict(size=image_size),
    backbone=dict(init_cfg=None, norm_eval=False), neck=dict(out_channels=32),
    decode_head=dict(in_channels=[32, 32, 32,
                                  32], channels=32, dropout_ratio=0.,
                     num_classes=len(classes), norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs')
]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
               img_suffix='.jpg', seg_map_suffix='.png',
               reduce_zero_label=False)
train_dataloader = dict(
    batch_size=16, num_workers=1, persistent_workers=True, dataset=dict(
        _delete_=True, data_prefix=dict(img_path='images/training',
                                        seg_map_path='annotations/training'),
        pipeline=train_pipeline, **dataset))
val_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True, dataset=dict(
        _delete_=True, data_prefix=dict(img_path='images/validation',
                                        seg_map_path='annotations/validation'),
        pipeline=test_pipeline, test_mode=True, **dataset))
test_dataloader = val_dataloader

max_iters = 1600
optim_wrapper = dict(optimizer=dict(lr=2e-3, weight_decay=1e-2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', power=0.9, eta_min=1e-5, by_epoch=False, begin=100,
         end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None))
log_processor = dict(window_size=50)
auto_scale_lr = dict(enable=False, base_batch_size=16)
randomness = dict(seed=0)
# as many threads as the cores other processes leave free, decided every few
# seconds (on a shared CPU, threads waiting for a descheduled partner make
# steps ~10x slower)
custom_hooks = [dict(type='AdaptiveThreadsHook')]
