"""Inverted-residual downsampling used between EfficientViT stages."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .conv_norm import ConvNorm


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least
    one)."""
    return divisor * max(1, math.floor(value / divisor + 0.5))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: mean pool, 1x1 conv, ReLU, 1x1 conv, sigmoid.

    Shape: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int, ratio: float = 0.25, divisor: int = 8):
        super().__init__()
        reduced = make_divisible(channels * ratio, divisor)
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the 1x1 convs act on pooled (N, C) vectors: run them as linears
        # (about half the CPU time of a conv call at these sizes)
        pooled = x.mean((2, 3))
        hidden = self.act(
            F.linear(pooled, self.fc1.weight.flatten(1), self.fc1.bias))
        gate = F.linear(hidden, self.fc2.weight.flatten(1), self.fc2.bias)
        return x * gate.sigmoid()[:, :, None, None]


class PatchMerging(nn.Module):
    """1x1 expand (x4), ReLU, 3x3 stride-2 depthwise, ReLU, SE, 1x1 project.

    Shape: (N, C_in, H, W) -> (N, C_out, ceil(H / 2), ceil(W / 2)).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 expand_ratio: int = 4, norm_cfg: dict = dict(type='BN'),
                 deploy: bool = False):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.conv1 = ConvNorm(in_channels, hidden, norm_cfg=norm_cfg,
                              deploy=deploy)
        self.conv2 = ConvNorm(hidden, hidden, 3, 2, 1, groups=hidden,
                              norm_cfg=norm_cfg, deploy=deploy)
        self.se = SqueezeExcite(hidden, 0.25)
        self.conv3 = ConvNorm(hidden, out_channels, norm_cfg=norm_cfg,
                              deploy=deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x, relu=True)
        x = self.conv2(x, relu=True)
        return self.conv3(self.se(x))
