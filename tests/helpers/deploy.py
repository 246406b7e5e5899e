"""Small models for the deployment tests: configs shrunk to EfficientViT-M0
with 32-channel necks and heads, randomised weights saved as checkpoints."""
import os

import torch

from efficientvit_mm.apis import build_model
from efficientvit_mm.runtime import load_config
from efficientvit_mm.testing import randomise
from . import ROOT

M0 = {
    'model.backbone.arch': 'm0',
    'model.backbone.init_cfg': None,
    'model.neck.in_channels': [64, 128, 192],
    'model.neck.out_channels': 32,
}
# Mask R-CNN-M0, 32 channels, 4 classes
TINY_MASK_RCNN = dict(
    M0, **{
        'model.rpn_head.in_channels': 32,
        'model.rpn_head.feat_channels': 32,
        'model.roi_head.bbox_roi_extractor.out_channels': 32,
        'model.roi_head.bbox_head.in_channels': 32,
        'model.roi_head.bbox_head.fc_out_channels': 64,
        'model.roi_head.bbox_head.num_classes': 4,
        'model.roi_head.mask_roi_extractor.out_channels': 32,
        'model.roi_head.mask_head.in_channels': 32,
        'model.roi_head.mask_head.conv_out_channels': 32,
        'model.roi_head.mask_head.num_classes': 4,
    })
# UperNet-M0, 32 channels, 5 classes
TINY_UPERNET = dict(
    M0, **{
        'model.decode_head.in_channels': [32] * 4,
        'model.decode_head.channels': 32,
        'model.decode_head.num_classes': 5,
        'model.auxiliary_head.in_channels': 32,
        'model.auxiliary_head.channels': 32,
        'model.auxiliary_head.num_classes': 5,
    })


def config(name: str, options: dict = None):
    """configs/<name> with ``options`` merged."""
    return load_config(os.path.join(ROOT, 'configs', name), options)


def random_model(cfg, checkpoint: str = None, score_bias: float = None,
                 spread_rcnn_scores: bool = False):
    """The model of ``cfg`` with randomised weights (and BN statistics),
    in eval mode, saved to ``checkpoint`` if given.

    Random weights give hundreds of near-equal scores, where which boxes
    survive NMS and the ``max_per_img`` cut is arbitrary. As in a trained
    detector, ``score_bias`` (RetinaNet's classifier bias) lets few
    (anchor, class) pairs pass the score threshold, and
    ``spread_rcnn_scores`` (Mask R-CNN) spreads the second stage's scores
    from the threshold to 1."""
    model = randomise(build_model(cfg)).eval()
    with torch.no_grad():
        if score_bias is not None:
            model.bbox_head.retina_cls.bias.fill_(score_bias)
        if spread_rcnn_scores:
            fc_cls = model.roi_head.bbox_head.fc_cls
            fc_cls.weight.mul_(10.)
            fc_cls.bias[-1] = 3.  # background
    if checkpoint:
        torch.save({'state_dict': model.state_dict()}, checkpoint)
    return model
