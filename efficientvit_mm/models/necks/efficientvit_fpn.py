"""FPN with transposed-conv levels below the backbone's finest stride."""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.registry import MODELS

from ...errors import ConfigValueError


@MODELS.register_module()
class EfficientViTFPN(BaseModule):
    """The FPN of the EfficientViT detection paper.

    It is mmdet's FPN (lateral 1x1 convs, nearest top-down sum, 3x3 output
    convs, optional extra stride-2 levels on top) plus
    ``num_extra_trans_convs`` finer levels: each is a 2x2 stride-2 transposed
    conv of the previous finest top-down lateral, followed by a 3x3 conv.
    With EfficientViT's strides (16, 32, 64):

    * RetinaNet: 1 transposed level + 1 conv level on the input
      (``add_extra_convs='on_input'``) -> strides 8 to 128;
    * Mask R-CNN / Semantic FPN: 2 transposed levels -> strides 4 to 64.

    Module and key names follow the official neck, so its COCO checkpoints
    load unchanged.

    Args:
        in_channels: channels of each backbone output.
        out_channels: channels of every output level.
        num_outs: number of output levels, transposed levels included. With
            fewer outputs than backbone plus transposed levels, the coarsest
            backbone levels are not output (no output conv is built for
            them), though their laterals still feed the top-down path: with
            2 transposed levels, ``num_outs=4`` gives strides 4 to 32 for
            Semantic FPN or UperNet while the stride-64 stage adds context.
        start_level / end_level: backbone levels used (end exclusive, -1 =
            all), as in mmdet's FPN.
        add_extra_convs: False, or the source of the extra coarse levels:
            'on_input', 'on_lateral' or 'on_output' (True = 'on_input').
        relu_before_extra_convs: ReLU before the 2nd and later extra convs.
        no_norm_on_lateral: no norm on lateral and transposed convs.
        num_extra_trans_convs: transposed-conv levels below the finest input.

    Inputs: tuple of (N, C_i, H_i, W_i). Outputs: tuple of ``num_outs``
    (N, out_channels, H, W) maps, finest first.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int,
                 num_outs: int, start_level: int = 0, end_level: int = -1,
                 add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False,
                 num_extra_trans_convs: int = 0, conv_cfg: dict = None,
                 norm_cfg: dict = None, act_cfg: dict = None,
                 upsample_cfg: dict = dict(mode='nearest'),
                 init_cfg=dict(type='Xavier', layer='Conv2d',
                               distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.num_extra_trans_convs = num_extra_trans_convs
        self.upsample_cfg = upsample_cfg.copy()

        if end_level == -1 or end_level == self.num_ins:
            self.backbone_end_level = self.num_ins
        elif 0 < end_level <= self.num_ins:
            self.backbone_end_level = end_level
        else:
            raise ConfigValueError(
                f'end_level must be -1 or in (0, {self.num_ins}]'
                f', got {end_level}')
        if not 0 <= start_level < self.backbone_end_level:
            raise ConfigValueError(
                f'start_level must be in [0, '
                f'{self.backbone_end_level}), got {start_level}')
        self.start_level = start_level
        num_levels = self.backbone_end_level - start_level
        # backbone levels that get an output, and extra coarse levels
        self.num_level_outs = min(num_levels, num_outs - num_extra_trans_convs)
        self.num_extra_levels = max(
            0, num_outs - num_levels - num_extra_trans_convs)
        if num_extra_trans_convs < 0 or self.num_level_outs < 1:
            raise ConfigValueError(
                f'num_outs ({num_outs}) must exceed num_extra_trans_convs '
                f'({num_extra_trans_convs}): at least one backbone level '
                f'is output')

        if add_extra_convs is True:
            add_extra_convs = 'on_input'
        if add_extra_convs not in (False, 'on_input', 'on_lateral',
                                   'on_output'):
            raise ConfigValueError(
                f"add_extra_convs must be False, True, 'on_input', "
                f"'on_lateral' or 'on_output', got {add_extra_convs!r}")
        if add_extra_convs and self.num_level_outs < num_levels:
            raise ConfigValueError(
                f'add_extra_convs builds levels above the coarsest output, '
                f'but num_outs ({num_outs}) drops backbone levels: raise '
                f'num_outs to at least {num_levels + num_extra_trans_convs}')
        self.add_extra_convs = add_extra_convs

        lateral_norm = None if no_norm_on_lateral else norm_cfg
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(
                ConvModule(in_channels[i], out_channels, 1, conv_cfg=conv_cfg,
                           norm_cfg=lateral_norm, act_cfg=act_cfg,
                           inplace=False))
            if i - start_level < self.num_level_outs:
                self.fpn_convs.append(
                    ConvModule(out_channels, out_channels, 3, padding=1,
                               conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                               act_cfg=act_cfg, inplace=False))
        if add_extra_convs:
            for i in range(self.num_extra_levels):
                channels = (
                    in_channels[self.backbone_end_level - 1] if i == 0
                    and add_extra_convs == 'on_input' else out_channels)
                self.fpn_convs.append(
                    ConvModule(channels, out_channels, 3, stride=2, padding=1,
                               conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                               act_cfg=act_cfg, inplace=False))

        self.extra_trans_convs = nn.ModuleList()
        self.extra_fpn_convs = nn.ModuleList()
        for _ in range(num_extra_trans_convs):
            self.extra_trans_convs.append(
                ConvModule(out_channels, out_channels, 2, stride=2,
                           conv_cfg=dict(type='deconv'), norm_cfg=lateral_norm,
                           act_cfg=act_cfg, inplace=False))
            self.extra_fpn_convs.append(
                ConvModule(out_channels, out_channels, 3, padding=1,
                           conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                           act_cfg=act_cfg, inplace=False))

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        if len(inputs) != self.num_ins:
            raise ConfigValueError(
                f'EfficientViTFPN expects {self.num_ins} inputs '
                f'(in_channels={self.in_channels}), got '
                f'{len(inputs)}; check the backbone out_indices')
        widths = [int(x.shape[1]) for x in inputs]
        if widths != self.in_channels:
            raise ConfigValueError(
                f'the backbone gives maps of {widths} channels but the neck '
                f'was built for in_channels={self.in_channels}: set '
                f'model.neck.in_channels to the widths of the backbone arch, '
                f'e.g. --cfg-options model.neck.in_channels='
                f'"[{",".join(map(str, widths))}]"')
        levels = self._top_down([
            conv(x)
            for conv, x in zip(self.lateral_convs, inputs[self.start_level:])
        ])
        outs = [
            conv(x)
            for conv, x in zip(self.fpn_convs[:self.num_level_outs], levels)
        ]
        coarse = self._coarser(inputs, levels, outs[-1])
        return tuple(self._finer(levels[0]) + outs + coarse)

    def _top_down(self, laterals: List[torch.Tensor]) -> List[torch.Tensor]:
        """Every lateral plus the upsampled sum of the laterals above it,
        finest first (the coarsest stays as it is)."""
        merged = [laterals[-1]]
        for lateral in reversed(laterals[:-1]):
            if 'scale_factor' in self.upsample_cfg:
                above = F.interpolate(merged[-1], **self.upsample_cfg)
            else:
                above = F.interpolate(merged[-1], size=lateral.shape[2:],
                                      **self.upsample_cfg)
            merged.append(lateral + above)
        return merged[::-1]

    def _finer(self, finest: torch.Tensor) -> List[torch.Tensor]:
        """The transposed-conv levels under the finest lateral, each twice
        as fine as the last, through their 3x3 convs; finest first."""
        maps = []
        for up in self.extra_trans_convs:
            finest = up(finest)
            maps.append(finest)
        return [conv(x) for conv, x in zip(self.extra_fpn_convs, maps[::-1])]

    def _coarser(self, inputs, levels,
                 top: torch.Tensor) -> List[torch.Tensor]:
        """The extra stride-2 levels above the coarsest output ``top``:
        1x1 max-pools of it, or convs fed from the backbone's last input,
        the last lateral or ``top`` (``add_extra_convs``), then from the
        previous extra level."""
        extra: List[torch.Tensor] = []
        if not self.add_extra_convs:
            for _ in range(self.num_extra_levels):
                top = F.max_pool2d(top, 1, stride=2)
                extra.append(top)
            return extra
        x = dict(on_input=inputs[self.backbone_end_level - 1],
                 on_lateral=levels[-1], on_output=top)[self.add_extra_convs]
        for k, conv in enumerate(self.fpn_convs[self.num_level_outs:]):
            if k and self.relu_before_extra_convs:
                x = F.relu(x)
            x = conv(x)
            extra.append(x)
        return extra
