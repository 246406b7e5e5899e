"""Static INT8 quantisation of exported ONNX models with onnxruntime.

QDQ format (QuantizeLinear/DequantizeLinear pairs around each quantised
operator, which onnxruntime's CPU provider fuses into integer kernels),
per-channel INT8 weights, 8-bit activations whose ranges are calibrated on
training images prepared exactly as the model's data preprocessor prepares
them.

The activations' type follows the CPU (:func:`activation_type`): unsigned
(U8S8) where x86 has VNNI, whose u8 x s8 dot products onnxruntime's integer
kernels are built on (signed activations, S8S8, take a much slower path
there: see docs/deployment.md), signed elsewhere, where u8 x s8 products
without VNNI can saturate. A few nodes stay fp32 for speed
(:func:`fp32_nodes`).
"""
import os
from typing import Iterator, List, Optional, Sequence

import numpy as np
import torch

from ..errors import UserError

# the operators quantised: the convolutions and the layers' matrix products
# that carry the compute, and ReLU, so that the quantiser folds each ReLU
# into the output range of the conv before it instead of requantising after
# it. The rest (resizing, box decoding, NMS and its concatenations) stays
# fp32, so box coordinates keep their precision (onnxruntime may still run
# an addition of two quantised convs' outputs in integers); so do the nodes
# of :func:`fp32_nodes`.
QUANTISED_OPS = ('Conv', 'MatMul', 'Gemm', 'Relu')

# the smallest weight (elements) of a MatMul or Gemm worth quantising: the
# fully connected layers of two-stage detectors' RoI heads (12544 x 1024)
# are, the classifier's (192-384 x 1000) and squeeze-excite layers are not
MIN_INT8_WEIGHT = 2**20

# x86 flags of the u8 x s8 dot-product instructions (VNNI)
VNNI_FLAGS = ('avx512_vnni', 'avx_vnni', 'amx_int8')


def activation_type(flags=None) -> str:
    """'uint8' where this CPU has VNNI (:data:`VNNI_FLAGS`), else 'int8':
    the activation type onnxruntime runs fastest without saturating."""
    if flags is None:
        from ..benchmarking.machine import cpu_flags
        flags = cpu_flags()
    return 'uint8' if any(f in flags for f in VNNI_FLAGS) else 'int8'


def fp32_nodes(model) -> List[str]:
    """The names of the nodes of the ONNX ``model`` kept fp32 among those
    :data:`QUANTISED_OPS` covers:

    * convs that read one of the graph's inputs (the image): three input
      channels make a poor integer GEMM, and the image keeps its precision;
    * MatMuls and Gemms without a weight of :data:`MIN_INT8_WEIGHT`
      elements: attention's Q K^T and A V (two activations), squeeze-excite
      and classifier layers; small products whose integer form costs more
      in quantising and layout changes than it saves.
    """
    inputs = {i.name for i in model.graph.input}
    sizes = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer}

    def small_product(node) -> bool:
        return node.op_type in ('MatMul', 'Gemm') and max(
            sizes.get(i, 0) for i in node.input) < MIN_INT8_WEIGHT

    return [
        n.name for n in model.graph.node
        if (n.op_type == 'Conv' and n.input and n.input[0] in inputs)
        or small_product(n)
    ]


def config_images(cfg, split: str = 'train_dataloader',
                  num: int = 64) -> List[dict]:
    """The first ``num`` samples of a split of ``cfg`` through its *test*
    pipeline (no augmentation), as the dataloader packs them."""
    import copy

    from .verify import build_dataset
    ds_cfg = copy.deepcopy(cfg[split].dataset)
    ds_cfg.pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    ds_cfg.pop('filter_cfg', None)
    ds_cfg['test_mode'] = True
    dataset = build_dataset(cfg, ds_cfg, f'{split} (INT8 calibration)',
                            'leave INT8 out (--runtimes fp32 bf16)')
    if len(dataset) == 0:
        raise UserError(f'{split} of the config has no samples to '
                        f'calibrate on')
    return [dataset[i] for i in range(min(num, len(dataset)))]


def preprocessed_batches(model, samples: List[dict],
                         batch_size: int = 8) -> Iterator[np.ndarray]:
    """(N, 3, H, W) float32 arrays: ``samples`` through ``model``'s data
    preprocessor (normalisation, channel order, padding), the input of the
    exported graph."""
    pre = model.data_preprocessor.eval()
    for start in range(0, len(samples), batch_size):
        part = samples[start:start + batch_size]
        batch = dict(inputs=[s['inputs'] for s in part],
                     data_samples=[s['data_samples'] for s in part])
        with torch.no_grad():
            yield pre(batch, False)['inputs'].float().numpy()


class _Calibration:
    """onnxruntime's calibration reader over prepared batches."""

    def __init__(self, batches, input_name: str):
        self._feeds = iter([{input_name: b} for b in batches])

    def get_next(self) -> Optional[dict]:
        return next(self._feeds, None)


def quantize_int8(fp32_path: str, int8_path: str, batches,
                  input_name: str = 'input',
                  op_types: Sequence[str] = QUANTISED_OPS,
                  activations: Optional[str] = None) -> str:
    """Write the static INT8 (QDQ, per-channel weights) twin of the ONNX
    model ``fp32_path`` to ``int8_path``, with activation ranges
    calibrated on ``batches``; only ``op_types`` are quantised, less
    :func:`fp32_nodes`. ``activations`` is 'uint8' or 'int8'
    (default: :func:`activation_type` of this CPU). Returns ``int8_path``."""
    activations = activations or activation_type()
    if activations not in ('uint8', 'int8'):
        raise UserError(f"activations must be 'uint8' or 'int8', got "
                        f'{activations!r}')
    try:
        import onnx
        from onnxruntime.quantization import (CalibrationDataReader,
                                              QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ModuleNotFoundError:
        raise UserError('INT8 quantisation needs onnxruntime: pip install '
                        'onnx onnxruntime') from None
    reader = type('Reader', (_Calibration, CalibrationDataReader),
                  {})(batches, input_name)
    # shapes inferred and the graph simplified first, as onnxruntime
    # recommends for quantisation
    prepared = int8_path + '.prepared.onnx'
    quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
    try:
        quantize_static(
            prepared, int8_path, reader, quant_format=QuantFormat.QDQ,
            per_channel=True, weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8 if activations == 'uint8' else
            QuantType.QInt8, op_types_to_quantize=list(op_types),
            nodes_to_exclude=fp32_nodes(onnx.load(prepared)))
    finally:
        os.remove(prepared)
    return int8_path
