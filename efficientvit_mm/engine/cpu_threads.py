"""Training on a CPU that other processes share: as many threads as there
are free cores, decided again and again while the run goes on.

OpenMP threads meet at a barrier after every parallel operation. When
another process takes a core, the thread that shares it is descheduled for
whole time slices while its partner waits (spinning, by default), and every
small operation of a small model costs a slice: steps become 10-20x
slower. One thread per free core never waits for a descheduled partner.
:class:`AdaptiveThreadsHook` measures, every ``interval_s``, the CPU time
the other processes use on the cores this process may run on (their busy
time minus this process and its children, the dataloader workers) and
sets torch's thread count to the cores they leave free (at least 1, at
most the count it started with).
"""
import os
import time
from typing import Optional, Set, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

_TICKS = os.sysconf('SC_CLK_TCK') if hasattr(os, 'sysconf') else 100


def _cores_busy(cpus: Optional[Set[int]] = None,
                stat: str = '/proc/stat') -> Tuple[float, float]:
    """(busy, total) CPU seconds since boot of the cores ``cpus`` (every
    core when None), from their lines of ``stat``."""
    busy = total = 0.
    with open(stat) as f:
        for line in f:
            name, *values = line.split()
            if not name.startswith('cpu') or name == 'cpu':
                continue
            if cpus is not None and int(name[3:]) not in cpus:
                continue
            ticks = [float(v) for v in values[:8]]
            total += sum(ticks)  # (guest time is counted in user already)
            busy += sum(ticks) - ticks[3] - ticks[4]  # less idle, iowait
    return busy / _TICKS, total / _TICKS


def own_cores() -> Set[int]:
    """The cores this process may run on (its affinity)."""
    if hasattr(os, 'sched_getaffinity'):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (float(fields[11]) + float(fields[12])) / _TICKS


def _children(pid: int) -> list:
    kids = []
    task_dir = f'/proc/{pid}/task'
    for tid in os.listdir(task_dir):
        try:
            with open(f'{task_dir}/{tid}/children') as f:
                kids += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return kids


def own_cpu() -> float:
    """CPU seconds of this process and its live children."""
    pid = os.getpid()
    total = _process_cpu(pid)
    for child in _children(pid):
        try:
            total += _process_cpu(child)
        except (OSError, IndexError, ValueError):
            pass  # it just ended
    return total


class OtherLoad:
    """How many of ``cpus`` (default: :func:`own_cores`, the cores this
    process may use) other processes kept busy between two calls of
    :meth:`sample` (None where /proc cannot tell). Load on cores this
    process cannot run on does not count."""

    def __init__(self, cpus: Optional[Set[int]] = None):
        self.cpus = own_cores() if cpus is None else set(cpus)
        self._last = self._read()

    def _read(self):
        try:
            busy, total = _cores_busy(self.cpus)
            return busy, total, own_cpu()
        except (OSError, IndexError, ValueError):
            return None

    def sample(self) -> Optional[float]:
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[1] <= last[1]:
            return None
        wall = (now[1] - last[1]) / len(self.cpus)
        others = (now[0] - last[0]) - (now[2] - last[2])
        return max(0., others / wall)


def free_cores(others: float, cores: int) -> int:
    """Cores left when other processes keep ``others`` cores busy."""
    return int(cores - others + 0.5)


@HOOKS.register_module()
class AdaptiveThreadsHook(Hook):
    """Keep torch's CPU threads at the number of cores other processes
    leave free (see the module doc). Does nothing on GPUs or off Linux.

    Args:
        interval_s: seconds between two looks at the machine.
    """
    priority = 'LOWEST'

    def __init__(self, interval_s: float = 2.):
        self.interval_s = interval_s
        self._load: Optional[OtherLoad] = None

    def before_train(self, runner) -> None:
        if torch.cuda.is_available() or not os.path.exists('/proc/stat'):
            return
        self.start(runner, torch.get_num_threads())

    def start(self, runner, max_threads: int, look_s: float = 0.5) -> None:
        """Look at the machine for ``look_s`` and set the threads (at most
        ``max_threads`` from now on)."""
        self.max_threads = max_threads
        cpus = own_cores()
        self.cores = len(cpus)
        self._load = OtherLoad(cpus)
        time.sleep(look_s)  # the first decision, before the first step
        self._adapt(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self._load is not None and \
                time.time() - self._looked >= self.interval_s:
            self._adapt(runner)

    def _adapt(self, runner) -> None:
        self._looked = time.time()
        others = self._load.sample()
        if others is None:
            return
        want = max(1, min(self.max_threads, free_cores(others, self.cores)))
        if want != torch.get_num_threads():
            torch.set_num_threads(want)
            runner.logger.info(
                f'other processes keep {others:.1f} of {self.cores} cores '
                f'busy: training on {want} thread{"s" if want > 1 else ""}')
