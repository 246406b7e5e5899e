"""EfficientViT backbone (Liu et al., CVPR 2023): cascaded group attention."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from ...checkpoint.loading import load_backbone_checkpoint
from ...deploy.cpu_conv import cache_sized_groups
from ...deploy.replay import ForwardReplay
from ...errors import ConfigValueError
from ..layers import (CascadedGroupAttention, ConvNorm, DWConvFFN,
                      PatchMerging, is_channels_last)


class EfficientViTBlock(nn.Module):
    """The sandwich block: DWConv+FFN, cascaded group attention, DWConv+FFN.

    Every sub-layer is residual. Shape: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, embed_dims: int, key_dim: int, num_heads: int,
                 window_size: int, kernels: Sequence[int], ffn_ratio: int = 2,
                 drop_path: float = 0., cascade: bool = True,
                 norm_cfg: dict = dict(type='BN'), deploy: bool = False):
        super().__init__()
        self.pre = DWConvFFN(embed_dims, ffn_ratio, 0., drop_path, norm_cfg,
                             deploy)
        self.attn = CascadedGroupAttention(embed_dims, key_dim, num_heads,
                                           window_size, kernels, cascade,
                                           norm_cfg, deploy)
        self.post = DWConvFFN(embed_dims, ffn_ratio, 0., drop_path, norm_cfg,
                              deploy)
        self.drop_path = DropPath(
            drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        x = x + self.drop_path(self.attn(x))
        return self.post(x)


class EfficientViTDownsample(nn.Module):
    """The downsampling sandwich: DWConv + FFN, PatchMerging, DWConv + FFN.

    Shape: (N, C_in, H, W) -> (N, C_out, ceil(H / 2), ceil(W / 2)).
    """

    def __init__(self, in_channels: int, out_channels: int, ffn_ratio: int = 2,
                 norm_cfg: dict = dict(type='BN'), deploy: bool = False):
        super().__init__()
        self.pre = DWConvFFN(in_channels, ffn_ratio, 1., 0., norm_cfg, deploy)
        self.merge = PatchMerging(in_channels, out_channels, norm_cfg=norm_cfg,
                                  deploy=deploy)
        self.post = DWConvFFN(out_channels, ffn_ratio, 1., 0., norm_cfg,
                              deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.merge(self.pre(x)))


class EfficientViTStage(nn.Module):
    """Optional downsampling sandwich followed by ``depth`` sandwich blocks.

    Shape: (N, C_in, H, W) -> (N, C, H', W'), H' = ceil(H / 2) if downsampling.
    """

    def __init__(self, in_channels: int, embed_dims: int, depth: int,
                 key_dim: int, num_heads: int, window_size: int,
                 kernels: Sequence[int], downsample: bool,
                 drop_paths: Sequence[float], ffn_ratio: int = 2,
                 cascade: bool = True, with_cp: bool = False,
                 norm_cfg: dict = dict(type='BN'), deploy: bool = False):
        super().__init__()
        self.with_cp = with_cp
        self.downsample = EfficientViTDownsample(
            in_channels, embed_dims, ffn_ratio, norm_cfg,
            deploy) if downsample else None
        self.blocks = nn.ModuleList(
            EfficientViTBlock(embed_dims, key_dim, num_heads, window_size,
                              kernels, ffn_ratio, drop_paths[i], cascade,
                              norm_cfg, deploy) for i in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self.blocks)
        if self.downsample is not None:
            layers.insert(0, self.downsample)
        for layer in layers:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(layer, x, use_reentrant=False)
            else:
                x = layer(x)
        return x


class EfficientViTStem(nn.Sequential):
    """Four 3x3 stride-2 ConvNorms (C/8, C/4, C/2, C) with ReLU between.

    A Sequential, so its keys are those of the release (``patch_embed.0``,
    ``.2``, ``.4``, ``.6``); each ReLU runs inside the ConvNorm before it
    (fused into the conv once folded). Shape: (N, 3, H, W) ->
    (N, C, ~H/16, ~W/16).
    """

    def __init__(self, in_channels: int, embed_dims: int, norm_cfg: dict,
                 deploy: bool):
        widths = [in_channels] + [
            embed_dims // 8, embed_dims // 4, embed_dims // 2, embed_dims
        ]
        layers = []
        for i in range(4):
            if i:
                layers.append(nn.ReLU(inplace=True))
            layers.append(
                ConvNorm(widths[i], widths[i + 1], 3, 2, 1, norm_cfg=norm_cfg,
                         deploy=deploy))
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = cache_sized_groups(x, self[0].conv) if self[0].fused else [x]
        outs = [self._convs(part) for part in parts]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _convs(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self) - 1
        for i in range(0, len(self), 2):
            x = self[i](x, relu=i < last)
        return x


def _arch(embed_dims, depths, num_heads, kernels, key_dim=16) -> dict:
    """One entry of :attr:`EfficientViT.arch_zoo`."""
    return dict(
        embed_dims=list(embed_dims), depths=list(depths),
        num_heads=list(num_heads), kernels=list(kernels), key_dim=key_dim)


def _forget_replay(module: 'EfficientViT', *args, **kwargs) -> None:
    module._replay.clear()


@MODELS.register_module()
class EfficientViT(BaseModule):
    """EfficientViT: memory-efficient ViT with cascaded group attention.

    A 16x conv stem feeds three stages of sandwich blocks at strides 16, 32
    and 64; stages 2 and 3 open with an inverted-residual downsampling
    sandwich. Returns a tuple of NCHW maps, one per ``out_indices`` entry.

    Args:
        arch: ``'m0'``..``'m5'`` or a dict with the keys of :attr:`arch_zoo`
            (``embed_dims``, ``depths``, ``num_heads``, ``kernels``,
            ``key_dim``).
        in_channels: input channels.
        window_size: attention window per stage (int or 3 ints). ``(7, 7, 4)``
            at 224x224 is the released ImageNet classifier, ``(7, 7, 7)`` the
            released detection backbone.
        out_indices: stages to return (0, 1, 2 = strides 16, 32, 64).
        frozen_stages: -1 freezes nothing, 0 the stem, k>=1 the stem and the
            first k stages. Frozen parts stay in eval mode.
        norm_eval: keep every BatchNorm in eval mode while training.
        with_cp: gradient checkpointing of the stem and of every block
            (recomputes them in backward to save activation memory).
        drop_path_rate: stochastic depth, increasing linearly over blocks.
        cascade: ``False`` turns the cascade off and feeds every head all
            channels (the paper's MHSA-style baseline); weights differ.
        deploy: build the BN-folded inference structure directly.
        norm_cfg: normalisation layer config (BatchNorm by default).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` loads official,
            timm or efficientvit_mm checkpoints (format detected).
    """

    # name: embed_dims, depths, num_heads, Q kernels (the paper's Table 1)
    arch_zoo: Dict[str, dict] = {
        'm0': _arch((64, 128, 192), (1, 2, 3), (4, 4, 4), (5, 5, 5, 5)),
        'm1': _arch((128, 144, 192), (1, 2, 3), (2, 3, 3), (7, 5, 3, 3)),
        'm2': _arch((128, 192, 224), (1, 2, 3), (4, 3, 2), (7, 5, 3, 3)),
        'm3': _arch((128, 240, 320), (1, 2, 3), (4, 3, 4), (5, 5, 5, 5)),
        'm4': _arch((128, 256, 384), (1, 2, 3), (4, 4, 4), (7, 5, 3, 3)),
        'm5': _arch((192, 288, 384), (1, 3, 4), (3, 3, 4), (7, 5, 3, 3)),
    }
    num_stages = 3

    def __init__(self, arch: Union[str, dict] = 'm0', in_channels: int = 3,
                 window_size: Union[int, Sequence[int]] = 7,
                 out_indices: Sequence[int] = (0, 1, 2),
                 frozen_stages: int = -1, norm_eval: bool = False,
                 with_cp: bool = False, drop_path_rate: float = 0.,
                 ffn_ratio: int = 2, cascade: bool = True,
                 deploy: bool = False, norm_cfg: dict = dict(type='BN'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self._parse_arch(arch)
        self.embed_dims = list(self.arch_settings['embed_dims'])
        self.depths = list(self.arch_settings['depths'])
        self.window_size = self._parse_per_stage(window_size, 'window_size')
        self.out_indices = self._parse_out_indices(out_indices)
        if not isinstance(frozen_stages,
                          int) or not (-1 <= frozen_stages <= self.num_stages):
            raise ConfigValueError(
                f'frozen_stages must be an int in [-1, {self.num_stages}] '
                f'(-1: nothing, 0: stem, k: stem + first k stages), '
                f'got {frozen_stages!r}')
        if not 0. <= drop_path_rate < 1.:
            raise ConfigValueError(
                f'drop_path_rate must be in [0, 1), got {drop_path_rate}')
        self.in_channels = in_channels
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.cascade = cascade
        self.deploy = deploy
        # a folded model's CPU inference calls, replayed from C++; its
        # recordings hold the parameters, so they go before any conversion
        # or load (which may swap the tensors)
        self._replay = ForwardReplay()
        self._register_load_state_dict_pre_hook(_forget_replay,
                                                with_module=True)

        self.patch_embed = EfficientViTStem(in_channels, self.embed_dims[0],
                                            norm_cfg, deploy)
        dpr = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        self.stages = nn.ModuleList()
        in_dims = self.embed_dims[0]
        for i, (dims, depth) in enumerate(zip(self.embed_dims, self.depths)):
            first = sum(self.depths[:i])
            self.stages.append(
                EfficientViTStage(in_dims, dims, depth,
                                  key_dim=self.arch_settings['key_dim'],
                                  num_heads=self.arch_settings['num_heads'][i],
                                  window_size=self.window_size[i],
                                  kernels=self.arch_settings['kernels'],
                                  downsample=i > 0,
                                  drop_paths=dpr[first:first + depth],
                                  ffn_ratio=ffn_ratio, cascade=cascade,
                                  with_cp=with_cp, norm_cfg=norm_cfg,
                                  deploy=deploy))
            in_dims = dims
        self.out_channels = [self.embed_dims[i] for i in self.out_indices]
        self._freeze_stages()

    # ------------------------------------------------------------- arguments
    @classmethod
    def stage_widths(
        cls, arch: Union[str,
                         dict] = 'm0', out_indices: Sequence[int] = (0, 1, 2)
    ) -> List[int]:
        """The channels of the maps a backbone of ``arch`` returns for
        ``out_indices``: what a neck's ``in_channels`` must be."""
        dims = cls._parse_arch(arch)['embed_dims']
        return [dims[i] for i in cls._parse_out_indices(out_indices)]

    @classmethod
    def _parse_arch(cls, arch) -> dict:
        required = set(cls.arch_zoo['m0'])
        if isinstance(arch, str):
            key = arch.lower()
            if key not in cls.arch_zoo:
                raise ConfigValueError(
                    f'unknown EfficientViT arch {arch!r}; valid names: '
                    f'{sorted(cls.arch_zoo)} (or a dict with keys '
                    f'{sorted(required)})')
            return copy.deepcopy(cls.arch_zoo[key])
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a name or a dict, got {arch!r}')
        missing = required - set(arch)
        extra = set(arch) - required
        if missing or extra:
            raise ConfigValueError(
                f'custom arch dict must have exactly the keys '
                f'{sorted(required)}; missing {sorted(missing)}, '
                f'unexpected {sorted(extra)}')
        for key in ('embed_dims', 'depths', 'num_heads'):
            if len(arch[key]) != cls.num_stages:
                raise ConfigValueError(f'arch[{key!r}] needs {cls.num_stages} '
                                       f'values, got {arch[key]}')
        return copy.deepcopy(dict(arch))

    def _parse_per_stage(self, value, name) -> List[int]:
        values = [value] * self.num_stages if isinstance(value,
                                                         int) else list(value)
        if len(values) != self.num_stages or any(
                not isinstance(v, int) or v < 1 for v in values):
            raise ConfigValueError(
                f'{name} must be a positive int or '
                f'{self.num_stages} positive ints, got {value!r}')
        return values

    @classmethod
    def _parse_out_indices(cls, out_indices) -> List[int]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        parsed = []
        for index in out_indices:
            if not isinstance(index, int) or not (-cls.num_stages <= index <
                                                  cls.num_stages):
                raise ConfigValueError(
                    f'out_indices must be stage indices in '
                    f'[0, {cls.num_stages - 1}] (or negative from the end), '
                    f'got {tuple(out_indices)}')
            parsed.append(index % cls.num_stages)
        if len(set(parsed)) != len(parsed) or not parsed:
            raise ConfigValueError(
                f'out_indices must be non-empty and unique, got '
                f'{tuple(out_indices)}')
        return sorted(parsed)

    # -------------------------------------------------------------- training
    def _freeze_stages(self) -> None:
        frozen = []
        if self.frozen_stages >= 0:
            frozen.append(self.patch_embed)
        frozen.extend(self.stages[:max(self.frozen_stages, 0)])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:  # keep the pretrained statistics
            norms = [m for m in self.modules() if isinstance(m, _BatchNorm)]
            for norm in norms:
                norm.eval()
        return self

    def init_weights(self) -> None:
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            logger = MMLogger.get_current_instance()
            load_backbone_checkpoint(self, cfg['checkpoint'],
                                     prefix=cfg.get('prefix'), logger=logger)
            self._is_init = True
            return
        super().init_weights()

    def _apply(self, fn, recurse=True):
        self._replay.clear()
        return super()._apply(fn, recurse)

    # ---------------------------------------------------------------- deploy
    def switch_to_deploy(self) -> None:
        """Fold every BatchNorm into the conv before it (inference only)."""
        for module in self.modules():
            if isinstance(module, ConvNorm):
                module.fuse()
        self.deploy = True

    def attention_layers(self) -> List[Tuple[str, CascadedGroupAttention]]:
        """(name, module) of every attention layer, in forward order."""
        return [(name, m) for name, m in self.named_modules()
                if isinstance(m, CascadedGroupAttention)]

    # --------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """(N, 3, H, W) -> tuple of (N, C_i, ~H/2^(4+i), ~W/2^(4+i)).

        The maps come back in the memory format of ``x``: folded convs may
        run channels_last inside, and ops downstream (mmcv's CPU
        ``roi_align``) read NCHW memory whatever the strides say. Folded,
        at CPU inference, the forward's operator calls replay from C++ from
        the second call with a given input shape on
        (:mod:`efficientvit_mm.deploy.replay`).
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigValueError(
                f'EfficientViT expects an N x {self.in_channels} x H x W '
                f'image tensor, got shape {tuple(x.shape)}; add a batch '
                f'dimension with x[None] or convert the channels first')
        if self.deploy:
            return self._replay(self, self._features, x,
                                config=tuple(self.out_indices))
        return self._features(x)

    def _features(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The forward after its input check."""
        layout = torch.channels_last if is_channels_last(
            x) else torch.contiguous_format
        if self.with_cp and torch.is_grad_enabled() and any(
                p.requires_grad for p in self.patch_embed.parameters()):
            # the stem's full-resolution maps are the largest activations
            x = cp.checkpoint(self.patch_embed, x, use_reentrant=False)
        else:
            x = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x.contiguous(memory_format=layout))
        return tuple(outs)
