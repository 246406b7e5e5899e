"""The one timing engine of the package, and peak-memory readings.

Every figure the benchmarks print comes from :func:`time_interleaved`: the
contenders are warmed up, then timed in turn, run after run, so a slow
phase of the machine (another process, a page-fault storm) hits all of
them alike and the ratios between them stay meaningful.
"""
import math
import os
import statistics
import time
from typing import Callable, Dict, List, Optional

import torch

# kineto, torch.profiler's engine, logs ``USDT: ... profiler_start`` and
# ``profiler_stop`` (and CPU-only notes) to stderr on every profile. Its
# levels run VERBOSE 0 .. ERROR 4, USDT 5; it reads KINETO_LOG_LEVEL once,
# when the first profile starts, so a level above USDT set before that (at
# import, as here) silences it.
KINETO_QUIET_LEVEL = '6'


def quiet_profiler() -> None:
    """Silence kineto's log lines, unless KINETO_LOG_LEVEL says otherwise
    (takes effect if no profile has started in this process yet)."""
    os.environ.setdefault('KINETO_LOG_LEVEL', KINETO_QUIET_LEVEL)


quiet_profiler()


def sync(device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously)."""
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def time_interleaved(
    steps: Dict[str, Callable[[], object]], warmup: int = 3, repeats: int = 7,
    device='cpu', calls: int = 1, min_run_s: float = 0.,
    before_run: Optional[Dict[str, Callable[[], object]]] = None
) -> Dict[str, List[float]]:
    """Seconds per call of each step: ``repeats`` timed runs each, the steps
    taken in turn.

    A run makes ``calls`` calls of the step, then waits for the device;
    ``warmup`` untimed runs come first. With ``min_run_s``, a fast step gets
    as many calls per run as fill ``min_run_s`` (judged by its fastest
    warm-up run), so that a run is not dominated by the caches the previous
    step left cold. ``before_run[name]()``, if given, runs before each run
    of step ``name``, untimed (to set up the conditions it is timed in).
    """
    before_run = before_run or {}

    def run(step, n, name) -> float:
        if name in before_run:
            before_run[name]()
        start = time.perf_counter()
        for _ in range(n):
            step()
        sync(device)
        return (time.perf_counter() - start) / n

    per_run = {}
    for name, step in steps.items():
        fastest = min([run(step, calls, name) for _ in range(warmup)] or [0.])
        per_run[name] = max(calls, math.ceil(min_run_s / fastest)) \
            if min_run_s and fastest > 0 else calls
    seconds: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            seconds[name].append(run(step, per_run[name], name))
    return seconds


def median(seconds: List[float]) -> float:
    return statistics.median(seconds)


def peak_memory(fn: Callable[[], object], device='cpu') -> float:
    """Peak bytes allocated while ``fn()`` runs, above the level before it.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: the allocator records of
    torch.profiler (``[memory]`` events: +size on allocation, -size on
    free) in time order, summed, maximum taken.
    """
    if str(device).startswith('cuda'):
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        sync(device)
        return float(torch.cuda.max_memory_allocated() - base)
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                 record_shapes=False) as prof:
        fn()
    records = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == '[memory]' and e.device_type() == DeviceType.CPU)
    if not records:
        raise RuntimeError('the profiler recorded no CPU allocations')
    level = peak = 0
    for _, delta in records:
        level += delta
        peak = max(peak, level)
    return float(peak)
