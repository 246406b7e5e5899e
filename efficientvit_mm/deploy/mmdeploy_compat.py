"""What mmdeploy 1.3.1 needs to export on torch 2.14, applied by
:func:`apply` (each fix tested in ``tests/deploy/test_mmdeploy_compat.py``).

* :func:`export_with_torchscript` -- ``torch.onnx.export`` defaults to
  ``dynamo=True`` since torch 2.9: it needs onnxscript and then rejects
  mmdeploy's ``dynamic_axes``. mmdeploy's rewriter gets a rewrite of
  ``torch.onnx.export`` that passes ``dynamo=False`` (the TorchScript
  exporter mmdeploy's rewrites are written for); it is active only inside
  mmdeploy's export, so other callers keep torch's default.
* :func:`restore_cast_long` -- mmdeploy's ``roi_align`` symbolic (Mask
  R-CNN) imports ``_cast_Long`` from ``torch.onnx.symbolic_opset9``, which
  torch 2.14 no longer has; a stand-in that emits the same ONNX ``Cast`` to
  int64 is put back.
* :func:`upsample_size_in_graph` -- mmseg's ``Upsample`` (the scale heads
  of Semantic FPN) computes its output size with ``int()``, which a trace
  freezes at the export size: the graph then resizes to the wrong size at
  every other input size and still runs, slightly wrong. Inside mmdeploy's
  export the size is computed from the traced shape instead (same values:
  ``floor(size * scale)``).
* :func:`adaptive_pool_in_graph` -- mmdeploy rewrites
  ``adaptive_avg_pool2d`` (UperNet's pyramid pooling) as an ``avg_pool2d``
  whose kernel is ``floor(size / bins)`` at the export size: frozen in the
  graph, so wrong at every other size, wrong at the export size itself
  where the map is not a multiple of the bins, and a crash ("stride should
  not be zero") where the map is smaller than the bins. For onnxruntime it
  is computed exactly instead, from the traced shape, as two matrix
  products with the bins' averaging matrices.
* :func:`fx_wrap_registry_as_dict` -- leaving its rewriter context,
  mmdeploy removes what was added to torch.fx's registry of wrapped
  functions with ``list.pop(-1)``; torch 2.14 keeps that registry in a
  dict, so the export ends in ``KeyError: -1`` whenever a module imported
  during the export registers a function (timm does). The additions are
  removed by key instead, newest first, as mmdeploy meant.
* :mod:`.mmdeploy_two_stage` -- mmdeploy's rewrites of the RPN and of
  the second stage keep other proposals than mmdet; onnxruntime rewrites
  that follow mmdet are registered.
* The opset: mmdeploy's configs use opset 11. Our attention exports from
  opset 11 up (no ``repeat_interleave`` or ``unflatten`` in the graph);
  :data:`OPSET` is the one our exporter uses and the docs recommend.

``import efficientvit_mm`` calls :func:`apply` when mmdeploy is already
imported (mmdeploy's tools load our configs, whose ``custom_imports``
import the package), and our export command calls it itself; a script of
your own calls :func:`apply` before mmdeploy's ``torch2onnx``.
"""
import torch

__all__ = [
    'OPSET', 'adaptive_avg_pool', 'adaptive_pool_in_graph', 'apply',
    'export_with_torchscript', 'fx_wrap_registry_as_dict', 'restore_cast_long',
    'upsample_size_in_graph'
]

# the opset our whole-model exports use (mmdeploy's rewrites, onnxruntime's
# RoiAlign with ``coordinate_transformation_mode`` and our attention all
# work there; 11 works too, see docs/deployment.md)
OPSET = 17

_applied = False


def export_with_torchscript() -> None:
    """Register a rewrite of ``torch.onnx.export`` with ``dynamo=False``,
    active inside mmdeploy's ``RewriterContext`` only."""
    from mmdeploy.core import FUNCTION_REWRITER

    @FUNCTION_REWRITER.register_rewriter('torch.onnx.export')
    def torch_onnx_export__torchscript(*args, **kwargs):
        ctx = FUNCTION_REWRITER.get_context()
        kwargs.setdefault('dynamo', False)
        return ctx.origin_func(*args, **kwargs)


