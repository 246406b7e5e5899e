"""The 'bread' of the sandwich block: depthwise-conv token interaction and
FFN."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath

from .conv_norm import ConvNorm


class ConvFFN(nn.Module):
    """Pointwise FFN: 1x1 ConvNorm (C -> ratio*C), ReLU, 1x1 ConvNorm (-> C).

    The second BN starts at zero so a fresh residual branch is the identity.
    ``forward(x, residual)`` adds ``residual`` to the output.
    Shape: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, ratio: int = 2,
                 norm_cfg: dict = dict(type='BN'), deploy: bool = False):
        super().__init__()
        hidden = channels * ratio
        self.pw1 = ConvNorm(channels, hidden, norm_cfg=norm_cfg, deploy=deploy)
        self.pw2 = ConvNorm(hidden, channels, bn_weight_init=0.,
                            norm_cfg=norm_cfg, deploy=deploy)

    def forward(self, x: torch.Tensor,
                residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.pw2(self.pw1(x, relu=True), residual=residual)


class DWConvFFN(nn.Module):
    """Residual 3x3 depthwise ConvNorm, then residual ConvFFN.

    This pair opens and closes every sandwich block and every downsampling
    sandwich. Shape: (N, C, H, W) -> (N, C, H, W).

    Args:
        channels: C.
        ffn_ratio: hidden width of the FFN relative to C.
        dw_bn_init: initial BN weight of the depthwise branch (0 inside
            attention blocks, 1 in the downsampling sandwich, as released).
        drop_path: stochastic-depth rate of both residual branches.
    """

    def __init__(self, channels: int, ffn_ratio: int = 2,
                 dw_bn_init: float = 0., drop_path: float = 0.,
                 norm_cfg: dict = dict(type='BN'), deploy: bool = False):
        super().__init__()
        self.dw = ConvNorm(channels, channels, 3, 1, 1, groups=channels,
                           bn_weight_init=dw_bn_init, norm_cfg=norm_cfg,
                           deploy=deploy)
        self.ffn = ConvFFN(channels, ffn_ratio, norm_cfg=norm_cfg,
                           deploy=deploy)
        self.drop_path = DropPath(
            drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and isinstance(self.drop_path, DropPath):
            # stochastic depth scales each branch before its residual add
            x = x + self.drop_path(self.dw(x))
            return x + self.drop_path(self.ffn(x))
        # the residual adds go into the convs (one call each once folded)
        x = self.dw(x, residual=x)
        return self.ffn(x, residual=x)
