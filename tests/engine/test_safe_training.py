"""Atomic checkpoints and the divergence stop on a tiny mmengine Runner.

Kills are simulated deterministically: a subprocess trains and exits with
``os._exit`` (no clean-up, like SIGKILL) at a chosen moment of its second
save; the work dir must then resume."""
import errno
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import LocalBackend

from efficientvit_mm.checkpoint.io import TEMP_PREFIX
from efficientvit_mm.errors import CheckpointSaveError, DivergenceError
from efficientvit_mm.runtime.checkpoints import (find_resume_checkpoint,
                                                 prepare_start)
from helpers import ROOT
from helpers.toy_runner import ToyModel, toy_runner

# Trains 3 epochs and dies (os._exit: no clean-up, like SIGKILL) when half
# of epoch_2's bytes are on disk (under the temporary name the hook gives).
KILL_SCRIPT = r'''
import os, sys
sys.path[:0] = [{root!r}, {tests!r}]
import efficientvit_mm
from mmengine.fileio import LocalBackend
from helpers.toy_runner import toy_runner

plain, calls = LocalBackend.put, []
def put(self, obj, filepath):
    calls.append(filepath)
    if len(calls) == 2:
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
        os._exit(9)
    return plain(self, obj, filepath)
LocalBackend.put = put
toy_runner({work_dir!r}).train()
'''


class Killed(BaseException):
    """The process dies here (not an error anything may catch)."""


def die_at_second_call(monkeypatch, owner, name):
    real, calls = getattr(owner, name), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)


def kill_during_second_save(moment, work_dir, monkeypatch):
    """Train, dying at ``moment`` of epoch_2's save:
    write   - half of its bytes are on disk (a real process exit);
    rename  - it is complete under its temporary name;
    pointer - it is in place, last_checkpoint not yet rewritten;
    rotate  - last_checkpoint names it, epoch_1 not yet removed."""
    if moment == 'write':
        script = KILL_SCRIPT.format(root=ROOT, tests=osp.join(ROOT, 'tests'),
                                    work_dir=work_dir)
        proc = subprocess.run([sys.executable, '-c', script],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 9, proc.stderr[-3000:]
        return
    from efficientvit_mm.engine import hooks
    owner, name = dict(
        rename=(hooks, 'commit'), pointer=(hooks, 'atomic_write_text'),
        rotate=(hooks.AtomicCheckpointHook, '_remove'))[moment]
    die_at_second_call(monkeypatch, owner, name)
    with pytest.raises(Killed):
        toy_runner(work_dir).train()
    monkeypatch.undo()


def every_final_file_loads(work_dir):
    for name in os.listdir(work_dir):
        if name.endswith('.pth') and not name.startswith(TEMP_PREFIX):
            torch.load(osp.join(work_dir, name), weights_only=True)


@pytest.mark.parametrize('moment', ['write', 'rename', 'pointer', 'rotate'])
def test_a_kill_during_a_save_leaves_a_work_dir_that_resumes(
        moment, tmp_path, monkeypatch):
    work_dir = str(tmp_path / 'work')
    kill_during_second_save(moment, work_dir, monkeypatch)
    if moment == 'write':  # the partial file has a temporary name
        assert [n for n in os.listdir(work_dir) if n.startswith(TEMP_PREFIX)]
    every_final_file_loads(work_dir)  # no partial file under a final name
    path, checkpoint, note = find_resume_checkpoint(work_dir)
    epoch = checkpoint['meta']['epoch']
    # last_checkpoint is rewritten only once epoch_2 is complete, and
    # epoch_1 removed only after that
    assert epoch == (2 if moment == 'rotate' else 1), moment
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    if moment in ('write', 'rename'):  # epoch_2 never got its final name
        assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))

    # the work dir resumes: the last epochs follow, the leftovers go
    runner = toy_runner(work_dir, resume=True)
    cfg = Config(dict(resume=True, load_from=None, work_dir=work_dir))
    assert prepare_start(runner, cfg, 'train', 'toy') == path
    runner.train()
    assert runner.epoch == 3
    names = sorted(os.listdir(work_dir))
    assert 'epoch_3.pth' in names and 'epoch_2.pth' not in names
    assert not [n for n in names if n.startswith(TEMP_PREFIX)]


def test_resume_takes_the_newest_checkpoint_that_loads(tmp_path):
    work_dir = tmp_path / 'work'
    toy_runner(work_dir, epochs=2, keep=3).train()
    pointer = work_dir / 'last_checkpoint'
    assert pointer.read_text().endswith('epoch_2.pth')
    (work_dir / 'epoch_2.pth').write_bytes(b'')  # broken by an old tool
    path, checkpoint, note = find_resume_checkpoint(str(work_dir))
    assert path.endswith('epoch_1.pth') and checkpoint['meta']['epoch'] == 1
    assert 'does not load' in note and 'epoch_1.pth' in note
    pointer.unlink()
    assert 'last_checkpoint is missing' in find_resume_checkpoint(
        str(work_dir))[2]


