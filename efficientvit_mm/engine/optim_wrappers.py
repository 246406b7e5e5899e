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


def _as_units(t: torch.Tensor) -> torch.Tensor:
    """Rows of output units: (out, fan_in) for weights, one row for the
    whole of a bias or norm vector (its elements share no fan-in)."""
    return t.reshape(t.shape[0], -1) if t.dim() > 1 else t.reshape(1, -1)


@torch.no_grad()
def adaptive_clip_grad_(parameters: Iterable[torch.Tensor],
                        clip_factor: float = 0.02,
                        eps: float = 1e-3) -> torch.Tensor:
    """Clip gradients in place, unit-wise, relative to the weights' norms.

    For each unit, r = ||grad|| / max(||weight||, eps). A unit whose r
    exceeds ``clip_factor`` has its gradient multiplied by
    ``clip_factor / r``, which brings r down to ``clip_factor``; the others
    are left alone. ``eps`` keeps units with zero weights (fresh biases)
    trainable.

    Returns the fraction of units that were clipped (logged as
    ``train/agc_clipped``).
    """
    clipped, units = 0, 0
    for param in parameters:
        if param.grad is None:
            continue
        grad_norm = torch.linalg.vector_norm(_as_units(param.grad), dim=1)
        weight_norm = torch.linalg.vector_norm(_as_units(param), dim=1)
        ratio = grad_norm / weight_norm.clamp(min=eps)
        over = ratio > clip_factor
        scale = torch.where(over, clip_factor / ratio, torch.ones_like(ratio))
        # scaled in place through a broadcast, not through the reshaped
        # rows: those are a copy for a non-contiguous (channels_last) grad
        if param.grad.dim() > 1:
            scale = scale.reshape((-1, ) + (1, ) * (param.grad.dim() - 1))
        param.grad.mul_(scale if param.grad.dim() > 1 else scale[0])
        clipped += int(over.sum())
        units += over.numel()
    return torch.tensor(clipped / max(units, 1))


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


# the mixed-precision twin of each optim wrapper type the configs use
AMP_WRAPPERS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'AmpOptimWrapper': 'AmpOptimWrapper',
    'AGCOptimWrapper': 'AGCAmpOptimWrapper',
    'AGCAmpOptimWrapper': 'AGCAmpOptimWrapper',
}


def amp_optim_wrapper(optim_cfg: dict) -> dict:
    """The mixed-precision version of an ``optim_wrapper`` config (dynamic
    loss scale unless it sets one)."""
    optim_cfg = dict(optim_cfg)
    kind = optim_cfg.get('type', 'OptimWrapper')
    if kind not in AMP_WRAPPERS:
        raise ValueError(f'no mixed-precision twin known for optim wrapper '
                         f'{kind!r}; known: {sorted(AMP_WRAPPERS)}')
    optim_cfg['type'] = AMP_WRAPPERS[kind]
    optim_cfg.setdefault('loss_scale', 'dynamic')
    return optim_cfg
