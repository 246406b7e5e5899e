"""The steps every shapes demo runs (see :mod:`efficientvit_mm.demo`):
writing the data, training through ``tools/train.py``, evaluating."""
import contextlib
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ..errors import UserError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN_TOOL = osp.join(ROOT, 'tools', 'train.py')
STAMP = 'shapes_data.json'
_INFO = ' - mmengine - INFO - '


class DemoError(UserError):
    """A demo step cannot go on; the message says why."""


def say(msg: str) -> None:
    print(f'[demo] {msg}', flush=True)


@dataclass(frozen=True)
class Evaluation:
    """What step 3 found: the metrics of ``Runner.test()``, the number of
    val samples and the Runner's log file (for tables it only logs)."""
    metrics: dict
    num_val: int
    log_file: str


# what each exporter writes, for the messages
DATA_KINDS = {
    'export_coco': 'COCO-format shapes',
    'export_ade': 'ADE-style shapes',
    'export_crops': 'shape-crop'
}


def generate_data(exporter: str, spec: dict, data_root: str,
                  force: bool) -> bool:
    """Write the shapes set ``spec`` describes (the ``shapes_data`` of a
    demo config: ``splits``, ``seed`` and the other arguments of
    ``efficientvit_mm.datasets.<exporter>``) to ``data_root``.

    Returns False, writing nothing, when ``data_root`` holds a set written
    with the same settings (and ``force`` is off). Otherwise the set is
    written to a sibling folder and moved into place, replacing what the
    demo wrote there before, so no file of other settings is left. A
    folder the demo did not write is replaced only with ``force``. The
    exporter reports its progress about three times.
    """
    from efficientvit_mm import datasets
    spec = json.loads(json.dumps(dict(spec)))  # tuples -> lists
    data_root = osp.normpath(data_root)
    stamp = osp.join(data_root, STAMP)
    if osp.isfile(stamp):
        with open(stamp) as f:
            same = json.load(f) == spec
        if same and not force:
            say(f'data already in {data_root} (same settings), skipping '
                'generation')
            return False
    elif osp.isdir(data_root) and os.listdir(data_root) and not force:
        raise DemoError(
            f'{data_root} holds files the demo did not write (no {STAMP}): '
            'pass --regenerate to replace them, or choose another '
            '--data-root')
    where = osp.realpath(data_root)
    for keep in (os.getcwd(), ROOT, osp.expanduser('~')):
        keep = osp.realpath(keep)
        if keep == where or keep.startswith(where.rstrip(os.sep) + os.sep):
            raise DemoError(f'the data root {data_root} holds {keep}; the '
                            'demo replaces its data root, choose a folder '
                            'of its own')
    kwargs = dict(spec)
    splits = kwargs.pop('splits')
    seed = kwargs.pop('seed')
    say(f'generating {DATA_KINDS.get(exporter, "shapes")} data in '
        f'{data_root}: {splits} '
        f'{"scenes" if exporter == "export_crops" else "images"}, '
        f'seed {seed}')
    start = time.time()
    partial = data_root + '.partial'
    shutil.rmtree(partial, ignore_errors=True)
    every = max(100, round(sum(splits.values()) / 3, -2))
    write = getattr(datasets, exporter)
    written = write(partial, splits, seed=seed, progress_every=every, **kwargs)
    with open(osp.join(partial, STAMP), 'w') as f:
        json.dump(spec, f)
    if osp.isdir(data_root):
        shutil.rmtree(data_root)
    os.rename(partial, data_root)
    if exporter == 'export_crops':  # it counts what it wrote
        say(f'crops per split: {written}')
    say(f'data written in {time.time() - start:.0f}s')
    return True


def train(config: str, work_dir: str, cfg_options: Dict[str, object],
          progress: Tuple[str, ...], threads: Optional[int] = None) -> str:
    """``tools/train.py config`` in a subprocess; prints the log lines that
    contain one of ``progress`` and writes the whole output to
    ``<work_dir>/train_stdout.log``. Returns that path."""
    cmd = [sys.executable, TRAIN_TOOL, config, '--work-dir', work_dir]
    if cfg_options:
        cmd.append('--cfg-options')
        cmd += [f'{key}={value}' for key, value in cfg_options.items()]
    log_path = osp.join(work_dir, 'train_stdout.log')
    os.makedirs(work_dir, exist_ok=True)
    say(f'training (full log: {log_path})')
    # the demo configs' AdaptiveThreadsHook keeps the threads at the cores
    # other processes leave free, all along the run (on a shared CPU, threads
    # that wait for a descheduled partner make steps ~10x slower)
    env = dict(os.environ, PYTHONWARNINGS='ignore', PYTHONUNBUFFERED='1')
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    tail: List[str] = []
    with open(log_path,
              'w') as log, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT,
                                            text=True, env=env,
                                            cwd=os.getcwd()) as proc:
        for line in proc.stdout:
            log.write(line)
            tail = (tail + [line])[-40:]
            if any(p in line for p in progress):
                print('  ' + line.rstrip().split(_INFO)[-1], flush=True)
    if proc.returncode != 0:
        sys.stdout.write(''.join(tail))
        raise DemoError(f'training failed (exit {proc.returncode}); see '
                        f'{log_path}')
    return log_path


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint mmengine's ``last_checkpoint`` file names."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        raise DemoError(f'training wrote no checkpoint ({path} is missing)')
    with open(path) as f:
        return f.read().strip()


def evaluate(cfg, checkpoint: str, work_dir: str) -> Evaluation:
    """``Runner.test()`` of ``checkpoint`` with the config's test dataloader
    and evaluator; the Runner's output goes to ``<work_dir>/eval/eval.log``.
    """
    from mmengine.runner import Runner
    cfg = cfg.copy()
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(work_dir, 'eval')
    os.makedirs(cfg.work_dir, exist_ok=True)
    with open(osp.join(cfg.work_dir, 'eval.log'), 'w') as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        runner = Runner.from_cfg(cfg)
        metrics = runner.test()
    return Evaluation(
        dict(metrics), len(runner.test_dataloader.dataset),
        osp.join(cfg.work_dir, runner.timestamp, f'{runner.timestamp}.log'))