def test_best_checkpoint_survives_a_failed_successor(tmp_path, monkeypatch):
    work_dir = str(tmp_path / 'work')
    runner = toy_runner(work_dir, epochs=2, best=True)
    plain, bests = LocalBackend.put, []

    def put(self, obj, filepath):
        if 'best_score' in str(filepath):
            bests.append(filepath)
            if len(bests) == 2:
                raise OSError(errno.ENOSPC, 'No space left on device')
        return plain(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put)
    with pytest.raises(CheckpointSaveError, match='no space left'):
        runner.train()
    names = os.listdir(work_dir)
    assert 'best_score_epoch_1.pth' in names  # the previous best is kept
    assert not [n for n in names if n.startswith(TEMP_PREFIX)]
    every_final_file_loads(work_dir)


def test_a_new_best_replaces_the_old_one(tmp_path):
    work_dir = tmp_path / 'work'
    toy_runner(work_dir, epochs=2, best=True).train()
    names = sorted(os.listdir(work_dir))
    assert 'best_score_epoch_2.pth' in names
    assert 'best_score_epoch_1.pth' not in names
    assert 'epoch_2.pth' in names and 'epoch_1.pth' not in names


def divergence(tmp_path, **model_kw):
    work_dir = tmp_path / 'work'
    runner = toy_runner(work_dir, model=ToyModel(**model_kw),
                        hooks=[dict(type='DivergenceHook')])
    with pytest.raises(DivergenceError) as err:
        runner.train()
    weights = runner.model.fc.weight
    return str(err.value), weights, work_dir


def test_nan_loss_stops_before_the_update(tmp_path):
    # call 6 = iteration 6 = the 2nd of epoch 2; epoch_1.pth is saved
    msg, weights, work_dir = divergence(tmp_path, nan_at=6)
    assert 'diverged at iteration 6 (epoch 2)' in msg
    assert 'non-finite loss_mse' in msg and 'loss_mse=nan' in msg
    assert 'loss_reg=' in msg and 'epoch_1.pth, is kept' in msg
    assert 'default_hooks.divergence.enabled=False' in msg
    assert len(msg.splitlines()) <= 5
    assert torch.isfinite(weights).all()
    assert sorted(n for n in os.listdir(work_dir)
                  if n.endswith('.pth')) == ['epoch_1.pth']
    saved = torch.load(work_dir / 'epoch_1.pth', weights_only=True)
    assert all(torch.isfinite(v).all() for v in saved['state_dict'].values())


def test_infinite_gradient_with_a_finite_loss_stops(tmp_path):
    msg, weights, _ = divergence(tmp_path, inf_grad_at=2)
    assert 'iteration 2 (epoch 1)' in msg
    assert 'non-finite gradient norm' in msg
    assert 'no checkpoint was saved before' in msg
    assert torch.isfinite(weights).all()


def test_a_total_that_overflows_from_finite_terms_is_named():
    from efficientvit_mm.engine.hooks import DivergenceHook
    hook, big = DivergenceHook(), torch.tensor(3e38)

    def parse_losses(losses):
        total = big + big  # inf in float32
        return total, dict(loss=total, loss_a=big, loss_b=big)

    hook._checked_parse(parse_losses)({})
    assert hook._bad == 'non-finite loss'


def test_exploding_loss_stops(tmp_path):
    msg, _, _ = divergence(tmp_path, big_at=3)
    assert 'iteration 3' in msg and 'max_loss' in msg


def test_weights_that_are_not_finite_are_never_saved(tmp_path):
    """With the check off, training goes on, but no NaN checkpoint is
    written: the save stops the run and the last finite one stays."""
    work_dir = tmp_path / 'work'
    runner = toy_runner(work_dir, model=ToyModel(nan_at=6),
                        hooks=[dict(type='DivergenceHook', enabled=False)])
    with pytest.raises(DivergenceError, match='not saving .*epoch_2.pth'):
        runner.train()
    assert not math.isfinite(float(runner.model.fc.weight.detach().sum()))
    assert sorted(n for n in os.listdir(work_dir)
                  if n.endswith('.pth')) == ['epoch_1.pth']
    assert (work_dir / 'last_checkpoint').read_text().endswith('epoch_1.pth')


def test_each_wrapper_of_a_multi_optimizer_model_is_checked():
    """GAN-style models step an OptimWrapperDict's wrappers themselves:
    each is checked before its step; a loop that steps none is stopped
    after the iteration, saying the update was taken."""
    import types

    from mmengine.optim import OptimWrapper, OptimWrapperDict

    from efficientvit_mm.engine.hooks import DivergenceHook
    parts = {k: torch.nn.Linear(2, 2) for k in 'gd'}
    wrappers = OptimWrapperDict(
        **{
            k: OptimWrapper(torch.optim.SGD(m.parameters(), lr=1.))
            for k, m in parts.items()
        })
    hub = types.SimpleNamespace(get_info=lambda key: None)
    runner = types.SimpleNamespace(model=torch.nn.Module(),
                                   optim_wrapper=wrappers, iter=4, epoch=0,
                                   message_hub=hub)
    hook = DivergenceHook()
    hook.before_train(runner)
    for name, part in parts.items():
        before = part.weight.detach().clone()
        part(torch.randn(3, 2)).sum().backward()
        part.weight.grad[0, 0] = float('nan')
        with pytest.raises(DivergenceError, match='non-finite gradient'):
            wrappers[name].step()
        assert torch.equal(part.weight, before)  # never updated
        hook._bad = None
    hook._bad = 'non-finite loss_gan'
    with pytest.raises(DivergenceError,
                       match='(?s)iteration 5.*after the weights took'):
        hook.after_train_iter(runner, 0)
