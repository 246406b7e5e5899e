"""Static INT8 quantisation of exported ONNX models with onnxruntime.

QDQ format (QuantizeLinear/DequantizeLinear pairs around each quantised
operator, which onnxruntime's CPU provider fuses into integer kernels),
per-channel INT8 weights, INT8 activations whose ranges are calibrated on
training images prepared exactly as the model's data preprocessor prepares
them.
"""
import os
from typing import Iterator, List, Optional, Sequence

import numpy as np
import torch

from ..errors import UserError

# the operators quantised: the convolutions and matrix products that carry
# the compute; the rest (additions, resizing, box decoding, NMS and its
# concatenations) stays fp32, so box coordinates keep their precision
QUANTISED_OPS = ('Conv', 'MatMul', 'Gemm')


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
                  op_types: Sequence[str] = QUANTISED_OPS) -> str:
    """Write the static INT8 (QDQ, per-channel weights) twin of the ONNX
    model ``fp32_path`` to ``int8_path``, with activation ranges
    calibrated on ``batches``; only ``op_types`` are quantised. Returns
    ``int8_path``."""
    try:
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
        quantize_static(prepared, int8_path, reader,
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8,
                        activation_type=QuantType.QInt8,
                        op_types_to_quantize=list(op_types))
    finally:
        os.remove(prepared)
    return int8_path
