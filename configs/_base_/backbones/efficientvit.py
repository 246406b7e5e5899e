# EfficientViT as the backbone of detection and segmentation models, as the
# official downstream code trains it: the three stages at strides 16, 32
# and 64 all returned, 7x7 windows in every stage (the ImageNet models' 4x4
# stage-3 biases are resized bicubically when loading), and every BatchNorm
# of the backbone kept in eval mode while training (norm_eval).
#
# The arch files next to this one set `arch`, the official ImageNet weights
# and `efficientvit_channels`, the stage widths a neck reads. Task configs
# inherit one of them and use both:
#   model = dict(backbone={{_base_.efficientvit_backbone}},
#                neck=dict(in_channels={{_base_.efficientvit_channels}}))
custom_imports = dict(imports=['efficientvit_mm'], allow_failed_imports=False)

efficientvit_backbone = dict(
    type='EfficientViT',
    window_size=7,
    out_indices=(0, 1, 2),
    frozen_stages=-1,
    norm_eval=True,
    with_cp=False,
    # the official ImageNet release, put in checkpoints/ (see the README)
    init_cfg=dict(type='Pretrained'))
