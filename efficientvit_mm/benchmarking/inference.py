"""Inference speed: throughput, batch-1 latency and peak memory of a model
in several modes, timed interleaved in one process.

The paper's method: CPU at batch 16, one thread, 224x224; GPU at batch 2048
with fp16 autocast. Images/s come from the median of several timed runs
after a warm-up, so one slow run (a page fault, another process) does not
move the figure.

Modes:

* ``eager``: the model as built;
* ``deploy``: every BatchNorm folded (``switch_to_deploy``); on the CPU
  the backbone's forward replays from C++ after its second call with a
  shape (:mod:`efficientvit_mm.deploy.replay`), which the warm-up covers;
* ``bf16``: the deploy model with its dense parts in bfloat16, fp32 in and
  out (:func:`efficientvit_mm.deploy.precision.to_bf16`; for CPUs with bf16
  matrix units);
* ``compile``: the deploy model through ``torch.compile``
  (:func:`efficientvit_mm.deploy.compiled.compile_for_inference`: on the CPU
  with inductor's weight freezing and C++ wrapper);
* ``cudagraph``: the deploy model captured in a CUDA graph.
"""
import copy
from contextlib import nullcontext
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..apis.model import TensorForward
from ..deploy import switch_to_deploy
from ..deploy.compiled import compile_for_inference
from ..deploy.precision import to_bf16
from .machine import describe_machine
from .timing import median, peak_memory, time_interleaved

MODES = ('eager', 'deploy', 'bf16', 'compile', 'cudagraph')
TIMM = 'timm eager'


def autocast_context(device: torch.device, amp: bool):
    """fp16 autocast on CUDA, bf16 on the CPU, nothing without ``amp``."""
    if not amp:
        return nullcontext()
    dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


def _format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) \
        if channels_last else x.contiguous()


class CudaGraphRunner(nn.Module):
    """Replays one captured CUDA graph of ``model`` for a fixed input shape.

    The input is copied into a static buffer; outputs are the graph's static
    tensors (clone them to keep them across calls).
    """

    def __init__(self, model: nn.Module, example: torch.Tensor, amp: bool,
                 warmup: int = 3):
        super().__init__()
        if example.device.type != 'cuda':
            raise ValueError('cudagraph mode needs --device cuda')
        self.model = model
        self.static_input = example.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode(), \
                autocast_context(example.device, amp):
            for _ in range(warmup):
                model(self.static_input)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode(), \
                autocast_context(example.device, amp):
            self.static_output = model(self.static_input)

    def forward(self, x: torch.Tensor):
        if x.shape != self.static_input.shape:
            raise ValueError(f'graph captured for '
                             f'{tuple(self.static_input.shape)}, got '
                             f'{tuple(x.shape)}')
        self.static_input.copy_(x)
        self.graph.replay()
        return self.static_output


