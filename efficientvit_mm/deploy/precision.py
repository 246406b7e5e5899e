"""bf16 inference on CPUs with bf16 matrix units (AMX or AVX512-BF16).

:func:`to_bf16` turns a deploy model's compute-heavy parts (backbone, neck,
dense heads) to bfloat16: their weights are cast once, their inputs are
cast on the way in, their outputs back to fp32 on the way out. The folded
convolutions then run through oneDNN's bf16 kernels (with the ReLU and
residual adds fused, see :mod:`.cpu_conv`) and the attention's matrix products
in bf16; what follows the parts (box decoding, NMS, resizing, argmax) stays
in fp32, so coordinates keep their precision.
"""
from typing import List, Sequence

import torch
import torch.nn as nn

# the parts of an OpenMMLab model that carry its dense compute
PARTS = ('backbone', 'neck', 'bbox_head', 'rpn_head', 'decode_head',
         'auxiliary_head', 'head')


def bf16_supported() -> bool:
    """Whether this CPU has bf16 matrix units and torch's oneDNN bf16
    kernels can use them."""
    from ..benchmarking.machine import bf16_units
    check = getattr(
        getattr(torch.ops, 'mkldnn', None), '_is_mkldnn_bf16_supported', None)
    return bool(bf16_units()) and check is not None and check()


def _cast(value, dtype: torch.dtype):
    """``value`` with every floating tensor in it cast to ``dtype``."""
    if torch.is_tensor(value):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        cast = [_cast(v, dtype) for v in value]
        return type(value)(cast) if isinstance(value, list) else tuple(cast)
    if isinstance(value, dict):
        return {k: _cast(v, dtype) for k, v in value.items()}
    return value


def _bf16_in(module, args, kwargs):
    return _cast(args, torch.bfloat16), _cast(kwargs, torch.bfloat16)


def _fp32_out(module, args, kwargs, output):
    return _cast(output, torch.float32)


def bf16_parts(model: nn.Module) -> List[str]:
    """The names of ``model``'s parts :func:`to_bf16` converts ([''] for a
    bare backbone, i.e. the model itself)."""
    names = [
        n for n in PARTS if isinstance(getattr(model, n, None), nn.Module)
    ]
    return names or ['']


def to_bf16(model: nn.Module, parts: Sequence[str] = None) -> nn.Module:
    """Run ``model``'s ``parts`` (default: :func:`bf16_parts`) in bf16 with
    fp32 in- and outputs, in place; returns ``model``.

    Meant for deploy models (BatchNorm folded) at inference. Calling it
    twice is harmless.
    """
    for name in parts if parts is not None else bf16_parts(model):
        part = model.get_submodule(name) if name else model
        if getattr(part, '_evit_bf16', False):
            continue
        part.to(torch.bfloat16)
        part.register_forward_pre_hook(_bf16_in, with_kwargs=True)
        part.register_forward_hook(_fp32_out, with_kwargs=True)
        part._evit_bf16 = True
    return model
