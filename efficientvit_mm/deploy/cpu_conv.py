"""How a BN-folded convolution runs at CPU inference.

After ``switch_to_deploy()`` every conv carries its folded BatchNorm as a
bias, and its ReLU and residual add can go into the same call. On the CPU,
at inference (no autograd, not traced, compiled or exported),
:class:`FoldedConvRunner` runs it through the cheapest kernel that computes
``relu?(conv(x) + residual?)``:

* a **1x1 conv over a map whose channels are its innermost dimension**
  (channels_last, or a channel slice of a channels_last map, as attention
  heads are) is the matrix product it is, over the map's (N*H*W, C) rows,
  without a copy:

  - oneDNN's linear with its weight packed once and the ReLU or the add
    fused, for products of at least :data:`SMALL_PRODUCT` multiply-adds;
  - BLAS ``addmm`` below that: a call costs a few microseconds where a
    oneDNN call costs about twenty, a large share of a small product's
    time (attention's Q/K/V projections, and the small maps of the last
    stages);

* a **depthwise conv over such a map** (3x3, 5x5 or 7x7, stride 1 or 2,
  fp32, channels a multiple of 16) goes through our own kernel
  (:mod:`efficientvit_mm.deploy.native`), which costs a few microseconds to
  enter where oneDNN's costs 20-40; in a compiled model too;

* **any other conv** (the stem's 3x3, NCHW maps, and depthwise convs where
  our kernels are not built) goes through oneDNN's fused conv with its
  weight packed once per input shape (where ``F.conv2d`` would reorder it on
  every call).

For a small network of small layers such as EfficientViT the fixed cost of
each call is a large share of CPU inference time; the runner keeps the
Python around each call to a few attribute reads. The oneDNN operators are
internal to PyTorch, so they are used only where they are known to apply,
and every caller has a plain ``F.conv2d`` path computing the same thing
(:func:`plain_conv`). Channels-last maps stay channels-last and NCHW maps
NCHW.
"""
import copy
import math
from collections import OrderedDict
from typing import List, Optional

import torch
import torch.nn as nn

from . import native

_MKLDNN = getattr(torch.ops, 'mkldnn', None)
_CONV = getattr(_MKLDNN, '_convolution_pointwise', None)
_REORDER_CONV = getattr(_MKLDNN, '_reorder_convolution_weight', None)
_LINEAR = getattr(_MKLDNN, '_linear_pointwise', None)
_REORDER_LINEAR = getattr(_MKLDNN, '_reorder_linear_weight', None)
AVAILABLE = (None not in (_CONV, _REORDER_CONV, _LINEAR, _REORDER_LINEAR)
             and torch.backends.mkldnn.is_available())

# multiply-adds below which a 1x1 conv runs as BLAS addmm rather than a
# oneDNN linear (measured on an AMD EPYC, Zen 4, one thread: addmm was 2-10
# us faster per call up to 4M, oneDNN 4-11% faster from 6M up)
SMALL_PRODUCT = 4 * 2**20
# packed weights kept per conv: one per input shape, the latest few
MAX_PACKED_SHAPES = 4
# elements of a first feature map per group of images (4 MiB of fp32): the
# largest map of a group then stays in the CPU caches
GROUP_ELEMENTS = 2**20


def _dtypes() -> tuple:
    """The input dtypes the oneDNN operators serve on this machine."""
    bf16 = getattr(_MKLDNN, '_is_mkldnn_bf16_supported', None)
    if bf16 is not None and bf16():
        return (torch.float32, torch.bfloat16)
    return (torch.float32, )


DTYPES = _dtypes()


def inference_call(x: torch.Tensor, compiled_too: bool = False) -> bool:
    """Whether ``x`` is a CPU tensor of an inference call (no autograd)
    that is not being traced (TorchScript, ONNX export) nor, unless
    ``compiled_too``, compiled."""
    return (not torch.is_grad_enabled() and x.is_cpu
            and not torch._C._get_tracing_state()
            and (compiled_too or not torch.compiler.is_compiling()))


def cpu_inference(x: torch.Tensor, compiled_too: bool = False) -> bool:
    """:func:`inference_call` on a 4-d map."""
    return x.dim() == 4 and inference_call(x, compiled_too)


