"""Scale-out and resume through the real tools, on the CPU:

* tools/dist_train.sh CONFIG 2 runs two gloo processes (torchrun + the
  `pytorch` launcher) that split every epoch between them;
* a run killed after its first checkpoint continues with --resume and ends
  at the same iteration count as an uninterrupted run would.
"""
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, run_tool
from det_helpers import tiny_coco  # noqa: F401
from test_det_e2e import tiny_config

pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def checkpoint_iter(path):
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    return ckpt['meta']['epoch'], ckpt['meta']['iter']


def test_dist_train_two_cpu_processes(tmp_path, tiny_coco):  # noqa: F811
    config = tiny_config(tmp_path, tiny_coco, epochs=1)
    work_dir = str(tmp_path / 'work')
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1',
               OMP_WAIT_POLICY='PASSIVE')
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config, '2',
         '--work-dir', work_dir],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "dist_cfg: {'backend': 'gloo'}" in log
    assert 'Distributed training: True' in log
    # 8 images, 2 per process, 2 processes: 2 iterations per epoch
    assert 'Epoch(train) [1][2/2]' in log.replace('  ', ' ')
    assert checkpoint_iter(osp.join(work_dir, 'epoch_1.pth')) == (1, 2)


def test_resume_after_kill(tmp_path, tiny_coco):  # noqa: F811
    epochs = 6  # 4 iterations each
    config = tiny_config(tmp_path, tiny_coco, epochs=epochs)
    work_dir = str(tmp_path / 'work')
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1',
               OMP_WAIT_POLICY='PASSIVE')
    first = osp.join(work_dir, 'epoch_1.pth')
    proc = subprocess.Popen(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
         '--work-dir', work_dir], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.time() + 300
        while not osp.isfile(osp.join(work_dir, 'last_checkpoint')):
            assert proc.poll() is None, 'training ended before a checkpoint'
            assert time.time() < deadline, 'no checkpoint after 300 s'
            time.sleep(0.05)
        # really kill it (no clean-up), children (data workers) included
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert osp.isfile(first)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        killed_at = checkpoint_iter(f.read().strip())
    assert killed_at[0] < epochs, 'the run was not interrupted'

    result = run_tool(['tools/train.py', config, '--work-dir', work_dir,
                       '--resume'])
    log = result.stdout + result.stderr
    assert f'resumed epoch: {killed_at[0]}, iter: {killed_at[1]}' in log
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        final = f.read().strip()
    assert final.endswith(f'epoch_{epochs}.pth')
    assert checkpoint_iter(final) == (epochs, 4 * epochs)


@pytest.mark.parametrize('clean', [True, False])
def test_tools_tear_down_their_process_group(clean, tmp_path):
    """A finished (or failed) tool run destroys its gloo group rather than
    leaving gloo's threads to interpreter exit."""
    import torch.distributed as dist

    from efficientvit_mm.runtime.dist import shutdown_distributed
    dist.init_process_group(backend='gloo', rank=0, world_size=1,
                            init_method=f'file://{tmp_path / "store"}')
    assert dist.is_initialized()
    shutdown_distributed(clean=clean)
    assert not dist.is_initialized()
    shutdown_distributed(clean=clean)  # nothing up: nothing to do
