"""Tiny classifiers of the families the analysis tools cover (EfficientViT,
mmpretrain's Swin, ViT/DeiT, ResNet, ConvNeXt), as model dicts and as
config files, for tests on 32x32 or 64x64 inputs."""
import os

NUM_CLASSES = 4
# the classification config whose data (shape crops) the studies train on
SHAPES_CLS_CONFIG = 'configs/demo/efficientvit_m0_shapes_cls.py'

BACKBONES = {
    'efficientvit':
    dict(
        type='EfficientViT',
        arch=dict(embed_dims=[16, 32, 48], depths=[1, 1,
                                                   1], num_heads=[2, 2, 2],
                  kernels=[3, 3, 3, 3], key_dim=4), out_indices=(2, )),
    'swin':
    dict(type='mmpretrain.SwinTransformer',
         arch=dict(embed_dims=16, depths=[2, 2], num_heads=[2, 4]),
         img_size=32, window_size=4, out_indices=(1, ), pad_small_map=True),
    'vit':
    dict(
        type='mmpretrain.VisionTransformer',
        arch=dict(embed_dims=16, num_layers=3, num_heads=2,
                  feedforward_channels=32), img_size=32, patch_size=8),
    'resnet':
    dict(type='mmpretrain.ResNet', depth=18, base_channels=8, stem_channels=8,
         out_indices=(3, )),
    'convnext':
    dict(type='mmpretrain.ConvNeXt', arch=dict(depths=[1, 1, 1, 1],
                                               channels=[8, 16, 24, 32])),
}
HEAD_IN = dict(efficientvit=48, swin=32, vit=16, resnet=64, convnext=32)


def tiny_classifier_cfg(family: str) -> dict:
    """An mmpretrain ImageClassifier dict with the tiny ``family``
    backbone and a 4-class head."""
    # every type scoped: built right whatever default scope an earlier test
    # of the process left (an mmdet one would not know these heads)
    head = dict(type='mmpretrain.LinearClsHead', num_classes=NUM_CLASSES,
                in_channels=HEAD_IN[family],
                loss=dict(type='mmpretrain.CrossEntropyLoss'))
    if family == 'vit':
        head['type'] = 'mmpretrain.VisionTransformerClsHead'
    # ViT reads the class token, ConvNeXt pools before its last norm
    neck = None if family in ('vit', 'convnext') else dict(
        type='mmpretrain.GlobalAveragePooling')
    return dict(
        type='mmpretrain.ImageClassifier', backbone=dict(BACKBONES[family]),
        neck=neck, head=head,
        data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor',
                               num_classes=NUM_CLASSES))


def build_tiny(family: str):
    """The tiny classifier of ``family``, weights initialised, eval mode."""
    from mmengine.registry import MODELS

    from efficientvit_mm.analysis.training import init_weights
    return init_weights(MODELS.build(tiny_classifier_cfg(family))).eval()


def write_tiny_config(folder: str, family: str) -> str:
    """A config file of the tiny ``family`` classifier (mmpretrain scope),
    for the tools; returns its path."""
    path = os.path.join(str(folder), f'tiny_{family}.py')
    with open(path, 'w') as f:
        f.write("default_scope = 'mmpretrain'\n"
                "custom_imports = dict(imports=['efficientvit_mm'], "
                "allow_failed_imports=False)\n"
                f'model = {tiny_classifier_cfg(family)!r}\n')
    return path
