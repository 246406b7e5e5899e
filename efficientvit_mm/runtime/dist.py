"""Multi-process training without GPUs.

mmengine 0.10.7 always calls ``torch.cuda.set_device`` when it starts a
distributed job and wraps the model in DDP with ``device_ids=[LOCAL_RANK]``;
both fail on a CPU-only machine. :func:`init_cpu_distributed` starts the
process group itself with the gloo backend (mmengine then sees an
initialised group and leaves it alone) and makes DDP wrap a CPU model.
It also builds SyncBN layers as plain BN (SyncBN runs on GPUs only).
On machines with GPUs it does nothing: the config's backend (NCCL) is used.

Every job gets a collective timeout (``env_cfg.dist_cfg.timeout``, seconds;
:data:`DEFAULT_TIMEOUT_S` unless the config says), so a peer that hangs ends
the job instead of blocking it for gloo's 30 minutes. Each process of a job
writes a heartbeat (time and iteration) to the job's store; when a
collective fails, :func:`explain_collective_failure` reads them and names
the rank that stopped answering.
"""
import datetime
import os
import re
import subprocess
import threading
import time
from typing import Callable, Dict, Optional, Tuple

import torch

from ..errors import DistributedTimeoutError, PreflightError

DEFAULT_TIMEOUT_S = 600

_HOST = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*')


def first_slurm_host(nodelist: str) -> str:
    """The first host of a Slurm node list (``n[01-04,07],m3`` -> ``n01``).

    Asked of ``scontrol show hostnames`` with an argument list (no shell:
    the list is never parsed as a command); without scontrol, read from the
    list itself; 127.0.0.1 when neither gives a host name.
    """
    try:
        out = subprocess.run(['scontrol', 'show', 'hostnames', nodelist],
                             capture_output=True, text=True, timeout=60,
                             check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    if out and _HOST.fullmatch(out[0]):
        return out[0]
    # 'prefix[first-last,...]' or 'name': the first name it spells
    head = re.match(r'([^,\[]*)(?:\[([^\],-]+))?', nodelist.strip())
    name = head.group(1) + (head.group(2) or '') if head else ''
    return name if _HOST.fullmatch(name) else '127.0.0.1'


def _slurm_env() -> Tuple[int, int, int]:
    rank = int(os.environ['SLURM_PROCID'])
    world = int(os.environ['SLURM_NTASKS'])
    local = int(os.environ.get('SLURM_LOCALID', 0))
    if 'MASTER_ADDR' not in os.environ:
        os.environ['MASTER_ADDR'] = first_slurm_host(
            os.environ['SLURM_NODELIST'])
    os.environ.setdefault('MASTER_PORT', '29500')
    return rank, world, local


def _mpi_env() -> Tuple[int, int, int]:
    rank = int(os.environ['OMPI_COMM_WORLD_RANK'])
    world = int(os.environ['OMPI_COMM_WORLD_SIZE'])
    local = int(os.environ.get('OMPI_COMM_WORLD_LOCAL_RANK', 0))
    os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
    os.environ.setdefault('MASTER_PORT', '29500')
    return rank, world, local


SYNC_NORMS = ('SyncBN', 'MMSyncBN')


def sync_bn_to_bn(node) -> int:
    """Turn every SyncBN norm config inside ``node`` into plain BN, in
    place; returns how many it changed."""
    changed = 0
    if isinstance(node, dict):
        if node.get('type') in SYNC_NORMS:
            node['type'] = 'BN'
            changed += 1
        for value in node.values():
            changed += sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            changed += sync_bn_to_bn(value)
    return changed


def init_cpu_distributed(cfg, launcher: str) -> bool:
    """Start a gloo process group for ``launcher`` if there is no GPU.

    Returns True when it did (the job then runs on CPUs), False when there
    is nothing to do (single process, or GPUs present).
    """
    if launcher != 'none':
        set_collective_timeout(cfg)
    if launcher == 'none' or torch.cuda.is_available():
        return False
    import torch.distributed as dist
    if launcher == 'pytorch':
        rank = int(os.environ['RANK'])
        world = int(os.environ['WORLD_SIZE'])
        local = int(os.environ.get('LOCAL_RANK', 0))
    elif launcher == 'slurm':
        rank, world, local = _slurm_env()
    elif launcher == 'mpi':
        rank, world, local = _mpi_env()
    else:
        raise ValueError(f'unknown launcher {launcher!r}')
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(local))
    if not dist.is_initialized():
        dist.init_process_group(
            backend='gloo', rank=rank, world_size=world,
            timeout=datetime.timedelta(seconds=collective_timeout(cfg)))

    # SyncBN needs GPUs; on CPUs each process normalises its own batch
    if sync_bn_to_bn(cfg.get('model')) and rank == 0:
        from mmengine.logging import print_log
        print_log(
            'no GPU: the SyncBN layers of the model are built as '
            'plain BN (statistics per process)', logger='current')

    cfg.env_cfg.dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', find_unused_parameters=cfg.get(
            'find_unused_parameters', False))
    if 'DistributedDataParallel' in str(wrapper.get('type', '')):
        # DDP of a CPU module takes no device ids
        wrapper['device_ids'] = None
    cfg['model_wrapper_cfg'] = wrapper
    return True


def shutdown_distributed(clean: bool) -> None:
    """Tear down the default process group, if one is up.

    Left to interpreter exit, gloo's threads can outlive their process group
    and abort the process ("terminate called without an active exception")
    after a finished run. ``clean``: every rank finished its work, so they
    meet at a barrier first and no rank tears down while another still
    talks to it; after an error there is no barrier (it could hang).
    """
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    if clean:
        dist.barrier()
    dist.destroy_process_group()


