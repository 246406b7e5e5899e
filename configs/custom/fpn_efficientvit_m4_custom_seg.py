# Semantic FPN-EfficientViT-M4 on your own semantic segmentation data in the
# ADE20K layout: the ADE20K recipe (../fpn_efficientvit_m4_ade20k.py) with
# your classes and folders. docs/custom_dataset.md explains every key.
#
#   data/my_seg/images/{training,validation}/*.jpg
#   data/my_seg/annotations/{training,validation}/*.png   one uint8 label
#       per pixel, same file stem as the image: 0 = background/unlabelled,
#       1..N = the classes below
#
#   python tools/train.py configs/custom/fpn_efficientvit_m4_custom_seg.py
_base_ = ['../fpn_efficientvit_m4_ade20k.py']

data_root = 'data/my_seg'
# 1. The classes of the label values 1..N. With reduce_zero_label=True
#    (ADE20K's convention) label 0 is ignored and value k becomes class
#    k - 1. If 0 is a class of its own (background), list it first here and
#    set reduce_zero_label=False in the dataset *and* in both
#    LoadAnnotations steps (mmseg checks that they agree).
classes = ('circle', 'square', 'triangle', 'star')
palette = [[220, 20, 60], [0, 130, 230], [250, 170, 30], [20, 180, 60]]
metainfo = dict(classes=classes, palette=palette)
reduce_zero_label = True

model = dict(
    # 2. The ImageNet weights of the backbone.
    backbone=dict(
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/efficientvit_m4.pth')),
    # 3. One output map per class (UperNet: auxiliary_head too).
    decode_head=dict(num_classes=len(classes)))

# 4. The dataset: BaseSegDataset takes any class list (ADE20KDataset only
#    subsets of ADE's 150), and where the images and label maps are.
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
               img_suffix='.jpg', seg_map_suffix='.png',
               reduce_zero_label=reduce_zero_label)
train_dataloader = dict(
    dataset=dict(
        data_prefix=dict(img_path='images/training',
                         seg_map_path='annotations/training'), **dataset))
val_dataloader = dict(
    dataset=dict(
        data_prefix=dict(img_path='images/validation',
                         seg_map_path='annotations/validation'), **dataset))
test_dataloader = val_dataloader
