"""A deploy model through ``torch.compile``, set up for inference."""
from typing import Union

import torch
import torch.nn as nn

from . import native

# inductor settings for CPU inference: ``freezing`` folds the weights into
# the graph as constants (pre-packed for oneDNN, convs fused with their ReLU
# and residual adds); ``cpp_wrapper`` calls the kernels from generated C++
# instead of Python, which matters for a network of many small operators
CPU_OPTIONS = dict(freezing=True, cpp_wrapper=True)

# dynamo keeps one compiled version of a forward per model instance and
# input shape (frozen weights are guarded by identity), at most
# ``recompile_limit`` (8) for all instances together, and past it runs the
# model eagerly without a word: a benchmark compiling M0-M5 in one process
# most likely timed M4 and M5 eager. Here the limit is higher, and hitting
# it is an error.
DYNAMO_OPTIONS = dict(recompile_limit=64, fail_on_recompile_limit_hit=True)


class CompiledForInference:
    """``torch.compile(model)`` called with inductor's config patched to
    ``options`` (and dynamo's to :data:`DYNAMO_OPTIONS`) around every call:
    compiling happens at the first call of each input shape, and inductor
    reads ``freezing`` there from its global config
    (``torch.compile(options=...)`` does not reach it)."""

    def __init__(self, model: nn.Module, options: dict):
        self.model = model
        self.options = dict(options)
        self._compiled = torch.compile(model)

    def __call__(self, *args, **kwargs):
        from torch._dynamo import config as dynamo
        from torch._inductor import config as inductor
        with dynamo.patch(**DYNAMO_OPTIONS), inductor.patch(**self.options):
            return self._compiled(*args, **kwargs)


def compile_for_inference(model: nn.Module,
                          device: Union[str, torch.device] = 'cpu'):
    """``torch.compile(model)`` for inference on ``device``; on the CPU with
    :data:`CPU_OPTIONS`. Meant for a deploy model (BatchNorm folded). Call
    it without autograd (``torch.inference_mode()`` or ``no_grad``), where
    freezing applies; each new input shape compiles again."""
    cpu = torch.device(device).type == 'cpu'
    if cpu:  # loaded before tracing, which then writes calls of them
        native.available()
    return CompiledForInference(model, CPU_OPTIONS if cpu else {})
