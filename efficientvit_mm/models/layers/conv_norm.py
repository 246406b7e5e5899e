"""Conv/Linear + BatchNorm pairs that fold into one layer at deploy time."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch.nn.modules.batchnorm import _BatchNorm

from ...deploy.cpu_conv import FoldedConvRunner, plain_conv, runner_applies
from ...errors import ConfigValueError


def bn_affine(bn: _BatchNorm) -> Tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) such that an eval-mode ``bn(y) = scale * y + shift``,
    per channel."""
    scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
    return scale, bn.bias - bn.running_mean * scale


def fold_bn_into_conv(conv: nn.Conv2d, bn: _BatchNorm) -> nn.Conv2d:
    """A biased copy of ``conv`` computing ``bn(conv(x))`` (eval-mode BN)."""
    scale, shift = bn_affine(bn)
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                      conv.stride, conv.padding, conv.dilation, conv.groups,
                      bias=True, padding_mode=conv.padding_mode,
                      device=conv.weight.device, dtype=conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale[:, None, None, None])
    fused.bias.copy_(shift)
    return fused


class ConvNorm(nn.Module):
    """Conv2d without bias followed by a norm layer (BatchNorm by default).

    ``forward`` also takes the ReLU and the residual add that follow the
    layer: ``relu?(bn(conv(x)) + residual?)``. ``fuse()`` folds the norm into
    the conv in place: ``conv`` gains a bias and ``bn`` becomes
    ``nn.Identity``, so the state-dict keys of a fused model are
    ``conv.weight``/``conv.bias``; ``deploy=True`` builds that structure
    directly. A folded layer runs conv, add and ReLU as one call of the
    cheapest CPU kernel at inference
    (:class:`efficientvit_mm.deploy.cpu_conv.FoldedConvRunner`, with its
    weight packed once); only folded layers carry that runner.

    Shape: (N, C_in, H, W) -> (N, C_out, H_out, W_out).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int = 1, stride: int = 1, padding: int = 0,
                 groups: int = 1, bn_weight_init: float = 1.,
                 norm_cfg: dict = dict(type='BN'), deploy: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              padding, groups=groups, bias=deploy)
        self.runner: Optional[FoldedConvRunner] = None
        if deploy:
            self.bn = nn.Identity()
            self.runner = FoldedConvRunner(self.conv)
        else:
            self.bn = build_norm_layer(norm_cfg, out_channels)[1]
            with torch.no_grad():  # residual branches start at zero
                self.bn.weight.fill_(bn_weight_init)
                self.bn.bias.zero_()

    @property
    def fused(self) -> bool:
        """True once the norm is folded into the conv (by :meth:`fuse`,
        ``deploy=True`` or mmcv's ``fuse_conv_bn``, which all leave an
        ``nn.Identity`` in its place). Other norms (GN, LN) are never
        folded."""
        return isinstance(self.bn, nn.Identity)

    def forward(self, x: torch.Tensor, relu: bool = False,
                residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        runner = self.runner
        if runner is None and self.fused:  # folded by mmcv's fuse_conv_bn
            runner = self.runner = FoldedConvRunner(self.conv)
        if runner is not None:
            if runner_applies(x):
                return runner(self.conv, x, relu, residual)
            return plain_conv(self.conv, x, relu, residual)
        out = self.bn(self.conv(x))
        if residual is not None:
            out = out + residual
        return F.relu(out, inplace=True) if relu else out

    @torch.no_grad()
    def fuse(self) -> None:
        if not self.fused:
            if not isinstance(self.bn, _BatchNorm):
                raise ConfigValueError(
                    f'deploy mode folds BatchNorm into the conv before it; '
                    f'this layer normalises with {type(self.bn).__name__}, '
                    f'which cannot be folded: build the model with '
                    f"norm_cfg=dict(type='BN') to deploy it, or run it "
                    f'unfolded')
            # the new modules take this one's training flag
            self.conv = fold_bn_into_conv(self.conv,
                                          self.bn).train(self.training)
            self.bn = nn.Identity().train(self.training)
        if self.runner is None:
            self.runner = FoldedConvRunner(self.conv)


class NormLinear(nn.Module):
    """BatchNorm1d, optional dropout, then Linear: EfficientViT's classifier.

    ``fuse()`` folds the BN into the Linear in place (``bn`` becomes Identity).

    Shape: (N, C_in) -> (N, C_out).
    """

    def __init__(self, in_features: int, out_features: int,
                 dropout: float = 0., init_std: float = 0.02,
                 deploy: bool = False):
        super().__init__()
        self.bn = nn.Identity() if deploy else nn.BatchNorm1d(in_features)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, out_features)
        nn.init.trunc_normal_(self.fc.weight, std=init_std)
        nn.init.zeros_(self.fc.bias)

    @property
    def fused(self) -> bool:
        return isinstance(self.bn, nn.Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.bn(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        # Dropout sits between BN and Linear but is the identity at inference.
        if self.fused:
            return
        bn, fc = self.bn, self.fc
        scale, shift = bn_affine(bn)
        fused = nn.Linear(fc.in_features, fc.out_features,
                          device=fc.weight.device, dtype=fc.weight.dtype)
        fused.weight.copy_(fc.weight * scale[None, :])
        fused.bias.copy_(fc.bias + fc.weight @ shift)
        self.fc = fused
        self.bn = nn.Identity()
