# The shapes demo: RetinaNet-EfficientViT-M0 trained from scratch on the
# synthetic shapes set, on the CPU (2 cores), in a few minutes.
#
#   .venv/bin/python tools/shapes_demo.py det  # writes the data, trains,
#                                              # evaluates, draws predictions
#   python tools/train.py configs/demo/retinanet_efficientvit_m0_shapes.py
#
# The data (`shapes_data` below; data/shapes/) are 192x192 images with 1-6
# circles, squares, triangles and stars, 30-115 pixels across, overlapping,
# on flat, gradient, blotchy or striped backgrounds; the val split is drawn
# from a different seed than the train split.
#
# What differs from the COCO recipe, and why:
# * no ImageNet weights here: the backbone starts from scratch, so its
#   BatchNorms train (norm_eval=False), the lr is 10x higher (AdamW 1e-3,
#   cosine decay) and gradients are clipped for the first, noisy steps;
# * neck and head are 128 channels wide with 2 stacked convs (256 and 4 in
#   the COCO recipe): ~20x cheaper on a CPU and plenty for 4 classes;
# * boxes are regressed with a GIoU loss on decoded boxes, which trains the
#   localisation COCO mAP@[.5:.95] rewards faster than L1 on deltas;
# * 192x192 inputs, 8 images per batch, 10 epochs of 1500 images.
_base_ = ['../retinanet_efficientvit_m0_coco.py']

data_root = 'data/shapes/'
classes = ('circle', 'square', 'triangle', 'star')
metainfo = dict(
    classes=classes, palette=[(220, 20, 60), (0, 130, 230), (250, 170, 30),
                              (20, 180, 60)])
image_size = (192, 192)

# how tools/shapes_demo.py det presents this demo, and where it works
work_dir = 'work_dirs/shapes_demo'
shapes_demo = dict(model='RetinaNet-EfficientViT-M0', metric='COCO bbox mAP',
                   num_vis=8, progress=['Epoch(train)', 'Epoch(val)', 'mAP'])
# what tools/shapes_demo.py det writes to data_root (export_coco arguments)
shapes_data = dict(
    splits=dict(train=1500, val=200), seed=0, classes=list(classes),
    image_size=list(image_size), num_objects=[1, 6], size_range=[0.08, 0.3])

model = dict(
    backbone=dict(init_cfg=None, norm_eval=False), neck=dict(out_channels=128),
    bbox_head=dict(
        num_classes=len(classes), in_channels=128, feat_channels=128,
        stacked_convs=2, reg_decoded_bbox=True,
        loss_bbox=dict(_delete_=True, type='GIoULoss', loss_weight=2.0)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                         'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True, batch_sampler=None,
    dataset=dict(_delete_=True, type='CocoDataset', data_root=data_root,
                 metainfo=metainfo,
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=True,
                                 min_size=8), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=False,
    dataset=dict(_delete_=True, type='CocoDataset', data_root=data_root,
                 metainfo=metainfo, ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric',
                     ann_file=data_root + 'annotations/instances_val.json',
                     metric='bbox')
test_evaluator = val_evaluator

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
optim_wrapper = dict(
    optimizer=dict(lr=1e-3), clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=300),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         T_max=max_epochs, eta_min=1e-5)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
# a fixed seed: the demo gives the same figures run after run (up to the
# non-determinism of multi-threaded CPU kernels)
randomness = dict(seed=0)

default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=5, max_keep_ckpts=1))
log_processor = dict(window_size=20)
# as many threads as the cores other processes leave free, decided every few
# seconds (on a shared CPU, threads waiting for a descheduled partner make
# steps ~10x slower)
custom_hooks = [dict(type='AdaptiveThreadsHook')]
