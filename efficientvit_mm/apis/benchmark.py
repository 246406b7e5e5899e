"""Inference timing: throughput, batch-1 latency and peak memory.

The paper's method: CPU at batch 16, one thread, 224x224; GPU at batch 2048
with fp16 autocast. Images/s come from the median of several timed runs
after a warm-up, so one slow run (a page fault, another process) does not
move the figure.
"""
import copy
import math
import statistics
import time
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn

from ..models.utils import switch_to_deploy
from .measure import peak_memory, sync

MODES = ('eager', 'deploy', 'compile', 'cudagraph')


def autocast_context(device: torch.device, amp: bool):
    """fp16 autocast on CUDA, bf16 on the CPU, nothing without ``amp``."""
    if not amp:
        return nullcontext()
    dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


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
            raise ValueError(f'graph captured for {tuple(self.static_input.shape)}'
                             f', got {tuple(x.shape)}')
        self.static_input.copy_(x)
        self.graph.replay()
        return self.static_output


def prepare(model: nn.Module, mode: str, example: torch.Tensor,
            channels_last: bool = True, amp: bool = False) -> Callable:
    """A callable running ``model`` in ``mode`` on inputs like ``example``.

    * eager: the model as built;
    * deploy: every BatchNorm folded (``switch_to_deploy``);
    * compile: the deploy model through ``torch.compile``;
    * cudagraph: the deploy model captured in a CUDA graph.

    ``channels_last`` converts weights and inputs to NHWC memory format.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    model = copy.deepcopy(model).eval().to(example.device)
    if mode != 'eager':
        switch_to_deploy(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if mode == 'compile':
        model = torch.compile(model)
    if mode == 'cudagraph':
        model = CudaGraphRunner(model, _format(example, channels_last), amp)
    return model


def _format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) \
        if channels_last else x.contiguous()


class Timer:
    """Times one callable on one input; the figures of several repeats."""

    def __init__(self, fn: Callable, x: torch.Tensor, channels_last: bool,
                 amp: bool, iters: int):
        self.fn = fn
        self.x = _format(x, channels_last)
        self.amp = amp
        self.iters = iters
        self.seconds: List[float] = []

    def run(self) -> float:
        device = self.x.device
        with torch.inference_mode(), autocast_context(device, self.amp):
            sync(device)
            start = time.perf_counter()
            for _ in range(self.iters):
                self.fn(self.x)
            sync(device)
        elapsed = (time.perf_counter() - start) / self.iters
        self.seconds.append(elapsed)
        return elapsed

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def interleaved(timers: Dict[str, Timer], warmup: int, repeats: int,
                min_run_s: float = 0.5) -> None:
    """Warm every timer up, then time them in turn ``repeats`` times, so
    slow phases of the machine hit all of them alike.

    Each timed run lasts at least ``min_run_s`` (more iterations for fast
    models): like the paper's back-to-back timing, a run is not dominated by
    the caches the previous model left cold.
    """
    for timer in timers.values():
        for _ in range(warmup):
            timer.run()
        per_iter = min(timer.seconds)
        timer.iters = max(timer.iters, math.ceil(min_run_s / per_iter))
        timer.seconds.clear()
    for _ in range(repeats):
        for timer in timers.values():
            timer.run()


def inference_peak_memory(fn: Callable, x: torch.Tensor,
                          channels_last: bool, amp: bool) -> float:
    """Peak bytes allocated while running ``fn(x)`` once, input included."""
    x = _format(x, channels_last)

    def run():
        with torch.inference_mode(), autocast_context(x.device, amp):
            fn(x)

    return peak_memory(run, x.device.type) + x.numel() * x.element_size()


def benchmark(models: Dict[str, tuple], batch_size: int, shape,
              device: torch.device, amp: bool = False,
              channels_last: Optional[Dict[str, bool]] = None,
              warmup: int = 3, repeats: int = 7, iters: int = 3,
              latency_iters: int = 10) -> Dict[str, dict]:
    """Throughput (img/s), batch-1 latency (ms) and peak memory (MiB).

    ``models`` maps a name to ``(fn, fn_batch1)``: the callables for the
    batch and for batch 1 (the same one unless a mode fixes shapes, as CUDA
    graphs do). All are timed interleaved in this process.
    """
    channels_last = channels_last or {}
    x = torch.randn(batch_size, 3, *shape, device=device)
    x1 = x[:1].clone()

    def timers(index, inp, n):
        return {
            name: Timer(fns[index], inp, channels_last.get(name, True), amp,
                        n)
            for name, fns in models.items()
        }

    throughput = timers(0, x, iters)
    interleaved(throughput, warmup, repeats)
    latency = timers(1, x1, latency_iters)
    interleaved(latency, warmup, repeats)
    results = {}
    for name, (fn, _) in models.items():
        results[name] = dict(
            images_per_s=batch_size / throughput[name].median,
            batch_ms=throughput[name].median * 1e3,
            latency_ms=latency[name].median * 1e3,
            peak_mib=inference_peak_memory(
                fn, x, channels_last.get(name, True), amp) / 2**20)
    return results
