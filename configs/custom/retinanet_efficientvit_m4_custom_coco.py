# RetinaNet-EfficientViT-M4 on your own COCO-format detection data: the
# paper's COCO recipe (../retinanet_efficientvit_m4_coco.py) with your
# classes and folders. docs/custom_dataset.md explains every key.
#
#   data/my_coco/annotations/instances_train.json   COCO json: images,
#   data/my_coco/annotations/instances_val.json     annotations, categories
#   data/my_coco/train/*.jpg  data/my_coco/val/*.jpg
#
#   python tools/train.py configs/custom/retinanet_efficientvit_m4_custom_coco.py
#   mim train mmdet configs/custom/retinanet_efficientvit_m4_custom_coco.py
_base_ = ['../retinanet_efficientvit_m4_coco.py']

data_root = 'data/my_coco/'
# 1. The class names, spelt as the "categories" of your json name them. A
#    dataset without them keeps COCO's 80 names, finds none of yours, and
#    every image is filtered out.
classes = ('circle', 'square', 'triangle', 'star')
metainfo = dict(classes=classes)

model = dict(
    # 2. The ImageNet weights of the backbone (the official release file;
    #    set checkpoint to your own classifier checkpoint to start from it).
    backbone=dict(
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/efficientvit_m4.pth')),
    # 3. One score per class.
    bbox_head=dict(num_classes=len(classes)))

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
