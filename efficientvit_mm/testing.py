"""Helpers for checking that two ways of running a model agree (used by
the tests and by the device benchmarks)."""
import torch
from torch.nn.modules.batchnorm import _BatchNorm


def randomise(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Non-trivial BN statistics/affines and attention biases, in place.

    Freshly built EfficientViT residual branches start at zero (BN weight 0),
    so comparisons of outputs need this to see real arithmetic.
    """
    from .models.layers import CascadedGroupAttention
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * .1)
                m.running_var.copy_(torch.rand(n, generator=g) + .5)
                m.weight.copy_(torch.rand(n, generator=g) + .5)
                m.bias.copy_(torch.randn(n, generator=g) * .1)
            if isinstance(m, CascadedGroupAttention):
                m.attention_biases.copy_(
                    torch.randn(m.attention_biases.shape, generator=g))
    return model
