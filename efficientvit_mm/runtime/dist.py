"""Multi-process training without GPUs.

mmengine 0.10.7 always calls ``torch.cuda.set_device`` when it starts a
distributed job and wraps the model in DDP with ``device_ids=[LOCAL_RANK]``;
both fail on a CPU-only machine. :func:`init_cpu_distributed` starts the
process group itself with the gloo backend (mmengine then sees an
initialised group and leaves it alone) and makes DDP wrap a CPU model.
It also builds SyncBN layers as plain BN (SyncBN runs on GPUs only).
On machines with GPUs it does nothing: the config's backend (NCCL) is used.
"""
import os
import re
import subprocess
from typing import Tuple

import torch

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
        dist.init_process_group(backend='gloo', rank=rank, world_size=world)

    # SyncBN needs GPUs; on CPUs each process normalises its own batch
    if sync_bn_to_bn(cfg.get('model')) and rank == 0:
        from mmengine.logging import print_log
        print_log(
            'no GPU: the SyncBN layers of the model are built as '
            'plain BN (statistics per process)', logger='current')

    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
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