def runner_applies(x: torch.Tensor) -> bool:
    """Whether a :class:`FoldedConvRunner` can serve an inference call on
    ``x``."""
    return AVAILABLE and cpu_inference(x) and x.dtype in DTYPES


def native_depthwise(conv: nn.Conv2d) -> bool:
    """Whether our depthwise kernel can compute ``conv`` (given an fp32 map
    with channels innermost): a biased depthwise conv, square 3, 5 or 7
    kernel, stride 1 or 2, no dilation, channels a multiple of 16."""
    k, s, p = conv.kernel_size, conv.stride, conv.padding
    return (conv.groups == conv.in_channels == conv.out_channels
            and conv.in_channels % 16 == 0 and conv.bias is not None
            and k[0] == k[1] and k[0] in (3, 5, 7) and s[0] == s[1]
            and s[0] in (1, 2) and p[0] == p[1] and 0 <= p[0] < k[0]
            and conv.dilation == (1, 1) and conv.padding_mode == 'zeros')


def _native_depthwise_input(x: torch.Tensor) -> bool:
    """Whether our depthwise kernel reads ``x``: fp32, channels innermost."""
    return x.dtype == torch.float32 and x.stride(1) == 1


def depthwise_weight(weight: torch.Tensor) -> torch.Tensor:
    """A depthwise conv's (C, 1, K, K) weight as the (K, K, C) our kernel
    reads."""
    return weight[:, 0].permute(1, 2, 0).contiguous()


def _rows(x: torch.Tensor) -> Optional[torch.Tensor]:
    """The (N*H*W, C) rows of a map whose channels are its innermost
    dimension, as a view; None for any other layout."""
    if x.stride(1) != 1:
        return None
    n, c, h, w = x.shape
    try:
        return x.permute(0, 2, 3, 1).view(n * h * w, c)
    except RuntimeError:  # N, H, W not one run of memory
        return None


