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

# 1. The class names, spelt as the "categories" of your json name them,
#    and where the dataset is.
classes = ('circle', 'square', 'triangle', 'star')
data_root = 'data/my_coco/'
dataset = dict(data_root=data_root, metainfo=dict(classes=classes))

# 2. The ImageNet weights of the backbone: the task config's
#    (checkpoints/efficientvit_m4.pth, the official release file).
# 3. Both RoI heads predict per class (the RPN is class-agnostic).
model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=len(classes)), mask_head=dict(
            num_classes=len(classes))))

# 4. The annotation files and image folders of each split.
train_dataloader = dict(
    dataset=dict(ann_file='annotations/instances_train.json', data_prefix=dict(
        img='train/'), **dataset))
val_dataloader = dict(
    dataset=dict(ann_file='annotations/instances_val.json', data_prefix=dict(
        img='val/'), **dataset))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
