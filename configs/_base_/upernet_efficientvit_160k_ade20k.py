# UperNet-EfficientViT on ADE20K (150 classes), 512x512 crops, with the Swin
# ADE20K recipe; the task configs (configs/upernet_efficientvit_m*_ade20k.py)
# add the backbone of their arch.
#
# BatchNorm as in fpn_efficientvit_40k_ade20k.py: SyncBN heads on GPUs,
# plain BN in one process or on CPUs (switched by mmengine and
# tools/train.py); the backbone's ImageNet BN statistics stay frozen
# (norm_eval=True).
_base_ = [
    './models/upernet_efficientvit.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    './schedules/adamw_160k_ade20k.py',
]
data_root = 'data/ade/ADEChallengeData2016'
crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size))
# 8 GPUs x 2 images = 16 images per iteration
train_dataloader = dict(batch_size=2, num_workers=4)
val_dataloader = dict(batch_size=1, num_workers=4)
test_dataloader = val_dataloader
