"""Training steps on a CPU another process joins: the figures of
``benchmarks/demo_under_load.py``.

The detection demo's training step (RetinaNet-EfficientViT-M0, 8 images of
192x192) runs in one worker process per thread policy; OpenMP reads its
waiting policy when a process starts, so each policy needs its own. The
parent times them in turn with
:func:`~efficientvit_mm.benchmarking.timing.time_interleaved` (a step is a
request to a worker and its answer), each with a competing process, which
spins on one core, paused (SIGSTOP, ``idle``) or running (``busy``).

Before each run of an ``adaptive`` worker, its
:class:`~efficientvit_mm.engine.cpu_threads.AdaptiveThreadsHook` looks at
the machine for a second (untimed), as it does within ``interval_s`` of a
change: the figures are its steady state; its reaction time is that
interval plus one step.
"""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import types
from typing import Callable, Dict, List

from .timing import time_interleaved

DEMO_CONFIG = 'configs/demo/retinanet_efficientvit_m0_shapes.py'
# the folder holding the package, for the workers' imports
_PACKAGE_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# name -> (environment of the worker, whether the hook sets its threads)
POLICIES = {
    'spin': ({}, False),  # libgomp's default: spin a while, then sleep
    'passive': ({
        'OMP_WAIT_POLICY': 'PASSIVE'
    }, False),
    'adaptive': ({}, True),  # the demo now
}


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


class StepWorker:
    """A process holding the demo's model, batch and optimizer, running
    training steps when asked (``step``) and letting its threads hook look
    at the machine (``look``)."""

    def __init__(self, config: str, env: Dict[str, str], adaptive: bool):
        self.proc = subprocess.Popen(
            [sys.executable, '-m', __name__, config,
             json.dumps(adaptive)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONWARNINGS='ignore',
                     PYTHONPATH=_PACKAGE_ROOT, **env))
        self.ask('ready')

    def ask(self, command: str) -> str:
        if command != 'ready':
            self.proc.stdin.write(command + '\n')
            self.proc.stdin.flush()
        while True:  # the toolboxes print while building
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError('the step worker died')
            if line.startswith('@'):
                return line[1:].strip()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def serve(config: str, adaptive: bool) -> None:
    """The worker's loop: 'step' runs one training step, 'look' lets the
    hook decide the threads; each answered with an '@' line."""
    import torch

    from ..engine.cpu_threads import AdaptiveThreadsHook
    from .training import build_for_training, det_batch
    model, wrapper = build_for_training(config)
    batch = det_batch(8, (192, 192), boxes=4, num_classes=4)
    threads = torch.get_num_threads()
    hook = AdaptiveThreadsHook()
    runner = types.SimpleNamespace(
        logger=types.SimpleNamespace(info=lambda msg: None))
    print('@ready', flush=True)
    for command in sys.stdin:
        if command.strip() == 'look' and adaptive:
            hook.start(runner, threads, look_s=1.)
        elif command.strip() == 'step':
            model.train_step(batch, wrapper)
            if adaptive:
                hook.after_train_iter(runner, 0)
        print(f'@{torch.get_num_threads()}', flush=True)


def shared_cpu_figures(
        config: str = DEMO_CONFIG, repeats: int = 3, min_run_s: float = 8.,
        threads: Dict[str, List[int]] = None) -> Dict[str, List[float]]:
    """Seconds per step of every ``{policy}/{idle|busy}`` contender;
    ``threads`` (if given) gets the thread count each run started with."""
    competitor = Competitor()
    workers = {
        name: StepWorker(config, env, adaptive)
        for name, (env, adaptive) in POLICIES.items()
    }
    steps: Dict[str, Callable] = {}
    before_run: Dict[str, Callable] = {}
    try:
        for name, worker in workers.items():
            for busy in (False, True):
                key = f'{name}/{"busy" if busy else "idle"}'

                def setup(worker=worker, busy=busy, key=key):
                    (competitor.run if busy else competitor.pause)()
                    count = int(worker.ask('look'))
                    if threads is not None:
                        threads.setdefault(key, []).append(count)

                steps[key] = lambda worker=worker: worker.ask('step')
                before_run[key] = setup
        return time_interleaved(steps, warmup=1, repeats=repeats,
                                min_run_s=min_run_s, before_run=before_run)
    finally:
        competitor.close()
        for worker in workers.values():
            worker.close()


if __name__ == '__main__':  # a StepWorker
    serve(sys.argv[1], json.loads(sys.argv[2]))
