"""Parameters and FLOPs (multiply-adds) of the model of a config."""
from typing import Counter, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config

from ..apis.model import DEFAULT_SHAPES, tensor_model
from ..runtime.config import task_of


def flops_by_module(net: nn.Module, inputs: tuple) -> Counter:
    """Multiply-adds of one forward of ``net`` on ``inputs`` as mmengine's
    FlopAnalyzer counts them, per module name ('' is the whole of
    ``net``; a Counter: 0 for modules that did no multiply-add), without
    gradients and without its warnings."""
    with torch.no_grad():
        analyzer = FlopAnalyzer(net, inputs)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        return analyzer.by_module()


def count_complexity(cfg: Config,
                     shape: Optional[Sequence[int]] = None) -> dict:
    """Build ``cfg.model`` and count params and FLOPs on one image.

    Returns dict(scope, shape, params, flops) with FLOPs as multiply-adds.
    """
    task = task_of(cfg)
    shape = tuple(shape or DEFAULT_SHAPES[task])
    wrapped = tensor_model(cfg, shape)
    flops = flops_by_module(wrapped, (torch.randn(1, 3, *shape), ))['']
    params = sum(p.numel() for p in wrapped.parameters())
    return dict(scope=task, shape=shape, params=params, flops=flops)
