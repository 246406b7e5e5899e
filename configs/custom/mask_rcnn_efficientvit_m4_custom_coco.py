# Mask R-CNN-EfficientViT-M4 on your own COCO-format instance segmentation
# data (boxes and polygon or RLE masks): the paper's COCO recipe
# (../mask_rcnn_efficientvit_m4_coco.py) with your classes and folders.
# docs/custom_dataset.md explains every key.
#
#   data/my_coco/annotations/instances_{train,val}.json   with segmentation
#   data/my_coco/train/*.jpg  data/my_coco/val/*.jpg
#
#   python tools/train.py configs/custom/mask_rcnn_efficientvit_m4_custom_coco.py
_base_ = ['../mask_rcnn_efficientvit_m4_coco.py']

data_root = 'data/my_coco/'
# 1. The class names, spelt as the "categories" of your json name them.
classes = ('circle', 'square', 'triangle', 'star')
metainfo = dict(classes=classes)

model = dict(
    # 2. The ImageNet weights of the backbone.
    backbone=dict(
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/efficientvit_m4.pth')),
    # 3. Both RoI heads predict per class (the RPN is class-agnostic).
    roi_head=dict(
        bbox_head=dict(num_classes=len(classes)),
        mask_head=dict(num_classes=len(classes))))

# 4. Where the images and annotations are.
train_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json', data_prefix=dict(
                     img='train/')))
val_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json', data_prefix=dict(
                     img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
