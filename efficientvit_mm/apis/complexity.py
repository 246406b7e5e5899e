"""Parameters and FLOPs (multiply-adds) of any EfficientViT model."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config

from .config import build_model, task_of

DEFAULT_SHAPES = {
    'classification': (224, 224),
    'detection': (800, 1333),
    'segmentation': (512, 512),
}


def data_samples(task: str, shape: Sequence[int]):
    """One data sample with the meta information test-mode forwards read."""
    h, w = shape
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                batch_input_shape=(h, w), scale_factor=(1., 1.))
    if task == 'detection':
        from mmdet.structures import DetDataSample
        sample = DetDataSample()
    elif task == 'segmentation':
        from mmseg.structures import SegDataSample
        sample = SegDataSample()
    else:
        return None
    sample.set_metainfo(meta)
    return [sample]


class TensorForward(nn.Module):
    """``model(x, samples, mode='tensor')`` as a plain module for tracing."""

    def __init__(self, model: nn.Module, samples):
        super().__init__()
        self.model = model
        self.samples = samples

    def forward(self, x):
        return self.model(x, self.samples, mode='tensor')


def count_complexity(cfg: Config,
                     shape: Optional[Sequence[int]] = None) -> dict:
    """Build ``cfg.model`` and count params and FLOPs on one image.

    Returns dict(scope, shape, params, flops) with FLOPs as multiply-adds.
    """
    task = task_of(cfg)
    shape = tuple(shape or DEFAULT_SHAPES[task])
    model = build_model(cfg).eval()
    wrapped = TensorForward(model, data_samples(task, shape))
    x = torch.randn(1, 3, *shape)
    with torch.no_grad():
        analyzer = FlopAnalyzer(wrapped, (x, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        flops = analyzer.total()
    params = sum(p.numel() for p in model.parameters())
    return dict(scope=task, shape=shape, params=params, flops=flops)
