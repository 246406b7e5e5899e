"""oneDNN fused convolutions for BN-folded inference on the CPU.

After ``switch_to_deploy()`` every conv carries its folded BatchNorm as a
bias. On the CPU such a conv can run through PyTorch's oneDNN pointwise
operator (the one inductor uses), which

* fuses the ReLU that follows it, or the residual add (``conv(x) + other``);
* takes its weight pre-packed in oneDNN's blocked layout, where ``F.conv2d``
  reorders the weight on every call.

For a small network of small convolutions such as EfficientViT this is worth
5-12% of CPU inference time. The operator is internal to PyTorch, so it is
used only where it is known to apply -- CPU, fp32 (or bf16 where oneDNN
has bf16 kernels, see :mod:`.precision`), no autograd, no tracing,
scripting, compiling or ONNX export -- and every caller has a plain
``F.conv2d`` fallback computing the same thing.
"""
import math
from collections import OrderedDict
from typing import List, Optional

import torch
import torch.nn as nn

_POINTWISE = getattr(
    getattr(torch.ops, 'mkldnn', None), '_convolution_pointwise', None)
_REORDER = getattr(
    getattr(torch.ops, 'mkldnn', None), '_reorder_convolution_weight', None)

# packed weights kept per conv: one per input shape, the latest few
_MAX_PACKED_SHAPES = 4
# elements of a first feature map per group of images (4 MiB of fp32): the
# largest map of a group then stays in the CPU caches
_GROUP_ELEMENTS = 2**20


def _onednn_dtypes() -> tuple:
    """The input dtypes the fused operator serves on this machine."""
    bf16 = getattr(
        getattr(torch.ops, 'mkldnn', None), '_is_mkldnn_bf16_supported', None)
    if bf16 is not None and bf16():
        return (torch.float32, torch.bfloat16)
    return (torch.float32, )


_DTYPES = _onednn_dtypes()


def _cpu_inference(x: torch.Tensor) -> bool:
    """Whether ``x`` is a 4-d CPU map of an inference call (no autograd)
    that is not being traced, scripted or exported."""
    return (x.device.type == 'cpu' and x.dim() == 4
            and not torch.is_grad_enabled() and not torch.jit.is_tracing()
            and not torch.jit.is_scripting()
            and not torch.onnx.is_in_onnx_export())


def onednn_applies(x: torch.Tensor) -> bool:
    """Whether the fused oneDNN operator can serve an inference call on x."""
    return (_POINTWISE is not None and _cpu_inference(x) and x.dtype in _DTYPES
            and not torch.compiler.is_compiling()
            and torch.backends.mkldnn.is_available())


class PackedWeights:
    """oneDNN-packed copies of a conv's weight, per input shape.

    Keyed on the input shape and on the weight's storage and version, so a
    weight that is moved, replaced or edited in place is packed again.
    Not copied by ``deepcopy`` or pickling (packed tensors have no storage).
    """

    def __init__(self):
        self._cache: 'OrderedDict[tuple, torch.Tensor]' = OrderedDict()

    def __deepcopy__(self, memo):
        return PackedWeights()

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._cache = OrderedDict()

    def get(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        weight = conv.weight
        if _REORDER is None or weight.is_inference():
            return weight  # the operator reorders it itself
        key = (tuple(x.shape), weight.data_ptr(), weight._version)
        packed = self._cache.get(key)
        if packed is None:
            packed = _REORDER(weight, list(conv.padding), list(conv.stride),
                              list(conv.dilation), conv.groups, list(x.shape))
            self._cache[key] = packed
            while len(self._cache) > _MAX_PACKED_SHAPES:
                self._cache.popitem(last=False)
        return packed


def _compiled_pointwise(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether ``conv`` is a biased 1x1 conv over a channels_last CPU map
    being compiled for inference (see :func:`fused_conv`)."""
    return (conv.bias is not None and torch.compiler.is_compiling()
            and _cpu_inference(x) and conv.kernel_size == (1, 1)
            and conv.stride == (1, 1) and conv.padding == (0, 0)
            and conv.groups == 1
            and x.is_contiguous(memory_format=torch.channels_last))


def fused_conv(conv: nn.Conv2d, packed: Optional[PackedWeights],
               x: torch.Tensor, relu: bool = False,
               residual: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``relu?(conv(x) + residual?)`` for a biased conv, fused when possible.

    ``residual`` must have the shape of the output; it is added before the
    ReLU. Compiled by inductor on the CPU, a 1x1 conv over a channels_last
    map is written as the matrix product it is, (N*H*W, C_in) x (C_in,
    C_out): inductor fuses the add and the ReLU into its GEMM, where each
    oneDNN conv call it would make instead costs a fixed overhead.
    """
    if _compiled_pointwise(conv, x):
        out = nn.functional.linear(
            x.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias)
        if residual is not None:
            out = out + residual.permute(0, 2, 3, 1)
        if relu:
            out = torch.relu(out)
        return out.permute(0, 3, 1, 2)
    if conv.bias is not None and onednn_applies(x):
        weight = conv.weight if packed is None else packed.get(conv, x)
        args = (list(conv.padding), list(conv.stride), list(conv.dilation),
                conv.groups)
        if residual is None:
            return _POINTWISE(x, weight, conv.bias, *args,
                              'relu' if relu else 'none', [], '')
        # the output takes the input's memory format; so must the addend
        residual = residual.contiguous(
            memory_format=torch.channels_last if x.is_contiguous(
                memory_format=torch.channels_last) else torch.contiguous_format
        )
        return _POINTWISE.binary(x, residual, weight, conv.bias, *args, 'add',
                                 None, 'relu' if relu else None, [], None)
    out = conv(x)
    if residual is not None:
        out = out + residual
    return torch.relu_(out) if relu else out


def cache_sized_groups(x: torch.Tensor, conv: nn.Conv2d) -> List[torch.Tensor]:
    """``x`` split along the batch so that the output of ``conv`` for one
    part stays in the CPU caches (``[x]`` off the CPU, with autograd, or
    when traced for export).

    The stem's first maps (C/8 x H/2 x W/2 per image) outgrow the caches at
    inference batch sizes; running the stem part by part gives the same
    result faster, eager or compiled.
    """
    if not _cpu_inference(x) or x.shape[0] < 2:
        return [x]
    stride = conv.stride[0] * conv.stride[1]
    per_image = conv.out_channels * x[0, 0].numel() // stride
    groups = min(x.shape[0],
                 math.ceil(per_image * x.shape[0] / _GROUP_ELEMENTS))
    if groups < 2:
        return [x]
    return list(x.split(math.ceil(x.shape[0] / groups)))
