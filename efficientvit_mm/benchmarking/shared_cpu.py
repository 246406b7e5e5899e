"""Training steps on a CPU another process joins: the figures of
``benchmarks/demo_under_load.py``.

One process, one model (the detection demo's RetinaNet-M0, a batch of 8
images of 192x192), four contenders timed in turn by
:func:`~efficientvit_mm.benchmarking.timing.time_interleaved`:

* ``fixed`` threads (all cores, OpenMP waiting as configured: the demo
  before :class:`~efficientvit_mm.engine.cpu_threads.AdaptiveThreadsHook`)
  or ``adaptive`` ones (the hook, as the demo configs use it);
* ``idle``: the competitor, a process spinning on one core, is paused
  (SIGSTOP); ``busy``: it runs.

Before each run of an ``adaptive`` contender (untimed) the hook looks at
the machine for a second, as it does within ``interval_s`` of a change, so
the figures are its steady state; its reaction time is that interval plus
one step.
"""
import os
import signal
import subprocess
import sys
import types
from typing import Callable, Dict, List

import torch

from .timing import time_interleaved
from .training import build_for_training, det_batch

DEMO_CONFIG = 'configs/demo/retinanet_efficientvit_m0_shapes.py'


class Competitor:
    """A process spinning on one core, paused or running at will."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, '-c', 'while True: pass'])
        self.pause()

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def run(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _quiet_runner() -> types.SimpleNamespace:
    return types.SimpleNamespace(
        logger=types.SimpleNamespace(info=lambda msg: None))


def contenders(step: Callable, competitor: Competitor, threads: int):
    """(steps, before_run) for :func:`time_interleaved`: one step under
    each ``{fixed|adaptive}/{idle|busy}`` condition, and the untimed set-up
    of each run (competitor paused or running; threads fixed, or decided by
    the hook after one second's look)."""
    from ..engine.cpu_threads import AdaptiveThreadsHook
    hook, runner = AdaptiveThreadsHook(), _quiet_runner()
    steps, before_run = {}, {}
    for policy in ('fixed', 'adaptive'):
        for busy in (False, True):
            name = f'{policy}/{"busy" if busy else "idle"}'

            def setup(policy=policy, busy=busy):
                (competitor.run if busy else competitor.pause)()
                torch.set_num_threads(threads)
                if policy == 'adaptive':
                    hook.start(runner, threads, look_s=1.)

            def one_step(policy=policy):
                step()
                if policy == 'adaptive':
                    hook.after_train_iter(runner, 0)

            steps[name], before_run[name] = one_step, setup
    return steps, before_run


def shared_cpu_figures(config: str = DEMO_CONFIG, repeats: int = 3,
                       min_run_s: float = 8.) -> Dict[str, List[float]]:
    """Seconds per step of each contender (``repeats`` runs each)."""
    model, wrapper = build_for_training(config)
    batch = det_batch(8, (192, 192), boxes=4, num_classes=4)
    threads = torch.get_num_threads()
    competitor = Competitor()
    try:
        steps, before_run = contenders(
            lambda: model.train_step(batch, wrapper), competitor, threads)
        return time_interleaved(steps, warmup=1, repeats=repeats,
                                min_run_s=min_run_s, before_run=before_run)
    finally:
        competitor.close()
        torch.set_num_threads(threads)


def wait_policy() -> str:
    return os.environ.get('OMP_WAIT_POLICY', 'unset (libgomp spins, then '
                          'sleeps)')
