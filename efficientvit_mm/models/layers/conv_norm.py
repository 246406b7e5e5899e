"""Conv/Linear + BatchNorm pairs that fold into one layer at deploy time."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from torch.nn.modules.batchnorm import _BatchNorm

from .onednn import PackedWeights, fused_conv


def fold_bn_into_conv(conv: nn.Conv2d, bn: _BatchNorm) -> nn.Conv2d:
    """Return a biased copy of ``conv`` that computes ``bn(conv(x))`` (eval-mode BN)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
        conv.padding, conv.dilation, conv.groups, bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device, dtype=conv.weight.dtype)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused


class ConvNorm(nn.Module):
    """Conv2d without bias followed by a norm layer (BatchNorm by default).

    ``fuse()`` folds the norm into the conv in place: ``conv`` gains a bias and
    ``bn`` becomes ``nn.Identity``, so the state-dict keys of a fused model are
    ``conv.weight``/``conv.bias``. ``deploy=True`` builds that structure directly.
    Once folded, ``forward_fused`` also takes the ReLU and/or residual add that
    follow the layer (fused into one oneDNN call on the CPU at inference).

    Shape: (N, C_in, H, W) -> (N, C_out, H_out, W_out).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 1,
                 stride: int = 1,
                 padding: int = 0,
                 groups: int = 1,
                 bn_weight_init: float = 1.,
                 norm_cfg: dict = dict(type='BN'),
                 deploy: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              padding, groups=groups, bias=deploy)
        if deploy:
            self.bn = nn.Identity()
        else:
            self.bn = build_norm_layer(norm_cfg, out_channels)[1]
            nn.init.constant_(self.bn.weight, bn_weight_init)
            nn.init.constant_(self.bn.bias, 0.)
        self.packed = PackedWeights()  # oneDNN weight layouts, not state

    @property
    def fused(self) -> bool:
        return not isinstance(self.bn, _BatchNorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    def forward_fused(self, x: torch.Tensor, relu: bool = False,
                      residual: Optional[torch.Tensor] = None
                      ) -> torch.Tensor:
        """``relu?(self(x) + residual?)`` of a folded layer, in one call.

        Inference helper for deploy models: the BatchNorm must be folded.
        """
        if not self.fused:
            raise RuntimeError('forward_fused needs the BatchNorm folded: '
                               'call fuse() (or switch_to_deploy()) first')
        return fused_conv(self.conv, self.packed, x, relu, residual)

    @torch.no_grad()
    def fuse(self) -> None:
        if not self.fused:
            self.conv = fold_bn_into_conv(self.conv, self.bn)
            self.bn = nn.Identity()


class NormLinear(nn.Module):
    """BatchNorm1d, optional dropout, then Linear: the classifier of EfficientViT.

    ``fuse()`` folds the BN into the Linear in place (``bn`` becomes Identity).

    Shape: (N, C_in) -> (N, C_out).
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 dropout: float = 0.,
                 init_std: float = 0.02,
                 deploy: bool = False):
        super().__init__()
        self.bn = nn.Identity() if deploy else nn.BatchNorm1d(in_features)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, out_features)
        nn.init.trunc_normal_(self.fc.weight, std=init_std)
        nn.init.zeros_(self.fc.bias)

    @property
    def fused(self) -> bool:
        return not isinstance(self.bn, _BatchNorm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.bn(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        # Dropout sits between BN and Linear but is the identity at inference.
        if self.fused:
            return
        bn, fc = self.bn, self.fc
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        fused = nn.Linear(fc.in_features, fc.out_features,
                          device=fc.weight.device, dtype=fc.weight.dtype)
        fused.weight.copy_(fc.weight * scale[None, :])
        fused.bias.copy_(fc.bias + fc.weight @ shift)
        self.fc = fused
        self.bn = nn.Identity()
