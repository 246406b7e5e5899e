"""A deploy model through ``torch.compile``, set up for inference."""
from typing import Union

import torch
import torch.nn as nn

# inductor options for CPU inference: ``freezing`` folds the weights into
# the graph as constants (pre-packed for oneDNN, convs fused with their ReLU
# and residual adds); ``cpp_wrapper`` calls the kernels from generated C++
# instead of Python, which matters for a network of many small operators
CPU_OPTIONS = dict(freezing=True, cpp_wrapper=True)


def compile_for_inference(model: nn.Module,
                          device: Union[str, torch.device] = 'cpu'):
    """``torch.compile(model)`` for inference on ``device``; on the CPU with
    :data:`CPU_OPTIONS`. Meant for a deploy model (BatchNorm folded). Call
    it without autograd (``torch.inference_mode()`` or ``no_grad``), where
    freezing applies; each new input shape compiles again."""
    if torch.device(device).type == 'cpu':
        return torch.compile(model, options=dict(CPU_OPTIONS))
    return torch.compile(model)
