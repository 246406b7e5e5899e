"""Cascaded group attention over local windows (EfficientViT, CVPR 2023)."""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...deploy import native
from ...deploy.cpu_conv import cpu_inference
from ...errors import ConfigValueError
from .conv_norm import ConvNorm


def relative_offset_index(height, width, window_size: int,
                          device=None) -> torch.Tensor:
    """Index of every (query, key) pair of an ``height x width`` grid into a
    ``window_size x window_size`` table of absolute offsets.

    Offset (dy, dx) lives at ``dy * window_size + dx``: the order the released
    checkpoints use, so a grid smaller than the window reads a sub-grid of the
    window's table. ``height`` and ``width`` are ints, or 0-d tensors when
    traced (the index is then computed in the graph from the map's shape).
    Returns a (H*W, H*W) long tensor.
    """
    token = torch.arange(height * width, device=device)
    ys, xs = token // width, token % width  # row-major token positions
    dy = (ys[:, None] - ys[None, :]).abs()
    dx = (xs[:, None] - xs[None, :]).abs()
    return dy * window_size + dx


class Grid(NamedTuple):
    """How :func:`window_partition` cut a map, what :func:`window_reverse`
    needs to undo it: the map's (N, H, W), its (rows, cols) of windows and
    the window's (height, width). Ints, or 0-d tensors when traced."""
    n: int
    h: int
    w: int
    rows: int
    cols: int
    win_h: int
    win_w: int


# the (height, width) of the windows a map is cut into
Window = Tuple[int, int]


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether the 4-d ``x`` is laid out channels_last (and not also NCHW,
    as maps with one channel or one pixel are)."""
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
        memory_format=torch.channels_last)


def window_partition(x: torch.Tensor,
                     window: Union[int, Window]) -> Tuple[torch.Tensor, Grid]:
    """Zero-pad (N, C, H, W) to multiples of the window and cut it into
    (N*nH*nW, C, wh, ww) windows, ordered image by image, row by row.

    ``window`` is ``w`` (square) or ``(wh, ww)``; its sides may be 0-d
    tensors when traced. Both spatial dims are split into (tiles, w) by a
    free view; one copy then lays the windows out in the memory format of
    ``x``, so that channels_last maps give channels_last windows. A map that
    is already a multiple of the window is not padded. Every size is given
    explicitly (views and reshapes, ONNX opset 11 and up). Returns the
    windows and the :class:`Grid` that :func:`window_reverse` needs.
    """
    n, c, h, w = x.shape
    wh, ww = (window, window) if isinstance(window, int) else window
    pad_b, pad_r = (wh - h % wh) % wh, (ww - w % ww) % ww
    rows, cols = (h + pad_b) // wh, (w + pad_r) // ww  # (traceable sizes)
    if torch.jit.is_tracing() or pad_b or pad_r:
        # (traced graphs keep the pad: its size depends on H and W)
        x = F.pad(x, (0, pad_r, 0, pad_b))
    tiles = x.view(n, c, rows, wh, cols, ww)  # then tile indices to front
    grid = Grid(n, h, w, rows, cols, wh, ww)
    if is_channels_last(x):
        windows = tiles.permute(0, 2, 4, 3, 5, 1)  # (N, nH, nW, wh, ww, C)
        windows = windows.reshape(n * rows * cols, wh, ww, c)
        return windows.permute(0, 3, 1, 2), grid
    windows = tiles.permute(0, 2, 4, 1, 3, 5)  # (N, nH, nW, C, wh, ww)
    return windows.reshape(n * rows * cols, c, wh, ww), grid


def window_reverse(windows: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Inverse of :func:`window_partition`: -> (N, C, H, W), padding cropped,
    in the memory format of the windows."""
    n, h, w, rows, cols, wh, ww = grid
    c = windows.shape[1]
    tiles = windows.view(n, rows, cols, c, wh, ww)  # (N, nH, nW, C, wh, ww)
    if is_channels_last(windows):
        x = tiles.permute(0, 1, 4, 2, 5, 3)  # (N, nH, wh, nW, ww, C)
        x = x.reshape(n, rows * wh, cols * ww, c).permute(0, 3, 1, 2)
    else:
        x = tiles.permute(0, 3, 1, 4, 2, 5)  # (N, C, nH, wh, nW, ww)
        x = x.reshape(n, c, rows * wh, cols * ww)
    return x[:, :, :h, :w]


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h*w, C), a view (free for channels_last maps)."""
    return x.flatten(2).transpose(1, 2)


def _softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim. bf16 scores on the CPU go through fp32:
    PyTorch's bf16 softmax there is about twice as slow as casting to fp32,
    taking the fp32 softmax and casting back (and less exact)."""
    if scores.dtype == torch.bfloat16 and scores.device.type == 'cpu':
        return scores.softmax(dim=-1, dtype=torch.float32).to(scores.dtype)
    return scores.softmax(dim=-1)


