"""Scale-out and resume through the real tools, on the CPU:

* tools/dist_train.sh CONFIG 2 runs two gloo processes (torchrun + the
  `pytorch` launcher) that split every epoch between them, and
  tools/dist_test.sh evaluates with two processes;
* tools/slurm_train.sh and slurm_test.sh run under a stand-in ``srun`` that
  starts its tasks with the variables real srun sets (the `slurm` launcher);
* the `mpi` launcher runs two processes given mpirun's variables;
* a run killed after its first checkpoint continues with --resume and ends
  at the same iteration count as an uninterrupted run would.
"""
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from test_det_e2e import tiny_config

from helpers import ROOT, run_tool

pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def checkpoint_iter(path):
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    return ckpt['meta']['epoch'], ckpt['meta']['iter']


def cpu_env(**extra):
    return dict(os.environ, PYTHON=sys.executable, PYTHONWARNINGS='ignore',
                OMP_NUM_THREADS='1', OMP_WAIT_POLICY='PASSIVE', **extra)


def run_script(args, env):
    proc = subprocess.run(['bash'] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return log


def assert_two_process_training(log, work_dir):
    # gloo on CPUs, and the default collective timeout (a hung peer ends
    # the job, see tests/runtime/test_dist_timeout.py)
    assert "dist_cfg: {'backend': 'gloo', 'timeout': 600.0}" in log
    assert 'Distributed training: True' in log
    # 8 images, 2 per process, 2 processes: 2 iterations per epoch
    assert 'Epoch(train) [1][2/2]' in log.replace('  ', ' ')
    assert checkpoint_iter(osp.join(work_dir, 'epoch_1.pth')) == (1, 2)


def assert_two_process_test(log):
    # 4 val images, 2 per process, 2 processes: 1 iteration
    assert 'Epoch(test) [1/1]' in log.replace('  ', ' ')
    assert 'coco/bbox_mAP:' in log


def test_dist_train_and_test_two_cpu_processes(tmp_path,
                                               tiny_coco):  # noqa: F811
    config = tiny_config(tmp_path, tiny_coco, epochs=1)
    work_dir = str(tmp_path / 'work')
    tools = osp.join(ROOT, 'tools')
    log = run_script([
        osp.join(tools, 'dist_train.sh'), config, '2', '--work-dir', work_dir
    ], cpu_env(PORT=str(free_port())))
    assert_two_process_training(log, work_dir)
    log = run_script([
        osp.join(tools, 'dist_test.sh'), config,
        osp.join(work_dir, 'epoch_1.pth'), '2', '--work-dir',
        str(tmp_path / 'test')
    ], cpu_env(PORT=str(free_port())))
    assert 'Distributed training: True' in log
    assert_two_process_test(log)


# Stand-in for Slurm's srun: starts --ntasks copies of the command with
# the variables srun gives each task, and records its own arguments.
FAKE_SRUN = r'''#!{python}
import json, os, subprocess, sys
args, opts = sys.argv[1:], {{}}
while args and args[0].startswith('-'):
    flag = args.pop(0)
    if '=' in flag:
        key, value = flag.split('=', 1)
    else:
        key, value = flag, args.pop(0)
    opts[key] = value
with open(os.environ['FAKE_SRUN_LOG'], 'w') as f:
    json.dump(dict(opts=opts, command=args), f)
ntasks = int(opts['--ntasks'])
procs = [subprocess.Popen(args, env=dict(
    os.environ, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank),
    SLURM_NTASKS=str(ntasks), SLURM_NODELIST='fake-node[1]',
    SLURM_JOB_ID='1')) for rank in range(ntasks)]
sys.exit(max(p.wait() for p in procs))
'''
# Stand-in for `scontrol show hostname NODELIST`
FAKE_SCONTROL = '''#!/bin/sh
echo 127.0.0.1
'''


def test_slurm_scripts_under_srun(tmp_path, tiny_coco):  # noqa: F811
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN.format(python=sys.executable)),
                       ('scontrol', FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    srun_log = tmp_path / 'srun.json'
    env = cpu_env(GPUS='2', FAKE_SRUN_LOG=str(srun_log),
                  PATH=f'{bin_dir}:{os.environ["PATH"]}')
    env.pop('MASTER_ADDR', None)  # the launcher asks scontrol
    config = tiny_config(tmp_path, tiny_coco, epochs=1)
    work_dir = str(tmp_path / 'work')
    tools = osp.join(ROOT, 'tools')

    env['MASTER_PORT'] = str(free_port())
    log = run_script([
        osp.join(tools, 'slurm_train.sh'), 'gpu-partition', 'evit-job', config,
        work_dir
    ], env)
    assert_two_process_training(log, work_dir)
    srun = json.loads(srun_log.read_text())
    assert srun['opts']['-p'] == 'gpu-partition'
    assert srun['opts']['--job-name'] == 'evit-job'
    assert srun['opts']['--gres'] == 'gpu:2'
    assert srun['opts']['--ntasks'] == '2'
    assert srun['command'][-3:] == [
        config, f'--work-dir={work_dir}', '--launcher=slurm'
    ]

    env['MASTER_PORT'] = str(free_port())
    log = run_script([
        osp.join(tools, 'slurm_test.sh'), 'gpu-partition', 'evit-test', config,
        osp.join(work_dir, 'epoch_1.pth'), '--work-dir',
        str(tmp_path / 'test')
    ], env)
    assert_two_process_test(log)
    srun = json.loads(srun_log.read_text())
    assert srun['command'][-3:] == [
        '--launcher=slurm', '--work-dir',
        str(tmp_path / 'test')
    ]


def test_mpi_launcher_two_processes(tmp_path, tiny_coco):  # noqa: F811
    """What mpirun -np 2 python tools/train.py CONFIG --launcher mpi starts:
    two processes told their rank by Open MPI's variables."""
    config = tiny_config(tmp_path, tiny_coco, epochs=1)
    work_dir = str(tmp_path / 'work')
    port = str(free_port())
    procs = [
        subprocess.Popen([
            sys.executable,
            osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
            work_dir, '--launcher', 'mpi'
        ], cwd=ROOT, env=cpu_env(
            OMPI_COMM_WORLD_RANK=str(rank),
            OMPI_COMM_WORLD_LOCAL_RANK=str(rank), OMPI_COMM_WORLD_SIZE='2',
            MASTER_PORT=port), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for rank in range(2)
    ]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-4000:]
    assert_two_process_training(logs[0], work_dir)


def test_resume_after_kill(tmp_path, tiny_coco):  # noqa: F811
    epochs = 3  # 4 iterations each
    config = tiny_config(tmp_path, tiny_coco, epochs=epochs)
    work_dir = str(tmp_path / 'work')
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1',
               OMP_WAIT_POLICY='PASSIVE')
    first = osp.join(work_dir, 'epoch_1.pth')
    proc = subprocess.Popen([
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work_dir
    ], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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

    result = run_tool(
        ['tools/train.py', config, '--work-dir', work_dir, '--resume'])
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
