from .attention import (CascadedGroupAttention, is_channels_last,
                        relative_offset_index, window_partition,
                        window_reverse)
from .conv_norm import ConvNorm, NormLinear, fold_bn_into_conv
from .ffn import ConvFFN, DWConvFFN
from .patch_merging import PatchMerging, SqueezeExcite

__all__ = [
    'CascadedGroupAttention', 'is_channels_last', 'relative_offset_index',
    'window_partition', 'window_reverse', 'ConvNorm', 'NormLinear',
    'fold_bn_into_conv', 'ConvFFN', 'DWConvFFN', 'PatchMerging',
    'SqueezeExcite'
]
