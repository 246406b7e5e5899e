"""Adaptive gradient clipping (AGC), the clipping EfficientViT is trained with.

The official ImageNet recipe clips with AGC at factor 0.02 (Brock et al.,
2021, "High-Performance Large-Scale Image Recognition Without
Normalization"): each output unit's gradient is rescaled so that its norm is
at most ``clip_factor`` times the norm of that unit's weights. Plain norm
clipping at 0.02 would be a very different, much stronger constraint.

Use ``optim_wrapper=dict(type='AGCOptimWrapper', clip_grad=dict(type='agc',
clip_factor=0.02), ...)``; ``AGCAmpOptimWrapper`` is the mixed-precision twin.
"""
from typing import Iterable, Optional

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


def _unitwise_norm(x: torch.Tensor) -> torch.Tensor:
    """L2 norm per output unit (dim 0); whole-tensor norm for 0/1-d tensors."""
    if x.dim() <= 1:
        return torch.linalg.vector_norm(x)
    return torch.linalg.vector_norm(x, dim=tuple(range(1, x.dim())),
                                    keepdim=True)


@torch.no_grad()
def adaptive_clip_grad_(parameters: Iterable[torch.Tensor],
                        clip_factor: float = 0.02,
                        eps: float = 1e-3) -> torch.Tensor:
    """Clip gradients in place, unit-wise, relative to the weights' norms.

    Returns the fraction of units that were clipped (logged as
    ``train/agc_clipped``).
    """
    clipped, total = 0, 0
    for p in parameters:
        if p.grad is None:
            continue
        max_norm = _unitwise_norm(p).clamp_(min=eps).mul_(clip_factor)
        grad_norm = _unitwise_norm(p.grad)
        too_large = grad_norm > max_norm
        scale = torch.where(too_large, max_norm / grad_norm.clamp(min=1e-6),
                            torch.ones_like(grad_norm))
        p.grad.mul_(scale)
        clipped += int(too_large.sum())
        total += too_large.numel()
    return torch.tensor(clipped / max(total, 1))


class _AGCMixin:
    """Accepts ``clip_grad=dict(type='agc', clip_factor=..., eps=...)``."""

    def __init__(self, *args, clip_grad: Optional[dict] = None, **kwargs):
        agc = None
        if clip_grad is not None and clip_grad.get('type') == 'agc':
            agc = {k: v for k, v in clip_grad.items() if k != 'type'}
            unknown = set(agc) - {'clip_factor', 'eps'}
            if unknown:
                raise ValueError(f'AGC takes clip_factor and eps, got '
                                 f'unknown arguments {sorted(unknown)}')
            clip_grad = None
        super().__init__(*args, clip_grad=clip_grad, **kwargs)
        if agc is not None:
            # OptimWrapper._clip_grad calls clip_func(params, **kwargs).
            self.clip_func = adaptive_clip_grad_
            self.clip_grad_kwargs = {'clip_factor': 0.02, **agc}
            self.grad_name = 'agc_clipped'


@OPTIM_WRAPPERS.register_module()
class AGCOptimWrapper(_AGCMixin, OptimWrapper):
    """OptimWrapper with adaptive gradient clipping (``type='agc'``)."""


@OPTIM_WRAPPERS.register_module()
class AGCAmpOptimWrapper(_AGCMixin, AmpOptimWrapper):
    """AmpOptimWrapper with adaptive gradient clipping (``type='agc'``).

    Gradients are unscaled before clipping, as AmpOptimWrapper does for its
    own clipping.
    """