def _fused_heads(x: torch.Tensor) -> bool:
    """Whether the heads over ``x`` (channels_last, fp32, a CPU inference
    call) can run as one call of our kernel each
    (:func:`efficientvit_mm.deploy.native.window_attention`)."""
    return (x.dtype == torch.float32 and cpu_inference(x)
            and native.available())


class CascadedGroupAttention(nn.Module):
    """Cascaded group attention with LeViT-style biases, over local windows.

    The channels are split into ``num_heads`` groups. Head ``i`` projects
    ``split_i + out_{i-1}`` (its own split plus the previous head's output) to
    Q and K of ``key_dim`` channels and V of ``C / num_heads`` channels; Q gets
    a depthwise conv of ``kernels[i]``. Each head adds a learned bias indexed
    by the absolute (dy, dx) offset inside a ``window_size`` window. The
    concatenated head outputs go through ReLU and a 1x1 ConvNorm.

    Maps larger than the window are zero-padded to a multiple of it, attended
    per window and cropped back. A map that fits in one window (H, W <= w) is
    attended whole with the sub-grid of biases of its own offsets. Traced
    graphs (ONNX export) make that choice, and compute the bias index, from
    the input's shape in the graph, so one graph is exact at every size.

    With ``cascade=False`` every head sees all channels and no previous head:
    plain multi-head attention (MHSA), for the paper's head-similarity study.

    Shape: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, embed_dims: int, key_dim: int, num_heads: int,
                 window_size: int = 7, kernels: Sequence[int] = (5, 5, 5, 5),
                 cascade: bool = True, norm_cfg: dict = dict(type='BN'),
                 deploy: bool = False):
        super().__init__()
        if embed_dims % num_heads:
            raise ConfigValueError(
                f'embed_dims ({embed_dims}) must be divisible by '
                f'num_heads ({num_heads})')
        if len(kernels) < num_heads:
            raise ConfigValueError(f'need one Q kernel per head: got kernels='
                                   f'{list(kernels)} for {num_heads} heads')
        self.embed_dims = embed_dims
        self.key_dim = key_dim
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.window_size = window_size
        self.cascade = cascade
        self.scale = key_dim**-0.5

        in_dims = self.head_dims if cascade else embed_dims
        self.qkvs = nn.ModuleList(
            ConvNorm(in_dims, 2 * key_dim +
                     self.head_dims, norm_cfg=norm_cfg, deploy=deploy)
            for _ in range(num_heads))
        self.dws = nn.ModuleList(
            ConvNorm(key_dim, key_dim, k, 1, k //
                     2, groups=key_dim, norm_cfg=norm_cfg, deploy=deploy)
            for k in kernels[:num_heads])
        self.proj = ConvNorm(embed_dims, embed_dims, bn_weight_init=0.,
                             norm_cfg=norm_cfg, deploy=deploy)
        self.attention_biases = nn.Parameter(
            torch.zeros(num_heads, window_size * window_size))
        # (H, W, device) -> offset index; (H, W) -> (stamp, gathered biases).
        self._index_cache: Dict[tuple, torch.Tensor] = {}
        self._bias_cache: Dict[Tuple[int, int], tuple] = {}

    # ------------------------------------------------------------------ biases
    def _offset_index(self, height: int, width: int,
                      device: torch.device) -> torch.Tensor:
        key = (height, width, device)
        index = self._index_cache.get(key)
        if index is None:
            index = relative_offset_index(height, width, self.window_size,
                                          device)
            self._index_cache[key] = index
        return index

    def attention_bias(self, height: int, width: int) -> torch.Tensor:
        """Biases of an ``height x width`` map: (num_heads, H*W, H*W).

        Traced, the index is computed in the graph from the sizes. Outside
        training and tracing (and when no gradient is wanted) the index and
        the gathered table are cached. The cache entry is keyed on the
        parameter's device, dtype, storage and version counter, so
        ``.to()``, ``load_state_dict`` and optimiser steps can never leave a
        stale table behind.
        """
        biases = self.attention_biases
        tracing = torch.jit.is_tracing()  # sizes are 0-d tensors then
        index = (
            relative_offset_index(height, width, self.window_size,
                                  biases.device)
            if tracing else self._offset_index(height, width, biases.device))
        if (tracing or self.training or torch.compiler.is_compiling()
                or biases.is_inference()
                or (torch.is_grad_enabled() and biases.requires_grad)):
            # (inference tensors, e.g. a model copied under inference_mode,
            # have no version counter to key a cache on)
            return biases[:, index]
        stamp = (biases.device, biases.dtype, biases.data_ptr(),
                 biases._version)
        cached = self._bias_cache.get((height, width))
        if cached is None or cached[0] != stamp:
            cached = (stamp, biases.detach()[:, index])
            self._bias_cache[(height, width)] = cached
        return cached[1]

    def train(self, mode: bool = True):
        self._bias_cache.clear()
        return super().train(mode)

    # ----------------------------------------------------------------- forward
    def head_outputs(self, x: torch.Tensor,
                     window: Optional[Window] = None) -> List[torch.Tensor]:
        """The cascade over the heads, within each map of ``x`` (one window
        per sample): list of per-head outputs, (B, C/h, H, W) each.

        ``window`` gives (H, W) when ``x`` is a traced partition: the sizes
        the partition was made with stay dynamic in ONNX graphs, where the
        exporter may freeze the shape it infers for a reshape's output.

        Works in either memory format: on channels_last maps the tokens are
        free views and each head's output is written token-major, so the
        whole cascade stays channels_last (the layout the folded convs run
        fastest in on the CPU); NCHW maps stay NCHW. At CPU inference on
        channels_last fp32 maps, each head's scores, softmax and weighted sum
        are one call of our kernel.
        """
        h, w = window if window is not None else (x.shape[2], x.shape[3])
        bias = self.attention_bias(h, w)
        token_major = is_channels_last(x)
        fused = token_major and _fused_heads(x)
        splits = x.chunk(self.num_heads, dim=1)
        outs: List[torch.Tensor] = []
        for i, (qkv, dw) in enumerate(zip(self.qkvs, self.dws)):
            if not self.cascade:
                feat = x
            elif i == 0:
                feat = splits[0]
            else:
                feat = splits[i] + outs[-1]
            q, k, v = qkv(feat).split(
                [self.key_dim, self.key_dim, self.head_dims], dim=1)
            q = dw(q)
            if fused and q.stride(1) == k.stride(1) == v.stride(1) == 1:
                # (B, L, C/h) -> channels_last (B, C/h, h, w)
                out = native.window_attention(
                    _tokens(q), _tokens(k), _tokens(v), bias[i],
                    self.scale).transpose(1, 2)
                outs.append(out.view(-1, self.head_dims, h, w))
                continue
            # (B, L, L): q k^T * scale + bias, the bias added by baddbmm
            attn = _softmax(
                torch.baddbmm(bias[i], _tokens(q), k.flatten(2),
                              alpha=self.scale))
            if token_major:  # (B, L, C/h) -> channels_last (B, C/h, h, w)
                out = torch.bmm(attn, _tokens(v)).transpose(1, 2)
            else:  # (B, C/h, L), NCHW
                out = torch.bmm(v.flatten(2), attn.transpose(1, 2))
            outs.append(out.view(-1, self.head_dims, h, w))
        return outs

    def attend(self, x: torch.Tensor,
               window: Optional[Window] = None) -> torch.Tensor:
        """Attention within each map of ``x`` (one window per sample)."""
        heads = torch.cat(self.head_outputs(x, window), dim=1)
        return self.proj(F.relu(heads, inplace=True))

    def window_dims(self, x: torch.Tensor) -> Window:
        """The windows ``x`` is attended in: the map itself when it fits in
        one window, else ``(w, w)``. Traced, the choice is made in the graph
        (0-d tensors from ``x.shape``), so the graph follows the input."""
        h, w = x.shape[2], x.shape[3]
        ws = self.window_size
        if torch.jit.is_tracing():
            fits = (h <= ws) & (w <= ws)
            return torch.where(fits, h, ws), torch.where(fits, w, ws)
        return (h, w) if h <= ws and w <= ws else (ws, ws)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = self.window_dims(x)
        if not torch.jit.is_tracing() and window == tuple(x.shape[2:]):
            return self.attend(x)  # one window: no partition (eager)
        windows, grid = window_partition(x, window)
        return window_reverse(self.attend(windows, window), grid)

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, key_dim={self.key_dim}, '
                f'num_heads={self.num_heads}, window_size={self.window_size}, '
                f'cascade={self.cascade}')
