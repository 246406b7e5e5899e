"""Parameters and FLOPs (multiply-adds) of the model of a config."""
from typing import Optional, Sequence

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config

from ..apis.model import DEFAULT_SHAPES, tensor_model
from ..runtime.config import task_of


def count_complexity(cfg: Config,
                     shape: Optional[Sequence[int]] = None) -> dict:
    """Build ``cfg.model`` and count params and FLOPs on one image.

    Returns dict(scope, shape, params, flops) with FLOPs as multiply-adds.
    """
    task = task_of(cfg)
    shape = tuple(shape or DEFAULT_SHAPES[task])
    wrapped = tensor_model(cfg, shape)
    x = torch.randn(1, 3, *shape)
    with torch.no_grad():
        analyzer = FlopAnalyzer(wrapped, (x, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        flops = analyzer.total()
    params = sum(p.numel() for p in wrapped.parameters())
    return dict(scope=task, shape=shape, params=params, flops=flops)