class FoldedConvRunner:
    """Runs one folded ``nn.Conv2d`` (with bias) at CPU inference:
    ``runner(conv, x, relu, residual)`` is ``relu?(conv(x) + residual?)``.

    Keeps the conv's weight packed for its kernels, keyed on the input
    shape and on the weight's storage and version, so that a weight that
    is moved, replaced or edited in place is packed again. Not copied by
    ``deepcopy`` or pickling (packed tensors have no storage): a copy packs
    its own. Call it only where :func:`runner_applies`.
    """

    def __init__(self, conv: nn.Conv2d):
        self.pointwise = (
            conv.kernel_size == (1, 1) and conv.stride == (1, 1)
            and conv.padding == (0, 0) and conv.groups == 1)
        self.conv_args = (list(conv.padding), list(conv.stride),
                          list(conv.dilation), conv.groups)
        self.out_channels = conv.out_channels
        self.depthwise = native_depthwise(conv)
        self.packed: 'OrderedDict[tuple, torch.Tensor]' = OrderedDict()

    def __getstate__(self):
        return dict(self.__dict__, packed=OrderedDict())

    def __deepcopy__(self, memo):
        fresh = copy.copy(self)
        fresh.packed = OrderedDict()
        return fresh

    def _packed(self, weight: torch.Tensor, shape, pack,
                plain=None) -> torch.Tensor:
        """``pack(weight)``, kept for ``shape`` and this very weight.
        Inference tensors (a model copied under ``inference_mode``) have no
        version to key on: they go in as ``plain(weight)`` (default
        ``pack``), which the operator packs itself on every call."""
        if weight.is_inference():
            return (plain or pack)(weight)
        key = (shape, weight.data_ptr(), weight._version)
        packed = self.packed.get(key)
        if packed is None:
            packed = self.packed[key] = pack(weight)
            while len(self.packed) > MAX_PACKED_SHAPES:
                self.packed.popitem(last=False)
        return packed

    def __call__(self, conv: nn.Conv2d, x: torch.Tensor, relu: bool = False,
                 residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        weight, bias = conv._parameters['weight'], conv._parameters['bias']
        rows = _rows(x) if self.pointwise else None
        if rows is not None:
            return self._matmul(weight, bias, x, rows, relu, residual)
        if (self.depthwise and _native_depthwise_input(x)
                and native.available()):
            return self._depthwise(weight, bias, x, relu, residual)
        packed = self._packed(
            weight, x.shape,
            lambda w: _REORDER_CONV(w, *self.conv_args[:3], self.conv_args[3],
                                    list(x.shape)), lambda w: w)
        if residual is None:
            return _CONV(x, packed, bias, *self.conv_args,
                         'relu' if relu else 'none', [], '')
        # the output takes the input's memory format; so must the addend
        residual = residual.contiguous(
            memory_format=torch.channels_last if x.is_contiguous(
                memory_format=torch.channels_last) else torch.contiguous_format
        )
        return _CONV.binary(x, residual, packed, bias, *self.conv_args, 'add',
                            None, 'relu' if relu else None, [], None)

    def _depthwise(self, weight, bias, x, relu, residual):
        """Our depthwise kernel, written channels_last."""
        if residual is not None and residual.stride(1) != 1:
            residual = residual.contiguous(memory_format=torch.channels_last)
        return native.depthwise_conv2d(
            x, self._packed(weight, None, depthwise_weight), bias,
            self.conv_args[1][0], self.conv_args[0][0], residual, relu)

    def _matmul(self, weight, bias, x, rows, relu, residual):
        """A 1x1 conv as (N*H*W, C_in) x (C_in, C_out), written
        channels_last."""
        n, c, h, w = x.shape
        m, out = rows.shape[0], self.out_channels
        addend = None if residual is None else residual.permute(
            0, 2, 3, 1).reshape(m, out)
        if m * c * out < SMALL_PRODUCT:
            matrix = weight.flatten(1).t()
            y = torch.addmm(bias, rows, matrix) if addend is None else \
                torch.addmm(addend, rows, matrix).add_(bias)
        else:
            matrix = self._packed(weight, m,
                                  lambda w: _REORDER_LINEAR(w.flatten(1), m),
                                  lambda w: w.flatten(1))
            if addend is None:  # the ReLU fused
                y = _LINEAR(rows, matrix, bias, 'relu' if relu else 'none', [],
                            '')
                relu = False
            else:
                y = _LINEAR.binary(rows, addend, matrix, bias, 'add')
        if relu:
            y.relu_()
        return y.view(n, h, w, out).permute(0, 3, 1, 2)


def _compiled_inference(x: torch.Tensor) -> bool:
    """Whether ``x`` is a CPU map being compiled for inference."""
    return torch.compiler.is_compiling() and cpu_inference(
        x, compiled_too=True)


def _compiled_pointwise(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether ``conv`` is a biased 1x1 conv over a channels_last CPU map
    being compiled for inference (see :func:`plain_conv`)."""
    return (conv.bias is not None and _compiled_inference(x)
            and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
            and conv.padding == (0, 0) and conv.groups == 1
            and x.is_contiguous(memory_format=torch.channels_last))


def plain_conv(conv: nn.Conv2d, x: torch.Tensor, relu: bool = False,
               residual: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``relu?(conv(x) + residual?)`` with standard operators: for autograd,
    tracing, export, compiling and devices other than the CPU.

    Compiled by inductor on the CPU, a 1x1 conv over a channels_last map is
    written as the matrix product it is, (N*H*W, C_in) x (C_in, C_out):
    inductor fuses the add and the ReLU into its GEMM, where each oneDNN
    conv call it would make instead costs a fixed overhead. A depthwise conv
    our kernel serves is written as a call of it (its weight rearranged
    once, when the graph's weights are frozen), where ``compile_for_inference``
    has loaded the kernels.
    """
    if (_compiled_inference(x) and native.loaded() and native_depthwise(conv)
            and _native_depthwise_input(x)):
        return native.depthwise_conv2d(x, depthwise_weight(conv.weight),
                                       conv.bias, conv.stride[0],
                                       conv.padding[0], residual, relu)
    if _compiled_pointwise(conv, x):
        out = nn.functional.linear(
            x.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias)
        if residual is not None:
            out = out + residual.permute(0, 2, 3, 1)
        if relu:
            out = torch.relu(out)
        return out.permute(0, 3, 1, 2)
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
    if not cpu_inference(x, compiled_too=True) or x.shape[0] < 2:
        return [x]
    stride = conv.stride[0] * conv.stride[1]
    per_image = conv.out_channels * x[0, 0].numel() // stride
    groups = min(x.shape[0],
                 math.ceil(per_image * x.shape[0] / GROUP_ELEMENTS))
    if groups < 2:
        return [x]
    return list(x.split(math.ceil(x.shape[0] / groups)))
