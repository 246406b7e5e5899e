"""fp32, bf16 and INT8 side by side on a config's val set: the headline
metric of each (top-1, mAP, mIoU), its gap to fp32, and each runtime's
latency on one val image, timed interleaved in the same run.

* ``fp32``: the deploy model (BatchNorm folded) in PyTorch;
* ``bf16``: the same model through :func:`.precision.to_bf16` (only where
  the CPU has bf16 matrix units, unless asked);
* ``int8``: the exported whole model (:func:`.onnx.export_model`) after
  :func:`.quantize.quantize_int8` (static QDQ, per-channel weights),
  calibrated on the first images of the config's *train* split, run by
  onnxruntime (:class:`.onnx_predictor.OnnxPredictor`).
"""
import copy
import os.path as osp
import tempfile
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from ..runtime.config import task_of
from .switch import switch_to_deploy

RUNTIMES = ('fp32', 'bf16', 'int8')
# the largest gap to fp32 the issue allows, in points
MAX_GAP = 1.0


def torch_runtime(model: nn.Module) -> Callable:
    """A collated batch -> data samples, through ``model.test_step``."""

    def predict(batch):
        with torch.inference_mode():
            return model.test_step(batch)

    return predict


def int8_runtime(cfg: Config, model: nn.Module, work_dir: str,
                 calib_images: int = 64, threads: int = 1) -> Callable:
    """Export ``model`` (deploy mode) to ``work_dir``, quantise it to INT8
    calibrated on ``calib_images`` train images, and return its
    onnxruntime predictor."""
    from .onnx import export_model
    from .onnx_predictor import OnnxPredictor
    from .quantize import config_images, preprocessed_batches, quantize_int8
    samples = config_images(cfg, 'train_dataloader', calib_images)
    shape = tuple(samples[0]['inputs'].shape[-2:])
    fp32 = osp.join(work_dir, 'fp32.onnx')
    export_model(copy.deepcopy(model), cfg, shape, fp32)
    int8 = quantize_int8(fp32, osp.join(work_dir, 'int8.onnx'),
                         list(preprocessed_batches(model, samples)))
    return OnnxPredictor(int8, cfg, threads)


def runtimes(cfg: Config, model: nn.Module, work_dir: str,
             names: Sequence[str] = RUNTIMES,
             calib_images: int = 64) -> Dict[str, Callable]:
    """The predictors of ``names`` for the model of ``cfg`` (its weights
    loaded); the model is folded in place."""
    from .precision import to_bf16
    switch_to_deploy(model.eval())
    found = {}
    for name in names:
        if name == 'fp32':
            found[name] = torch_runtime(model)
        elif name == 'bf16':
            found[name] = torch_runtime(to_bf16(copy.deepcopy(model)))
        elif name == 'int8':
            found[name] = int8_runtime(cfg, model, work_dir, calib_images)
        else:
            raise ValueError(f'runtime must be one of {RUNTIMES}: {name!r}')
    return found


def compare(cfg: Config, model: nn.Module, names: Sequence[str] = RUNTIMES,
            num_images: Optional[int] = None, calib_images: int = 64,
            repeats: int = 5) -> dict:
    """``{'metrics': {runtime: {metric: value}}, 'latency_ms': {runtime:
    ms}, 'num_images': n}`` on the first ``num_images`` val images (all
    by default), one image per batch."""
    from ..benchmarking.timing import median, time_interleaved
    from .verify import evaluate, images_to_check, val_dataset
    dataset = val_dataset(cfg)
    count = images_to_check(dataset, num_images)
    batches = [pseudo_collate([dataset[i]]) for i in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        predictors = runtimes(cfg, model, tmp, names, calib_images)
        predictions = {
            name: [run(copy.deepcopy(b)) for b in batches]
            for name, run in predictors.items()
        }
        img_ids = None
        if task_of(cfg) == 'detection' and count < len(dataset):
            img_ids = [p[0].img_id for p in predictions[names[0]]]
        metrics = {
            name: evaluate(cfg, dataset, batches, preds, img_ids)
            for name, preds in predictions.items()
        }
        times = time_interleaved(
            {
                name: (lambda run=run: run(copy.deepcopy(batches[0])))
                for name, run in predictors.items()
            }, warmup=2, repeats=repeats)
    return dict(metrics=metrics, num_images=count, latency_ms={
        k: 1e3 * median(v)
        for k, v in times.items()
    })


def gaps(report: dict, reference: str = 'fp32') -> Dict[str, float]:
    """Each runtime's largest metric gap to ``reference``, in points."""
    ref = report['metrics'][reference]
    return {
        name: max((abs(m[k] - ref[k]) for k in ref), default=0.)
        for name, m in report['metrics'].items() if name != reference
    }


def format_report(report: dict) -> str:
    """The table :func:`compare` measured, one runtime a line."""
    gap = gaps(report)
    lines = []
    for name, metrics in report['metrics'].items():
        figures = ', '.join(f'{k} {v:.2f}' for k, v in metrics.items())
        note = '' if name not in gap else (
            f' | gap {gap[name]:.2f} points' +
            ('' if gap[name] <= MAX_GAP else f' (> {MAX_GAP:g}: target '
             'missed)'))
        lines.append(f'{name:>5}: {figures} | '
                     f'{report["latency_ms"][name]:.1f} ms/image{note}')
    return '\n'.join(lines)