def collective_timeout(cfg) -> float:
    """Seconds a collective may wait for a peer (``env_cfg.dist_cfg.timeout``
    of the config, else :data:`DEFAULT_TIMEOUT_S`)."""
    env_cfg = cfg.get('env_cfg') or {}
    value = (env_cfg.get('dist_cfg') or {}).get('timeout', DEFAULT_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value,
                                                 (int, float)) or value <= 0:
        raise PreflightError(
            f'env_cfg.dist_cfg.timeout must be a positive number of '
            f'seconds, got {value!r}')
    return float(value)


def set_collective_timeout(cfg) -> None:
    """Write the timeout into ``env_cfg.dist_cfg`` (where mmengine's own
    start of a GPU job reads it too)."""
    timeout = collective_timeout(cfg)
    env_cfg = cfg.setdefault('env_cfg', {})
    if env_cfg.get('dist_cfg') is None:
        env_cfg['dist_cfg'] = {}
    env_cfg['dist_cfg']['timeout'] = timeout


def _store():
    """The key-value store of the default process group, or None."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return None
    getter = getattr(dist.distributed_c10d, '_get_default_store', None)
    try:
        return getter() if getter else None
    except RuntimeError:
        return None


class Heartbeat:
    """A daemon thread that writes ``'<time> <progress>'`` under
    ``evit/alive/<rank>`` in the job's store every ``interval`` seconds."""

    def __init__(self, store, rank: int, timeout: float,
                 progress: Callable[[], int]):
        self.store, self.rank, self.timeout = store, rank, timeout
        self.interval = max(0.2, min(10., timeout / 5))
        self.progress = progress
        self._stop = threading.Event()
        self.beat()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='evit-heartbeat')
        self._thread.start()

    def beat(self) -> None:
        try:
            self.store.set(f'evit/alive/{self.rank}',
                           f'{time.time()} {self.progress()}')
        except Exception:  # the store's host is gone: nothing to tell
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        self._stop.set()


_HEARTBEAT: Dict[str, Heartbeat] = {}


def start_heartbeat(timeout: float,
                    progress: Callable[[], int] = lambda: -1) -> bool:
    """Start this process's heartbeat (a few beats per ``timeout``), if it
    is part of a multi-process job; ``progress()`` is its iteration."""
    import torch.distributed as dist
    store = _store()
    if store is None or dist.get_world_size() < 2:
        return False
    stop_heartbeat()
    _HEARTBEAT['beat'] = Heartbeat(store, dist.get_rank(), timeout, progress)
    return True


def stop_heartbeat() -> None:
    beat = _HEARTBEAT.pop('beat', None)
    if beat is not None:
        beat.stop()


# what gloo (and the store) say when a peer does not answer or went away
_PEER_FAILURES = ('Timed out waiting', 'timed out', 'Timeout',
                  'Connection closed by peer', 'Connection reset by peer',
                  'Broken pipe', 'pair closure')


def _peer_states(store, world: int, me: int, wait_s: float) -> Dict:
    """rank -> ('gone', seconds since its last sign) | ('stuck', its
    progress), for every other rank that did not fail like this one."""
    store.set_timeout(datetime.timedelta(seconds=2))
    store.set(f'evit/failed/{me}', '1')
    time.sleep(wait_s)  # peers that failed too mark themselves meanwhile
    now, states = time.time(), {}
    for rank in range(world):
        if rank == me or store.check([f'evit/failed/{rank}']):
            continue
        key = f'evit/alive/{rank}'
        if not store.check([key]):
            states[rank] = ('gone', None)
            continue
        stamp, progress = store.get(key).decode().split()
        age = now - float(stamp)
        beat = _HEARTBEAT.get('beat')
        limit = 3 * beat.interval if beat else 30.
        states[rank] = ('gone', age) if age > limit else ('stuck',
                                                          int(progress))
    return states


def _describe(rank: int, state) -> str:
    kind, value = state
    if kind == 'stuck':
        where = f' at iteration {value}' if value >= 0 else ''
        return (f'rank {rank} stopped answering: its process is alive'
                f'{where} but did not join the collective')
    since = f' for {value:.0f} s' if value is not None else ''
    return (f'rank {rank} stopped answering: its process is frozen or gone '
            f'(no sign of life{since})')


def explain_collective_failure(
        err: BaseException) -> Optional[DistributedTimeoutError]:
    """The rank a failed collective waited for, as a short error; None when
    ``err`` is no collective failure of a running job."""
    import torch.distributed as dist
    text = str(err)
    store = _store()
    if store is None or not any(m in text for m in _PEER_FAILURES):
        return None
    me, world = dist.get_rank(), dist.get_world_size()
    beat = _HEARTBEAT.get('beat')
    timeout = f'{beat.timeout:.0f} s, ' if beat else ''
    try:
        states = _peer_states(store, world, me,
                              min(2., beat.interval) if beat else 1.)
    except Exception:  # the store lives in rank 0's process
        states = {0: ('gone', None)} if me != 0 else {}
    who = '; '.join(_describe(r, s) for r, s in sorted(states.items())) \
        or 'a peer stopped answering'
    first = text.splitlines()[0].split('] ')[-1][:90] if text else ''
    return DistributedTimeoutError(
        f'rank {me}: a collective operation failed ({first}): {who}.\nThe '
        f'job stops (timeout {timeout}env_cfg.dist_cfg.timeout). Look at '
        f'the log of that rank; raise the timeout if its steps are '
        f'legitimately this slow.')
