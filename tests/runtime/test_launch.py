"""The config a tool runs."""
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG = osp.join(ROOT, 'configs/fpn_efficientvit_m0_ade20k.py')


def test_second_run_in_a_process_gets_its_own_visualizer(tmp_path):
    """mmengine returns an existing visualizer of the same name, with the
    first run's folder; the tools leave the name to the runner then, so the
    second run logs into its own work dir."""
    from mmseg.visualization import SegLocalVisualizer

    from efficientvit_mm.runtime.launch import tool_config
    name = {'visualizer.name': f'probe_{tmp_path.name}'}  # not yet taken
    first = tool_config(SEG, name, 'none', str(tmp_path / 'a'))
    assert first.visualizer['name'] == name['visualizer.name']
    SegLocalVisualizer.get_instance(
        name['visualizer.name'], vis_backends=[dict(type='LocalVisBackend')],
        save_dir=str(tmp_path / 'a'))
    second = tool_config(SEG, name, 'none', str(tmp_path / 'b'))
    assert 'name' not in second.visualizer
    assert second.visualizer['type'] == 'SegLocalVisualizer'


def two_ranks(monkeypatch, rank, rank0_says=None):
    """A stand-in process group of two: what rank 0 broadcasts is recorded
    (rank 0) or ``rank0_says`` (other ranks)."""
    import torch.distributed as dist
    sent = []

    def broadcast(objects, src):
        sent.append(list(objects))
        if rank != src:
            objects[0] = rank0_says

    monkeypatch.setattr(dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(dist, 'get_world_size', lambda: 2)
    monkeypatch.setattr(dist, 'get_rank', lambda: rank)
    monkeypatch.setattr(dist, 'broadcast_object_list', broadcast)
    return sent


def test_every_rank_learns_why_rank_0_has_no_work_dir_lock(
        tmp_path, monkeypatch):
    """A rank 0 that cannot lock (busy, or a folder it cannot write) tells
    the others, which would otherwise wait for it until the timeout."""
    from mmengine.config import Config

    from efficientvit_mm.errors import UserError, WorkDirBusyError
    from efficientvit_mm.runtime import lock
    from efficientvit_mm.runtime.launch import claim_work_dir
    cfg = Config(dict(work_dir=str(tmp_path)))
    held = lock.acquire_work_dir(str(tmp_path))
    sent = two_ranks(monkeypatch, 0)
    with pytest.raises(WorkDirBusyError):
        claim_work_dir(cfg, 'train.py')
    held.release()
    assert sent[0][0][0] is True and 'in use by another run' in sent[0][0][1]

    def refused(*args, **kwargs):
        raise PermissionError(13, 'Permission denied', 'w/run.lock')

    monkeypatch.setattr(lock, 'acquire_work_dir', refused)
    sent = two_ranks(monkeypatch, 0)
    with pytest.raises(PermissionError):
        claim_work_dir(cfg, 'train.py')
    assert sent == [[(False, "[Errno 13] Permission denied: 'w/run.lock'")]]
    two_ranks(monkeypatch, 1, sent[0][0])
    with pytest.raises(
            UserError, match='rank 0 could not lock the work dir '
            f'{tmp_path} .*Permission denied'):
        claim_work_dir(cfg, 'train.py')
    two_ranks(monkeypatch, 1, (True, 'w is in use by another run'))
    with pytest.raises(WorkDirBusyError, match='^w is in use'):
        claim_work_dir(cfg, 'train.py')
    two_ranks(monkeypatch, 1, None)
    assert claim_work_dir(cfg, 'train.py') is None  # rank 0 holds it
