"""Timing and peak-memory primitives shared by inference and training
benchmarks."""
import os
import time
from typing import Callable, Dict, List

import torch

# kineto (torch.profiler) prints start/stop lines to stderr unless told not to
os.environ.setdefault('KINETO_LOG_LEVEL', '5')


def sync(device: str) -> None:
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def peak_memory(fn: Callable[[], object], device: str = 'cpu') -> float:
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


def time_interleaved(steps: Dict[str, Callable[[], object]], warmup: int,
                     repeats: int, device: str = 'cpu'
                     ) -> Dict[str, List[float]]:
    """Seconds of each step, ``repeats`` times, the steps taken in turn."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    sync(device)
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times
