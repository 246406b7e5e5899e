# EfficientViT-M4 image classifier fine-tuned on your own images in class
# folders, from the official ImageNet weights: the ImageNet recipe
# (../efficientvit_m4_in1k.py) with your classes and folders and a short
# fine-tuning schedule (a starting point, not tuned).
# docs/custom_dataset.md explains every key.
#
#   data/my_images/train/<class name>/*.jpg   (or .png ...)
#   data/my_images/val/<class name>/*.jpg
#
#   python tools/train.py configs/custom/efficientvit_m4_custom_folders.py
_base_ = ['../efficientvit_m4_in1k.py']

# 1. The class names. Labels follow the folder names in sorted order,
#    whatever order is written here: list them sorted.
classes = ('circle', 'square', 'star', 'triangle')
num_classes = len(classes)

# 2. The ImageNet weights: the backbone's (the 1000-class head of the
#    release is left out; the new head starts from random weights).
pretrained = 'checkpoints/efficientvit_m4.pth'
# 3. One score per class (top-k accuracies need k <= num_classes); Mixup
#    and CutMix make their one-hot targets with data_preprocessor's count.
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(num_classes=num_classes, topk=(1, )))
data_preprocessor = dict(num_classes=num_classes)

# 4. Where the class folders are.
dataset = dict(type='CustomDataset', data_root='data/my_images',
               metainfo=dict(classes=classes))
train_dataloader = dict(
    batch_size=64, dataset=dict(_delete_=True, data_prefix='train',
                                pipeline={{_base_.train_pipeline}}, **dataset))
val_dataloader = dict(
    batch_size=64, dataset=dict(_delete_=True, data_prefix='val',
                                pipeline={{_base_.test_pipeline}}, **dataset))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

# Fine-tuning: 30 epochs, 1 of warm-up, AdamW 1e-4 at a batch of 64.
max_epochs = 30
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=64)
