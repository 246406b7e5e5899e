"""Distributed runs end: with a short collective timeout, two gloo processes
on the CPU where rank 1 stops answering (SIGSTOP, or stuck sleeping) end
with a message naming rank 1, instead of waiting for gloo's 30 minutes."""
import os
import signal
import socket
import subprocess
import sys
import time

from helpers import ROOT

WORKER = r'''
import os, signal, sys, time
sys.path.insert(0, {root!r})
rank, ready = int(os.environ['RANK']), {ready!r}
open(f'{{ready}}.{{rank}}', 'w').close()  # start the group together
while not all(os.path.exists(f'{{ready}}.{{r}}') for r in (0, 1)):
    time.sleep(0.05)
import torch, torch.distributed as dist
from mmengine.config import Config
from efficientvit_mm.runtime.dist import init_cpu_distributed, start_heartbeat
from efficientvit_mm.runtime.errors import exit_on_user_error

def main():
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(timeout=3))))
    init_cpu_distributed(cfg, 'pytorch')
    start_heartbeat(3., lambda: 7)
    dist.all_reduce(torch.ones(1))
    if rank == 1:
        print('rank 1 stops answering', flush=True)
        if {mode!r} == 'stop':
            os.kill(os.getpid(), signal.SIGSTOP)
        time.sleep(300)
    dist.all_reduce(torch.ones(1))

exit_on_user_error('worker', main)
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_pair(mode, tmp_path):
    env = dict(os.environ, WORLD_SIZE='2', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(free_port()), PYTHONWARNINGS='ignore')
    code = WORKER.format(root=ROOT, ready=str(tmp_path / f'ready_{mode}'),
                         mode=mode)
    return [
        subprocess.Popen([sys.executable, '-c', code],
                         env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True) for rank in (0, 1)
    ]


def test_a_hung_peer_ends_the_job_naming_its_rank(tmp_path):
    pairs = {mode: start_pair(mode, tmp_path) for mode in ('stop', 'sleep')}
    try:
        for mode, (rank0, rank1) in pairs.items():
            _, err = rank0.communicate(timeout=240)
            assert rank0.returncode == 1, err[-3000:]
            message = err[err.index('worker: error:'):]
            assert 'Traceback' not in err and len(message.splitlines()) <= 5
            assert 'a collective operation failed' in message
            assert 'timeout 3 s, env_cfg.dist_cfg.timeout' in message
            if mode == 'stop':
                assert 'rank 1 stopped answering: its process is frozen or ' \
                    'gone (no sign of life for' in message
            else:
                assert 'rank 1 stopped answering: its process is alive at ' \
                    'iteration 7 but did not join the collective' in message
    finally:
        started = time.time()
        for proc in [p for pair in pairs.values() for p in pair]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
        assert time.time() - started < 60