def prepare(model: nn.Module, mode: str, example: torch.Tensor,
            channels_last: bool = True, amp: bool = False) -> Callable:
    """A callable running a copy of ``model`` in ``mode`` on inputs like
    ``example``; ``channels_last`` converts weights and inputs to NHWC."""
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    model = copy.deepcopy(model).eval().to(example.device)
    if mode != 'eager':
        switch_to_deploy(model)
    if mode == 'bf16':
        to_bf16(model.model if isinstance(model, TensorForward) else model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if mode == 'compile':
        model = compile_for_inference(model, example.device)
    if mode == 'cudagraph':
        model = CudaGraphRunner(model, _format(example, channels_last), amp)
    return model


def benchmark(models: Dict[str, tuple], batch_size: int, shape: Sequence[int],
              device: torch.device, amp: bool = False,
              channels_last: Optional[Dict[str, bool]] = None, warmup: int = 3,
              repeats: int = 7, calls: int = 3, latency_calls: int = 10,
              min_run_s: float = 0.5) -> Dict[str, dict]:
    """Throughput (img/s), batch-1 latency (ms) and peak memory (MiB).

    ``models`` maps a name to ``(fn, fn_batch1)``: the callables for the
    batch and for batch 1 (the same one unless a mode fixes shapes, as CUDA
    graphs do). All are timed interleaved in this process; each timed run
    lasts at least ``min_run_s``.
    """
    device = torch.device(device)
    channels_last = channels_last or {}
    x = torch.randn(batch_size, 3, *shape, device=device)
    inputs = {
        name: (_format(x, channels_last.get(name, True)),
               _format(x[:1].clone(), channels_last.get(name, True)))
        for name in models
    }

    def step(fn, inp):

        def call():
            with torch.inference_mode(), autocast_context(device, amp):
                fn(inp)

        return call

    batch_s = time_interleaved(
        {
            name: step(fns[0], inputs[name][0])
            for name, fns in models.items()
        }, warmup, repeats, device, calls, min_run_s)
    single_s = time_interleaved(
        {
            name: step(fns[1], inputs[name][1])
            for name, fns in models.items()
        }, warmup, repeats, device, latency_calls, min_run_s)
    results = {}
    for name, (fn, _) in models.items():
        seconds = median(batch_s[name])
        peak = None  # torch's allocator does not see other runtimes
        if getattr(fn, 'uses_torch_memory', True):
            peak = peak_memory(step(fn, inputs[name][0]), device.type)
            peak += inputs[name][0].numel() * inputs[name][0].element_size()
            peak /= 2**20
        results[name] = dict(images_per_s=batch_size / seconds,
                             batch_ms=seconds * 1e3,
                             latency_ms=median(single_s[name]) * 1e3,
                             peak_mib=peak)
    return results


class OrtModel:
    """An onnxruntime session called like a module on torch tensors (for
    the timing engine): the input goes in as a C-contiguous array."""

    uses_torch_memory = False

    def __init__(self, session, input_name: str = 'input'):
        self.session = session
        self.input_name = input_name

    def __call__(self, x: torch.Tensor):
        return self.session.run(None,
                                {self.input_name: x.contiguous().numpy()})


def onnx_runtimes(model: nn.Module, cfg, shape: Sequence[int], folder: str,
                  calibration: Sequence,
                  threads: int = 1) -> Dict[str, OrtModel]:
    """``model`` (built from ``cfg``) exported whole to ``folder`` at
    ``shape`` (:func:`efficientvit_mm.deploy.onnx.export_model`, which
    folds it where it has a deploy mode) and its static INT8 twin,
    calibrated on ``calibration`` (input arrays: they set its speed, not
    its accuracy, when random), as onnxruntime callables: ``{'fp32': ...,
    'int8': ...}``."""
    import os.path as osp

    from ..deploy import onnx
    from ..deploy.quantize import quantize_int8
    fp32 = osp.join(folder, 'fp32.onnx')
    onnx.export_model(model, cfg, shape, fp32)
    int8 = quantize_int8(fp32, osp.join(folder, 'int8.onnx'), calibration)
    return {
        kind: OrtModel(onnx.ort_session(path, threads))
        for kind, path in (('fp32', fp32), ('int8', int8))
    }


def timm_twin(classifier: nn.Module, arch: str) -> nn.Module:
    """timm's ``efficientvit_<arch>``; ``classifier`` (an mmpretrain
    EfficientViT classifier) is given the twin's random weights, so both
    compute the same function."""
    from ..checkpoint import split_efficientvit_state_dict
    from ..errors import UserError
    try:
        import timm
    except ModuleNotFoundError:
        raise UserError('--compare-timm needs timm: pip install timm') \
            from None
    twin = timm.create_model(f'efficientvit_{arch}',
                             num_classes=classifier.head.num_classes)
    backbone, head, _ = split_efficientvit_state_dict(twin.state_dict())
    state = {f'backbone.{k}': v for k, v in backbone.items()}
    state.update({f'head.{k}': v for k, v in head.items()})
    classifier.load_state_dict(state, strict=True)
    return twin


def benchmark_config(cfg, modes: Sequence[str] = ('eager', 'deploy'),
                     device: str = 'cpu', batch_size: Optional[int] = None,
                     shape: Optional[Tuple[int,
                                           int]] = None, amp: bool = False,
                     channels_last: bool = True, compare_timm: bool = False,
                     threads: Optional[int] = None, **timing) -> dict:
    """Time the model of ``cfg`` in ``modes`` (and timm's twin with
    ``compare_timm``), interleaved; returns the figures with the setting
    and the machine they were measured on.

    Defaults follow the paper: on the CPU one thread, batch 16; on CUDA
    batch 2048. ``timing`` goes to :func:`benchmark` (``repeats``...).
    """
    from ..apis.model import DEFAULT_SHAPES, tensor_model
    from ..errors import UserError
    from ..runtime.config import task_of
    task = task_of(cfg)
    device = torch.device(device)
    if device.type == 'cpu' or threads:
        torch.set_num_threads(threads or 1)
    batch = batch_size or (2048 if device.type == 'cuda' else 16)
    shape = tuple(shape or DEFAULT_SHAPES[task])
    arch = cfg.model.backbone.get('arch')
    net = tensor_model(cfg, shape)
    example = torch.randn(batch, 3, *shape, device=device)
    models, layouts = {}, {}
    timm_model = None
    if compare_timm:
        if task != 'classification' or not isinstance(arch, str):
            raise UserError('--compare-timm compares ImageNet classifiers: '
                            'use --arch or an *_in1k config')
        timm_model = timm_twin(net.model, arch).eval().to(device)
    for mode in modes:
        fn = prepare(net, mode, example, channels_last, amp)
        fn1 = prepare(net, mode, example[:1], channels_last, amp) \
            if isinstance(fn, CudaGraphRunner) else fn
        models[mode] = (fn, fn1)
        layouts[mode] = channels_last
    if timm_model is not None:  # as shipped: eager, NCHW
        models[TIMM] = (timm_model, timm_model)
        layouts[TIMM] = False
    results = benchmark(models, batch, shape, device, amp, layouts, **timing)
    if timm_model is not None:
        base = results[TIMM]['images_per_s']
        for figures in results.values():
            figures['vs_timm'] = figures['images_per_s'] / base
    precision = ('fp16' if device.type == 'cuda' else 'bf16') if amp \
        else 'fp32'
    return dict(machine=describe_machine(), torch=torch.__version__, task=task,
                arch=arch, device=device.type, threads=torch.get_num_threads(),
                batch=batch, shape=list(shape), precision=precision,
                layout='channels_last' if channels_last else 'NCHW',
                results=results)


def format_results(report: dict, title: str = '') -> str:
    """The figures of :func:`benchmark_config` as a table."""
    results = report['results']
    timm = any('vs_timm' in f for f in results.values())
    shape = report['shape']
    lines = [
        f'machine: {report["machine"]} | torch {report["torch"]}',
        f'model:   {title} ({report["task"]}, {report["arch"]}) | device '
        f'{report["device"]}, threads {report["threads"]}, batch '
        f'{report["batch"]}, {shape[0]}x{shape[1]}, {report["precision"]}, '
        f'{report["layout"]}',
        f'{"mode":<12}{"img/s":>10}{"batch ms":>11}{"b1 ms":>9}'
        f'{"peak MiB":>10}' + (f'{"vs timm":>9}' if timm else '')
    ]
    for name, f in results.items():
        peak = '-' if f['peak_mib'] is None else f'{f["peak_mib"]:.1f}'
        line = (f'{name:<12}{f["images_per_s"]:>10.1f}'
                f'{f["batch_ms"]:>11.2f}{f["latency_ms"]:>9.2f}{peak:>10}')
        if timm:
            line += f'{f["vs_timm"]:>8.2f}x'
        lines.append(line)
    return '\n'.join(lines)