def cast_long(g, value, non_blocking=False):
    """Symbolic of ``value.long()``: an ONNX Cast to int64 (what torch's
    removed ``symbolic_opset9._cast_Long`` emitted)."""
    return g.op('Cast', value, to_i=torch.onnx.TensorProtoDataType.INT64)


def restore_cast_long() -> None:
    """Put :func:`cast_long` back as ``symbolic_opset9._cast_Long`` where
    torch no longer has it."""
    from torch.onnx import symbolic_opset9
    if not hasattr(symbolic_opset9, '_cast_Long'):
        symbolic_opset9._cast_Long = cast_long


def upsample_size_in_graph() -> None:
    """Register a rewrite of mmseg's ``Upsample.forward`` that keeps its
    output size in the traced graph (only while tracing)."""
    from mmdeploy.core import FUNCTION_REWRITER

    @FUNCTION_REWRITER.register_rewriter(
        'mmseg.models.utils.wrappers.Upsample.forward')
    def upsample__forward__traced_size(self, x):
        ctx = FUNCTION_REWRITER.get_context()
        if self.size or not torch.jit.is_tracing():
            return ctx.origin_func(self, x)
        from mmseg.models.utils import resize
        factors = self.scale_factor if isinstance(
            self.scale_factor, tuple) else (self.scale_factor, ) * 2
        size = [(t * f).floor().long() for t, f in zip(x.shape[-2:], factors)]
        return resize(x, size, None, self.mode, self.align_corners)


def _bin_matrix(size, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, size) averaging matrix of adaptive pooling along one axis:
    bin i averages ``[floor(i * size / bins), ceil((i + 1) * size /
    bins))`` (``size`` may be a traced 0-d tensor)."""
    i = torch.arange(bins, device=like.device).unsqueeze(1)
    pos = torch.arange(size, device=like.device).unsqueeze(0)
    start = torch.div(i * size, bins, rounding_mode='floor')
    end = torch.div((i + 1) * size + bins - 1, bins, rounding_mode='floor')
    inside = ((pos >= start) & (pos < end)).to(like.dtype)
    return inside / (end - start).to(like.dtype)


def adaptive_avg_pool(x: torch.Tensor, output_size) -> torch.Tensor:
    """``adaptive_avg_pool2d`` of a (N, C, H, W) ``x`` as matrix products,
    exact at every input size when traced."""
    from torch.nn.modules.utils import _pair
    out_h, out_w = _pair(output_size)
    rows = _bin_matrix(x.shape[2], int(out_h), x)  # (out_h, H)
    cols = _bin_matrix(x.shape[3], int(out_w), x)  # (out_w, W)
    return torch.matmul(torch.matmul(rows, x), cols.t())


def adaptive_pool_in_graph() -> None:
    """Register :func:`adaptive_avg_pool` as onnxruntime's rewrite of
    ``adaptive_avg_pool2d`` (global pooling keeps torch's own op)."""
    from mmdeploy.core import FUNCTION_REWRITER

    @FUNCTION_REWRITER.register_rewriter(
        'torch.nn.functional.adaptive_avg_pool2d', backend='onnxruntime')
    def adaptive_avg_pool2d__exact(input, output_size):
        ctx = FUNCTION_REWRITER.get_context()
        if output_size in (1, (1, 1), [1, 1]):
            return ctx.origin_func(input, output_size)
        return adaptive_avg_pool(input, output_size)


def fx_wrap_registry_as_dict() -> None:
    """Make mmdeploy's rewriter leave torch.fx's wrap registry as it found
    it when that registry is a dict."""
    from mmdeploy.core.rewriters import function_rewriter as rewriter
    registry = rewriter._wrapped_fns_to_patch
    if not isinstance(registry, dict):
        return
    exit_context = rewriter.FunctionRewriter.exit

    def exit_keeping_registry(self):
        for key in list(registry)[self._ori_fx_wrap_num:][::-1]:
            del registry[key]
        exit_context(self)  # (finds nothing left to pop)

    rewriter.FunctionRewriter.exit = exit_keeping_registry


def apply() -> None:
    """Apply every fix, once."""
    global _applied
    if _applied:
        return
    export_with_torchscript()
    restore_cast_long()
    upsample_size_in_graph()
    adaptive_pool_in_graph()
    fx_wrap_registry_as_dict()
    from . import mmdeploy_two_stage
    mmdeploy_two_stage.apply()
    _applied = True
