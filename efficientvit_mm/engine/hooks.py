"""Hooks that keep a training run honest and its work safe.

* :class:`AtomicCheckpointHook` -- mmengine's ``CheckpointHook`` whose every
  save (periodic, best, published, ``last_checkpoint``) goes to a temporary
  file in the same folder, is fsynced and renamed into place; checkpoints
  that rotate out (``max_keep_ckpts``, a previous best) are removed only
  after their successor and ``last_checkpoint`` are complete; a checkpoint
  with non-finite weights is never written. ``tools/train.py`` uses it in
  place of ``CheckpointHook``.
* :class:`DivergenceHook` -- stops training at the first non-finite loss
  or gradient norm (or a loss above ``max_loss``), before the optimizer
  applies it, naming the iteration and the loss terms. On in the configs
  (``default_hooks.divergence``), off with
  ``default_hooks.divergence.enabled=False``.
"""
import contextlib
import math
import os
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..checkpoint.io import (TEMP_PREFIX, atomic_save, atomic_write_text,
                             commit, fsync_file, is_temp_file, save_error)
from ..errors import DivergenceError


def bare_model(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if is_model_wrapper(model) else model


def non_finite_tensors(model: torch.nn.Module, shown: int = 3) -> List[str]:
    """Names of (up to ``shown``) weights and buffers of ``model`` holding
    a NaN or an infinity."""
    bad = []
    for name, tensor in bare_model(model).state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad.append(name)
            if len(bad) == shown:
                break
    return bad


def _last_checkpoint_note(runner) -> str:
    last = runner.message_hub.get_info('last_ckpt')
    return f'the last checkpoint, {last}, is kept' if last else \
        'no checkpoint was saved before'


class _DeferredRemovals:
    """A file backend whose ``remove``/``rmtree`` only note the path; the
    rest goes to the real backend."""

    def __init__(self, backend):
        self._backend = backend
        self.pending: List[str] = []

    def remove(self, path: str) -> None:
        self.pending.append(str(path))

    rmtree = remove

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose saves never leave a partial
    file under a final name and never remove the only good checkpoint.

    Local folders only; other storage backends save as ``CheckpointHook``
    does.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._atomic = isinstance(self.file_backend, LocalBackend)
        self._written: List[str] = []
        if not self._atomic:
            return
        if is_main_process():
            for folder in {self.out_dir, runner.work_dir}:
                remove_unfinished_writes(folder)
        if not getattr(runner, '_evit_atomic_saves', False):
            runner.save_checkpoint = self._atomic_saver(
                runner, runner.save_checkpoint)
            runner._evit_atomic_saves = True

    def _atomic_saver(self, runner, save):
        """``runner.save_checkpoint`` writing to a temporary name, then
        renaming; refuses weights that are not finite."""

        def save_atomically(out_dir, filename, *args, **kwargs):
            final = osp.join(out_dir, filename)
            bad = non_finite_tensors(runner.model)
            if bad:
                raise DivergenceError(
                    f'not saving {final}: the weights are not finite '
                    f'({", ".join(bad)}); {_last_checkpoint_note(runner)}. '
                    f'Lower the learning rate, then resume from it.')
            tmp = f'{TEMP_PREFIX}{filename}.{os.getpid()}'
            try:
                save(out_dir, tmp, *args, **kwargs)
                if is_main_process():
                    fsync_file(osp.join(out_dir, tmp))
                    commit(osp.join(out_dir, tmp), final)
            except BaseException as err:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(osp.join(out_dir, tmp))
                if isinstance(err, OSError):
                    raise save_error(final, err) from None
                raise
            self._written.append(final)

        return save_atomically

    def _retire_ids(self, runner, step: int) -> List[str]:
        """Record ``step`` as kept; the paths that fall out of
        ``max_keep_ckpts`` (to remove once the new one is saved)."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
            return []
        retired = []
        while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
            old = self.keep_ckpt_ids.popleft()
            retired.append(
                self.file_backend.join_path(self.out_dir,
                                            self.filename_tmpl.format(old)))
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return retired

    def _remove(self, paths: List[str], since: int) -> None:
        """Remove ``paths``, except any written under the same name since
        the ``since``-th save."""
        if not is_main_process():
            return
        for path in paths:
            if path in self._written[since:]:
                continue
            backend = self.file_backend
            if backend.isfile(path):
                backend.remove(path)
            elif backend.isdir(path):  # deepspeed saves folders
                backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._atomic:
            return super()._save_checkpoint_with_step(runner, step, meta)
        since = len(self._written)
        retired = self._retire_ids(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, filename, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler,
                               meta=meta, by_epoch=self.by_epoch,
                               backend_args=self.backend_args, **self.args)
        if is_main_process():
            atomic_write_text(
                osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        self._remove(retired, since)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not getattr(self, '_atomic', False):
            return super()._save_best_checkpoint(runner, metrics)
        since = len(self._written)
        real, deferred = self.file_backend, _DeferredRemovals(
            self.file_backend)
        self.file_backend = deferred  # the old best goes after the new one
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = real
        self._remove(deferred.pending, since)

    def _publish_model(self, runner, ckpt_path: str) -> None:
        import mmengine.runner as mm_runner
        plain = mm_runner.save_checkpoint
        mm_runner.save_checkpoint = lambda checkpoint, filename, **_: \
            atomic_save(checkpoint, filename)
        try:
            super()._publish_model(runner, ckpt_path)
        finally:
            mm_runner.save_checkpoint = plain


def remove_unfinished_writes(folder: str) -> List[str]:
    """Delete the temporary files of atomic writes a crash left in
    ``folder`` (they never carry a final name); returns their names."""
    if not osp.isdir(folder):
        return []
    names = [n for n in os.listdir(folder) if is_temp_file(n)]
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.remove(osp.join(folder, name))
    return names


def _total_grad_norm(optim_wrapper) -> float:
    grads = [
        p.grad for group in optim_wrapper.optimizer.param_groups
        for p in group['params'] if p.grad is not None
    ]
    if not grads:
        return 0.
    return float(torch.nn.utils.get_total_norm(grads))


def _format_terms(terms: Dict[str, torch.Tensor]) -> str:
    return ', '.join(f'{k}={float(v):.4g}' for k, v in terms.items())


@HOOKS.register_module()
class DivergenceHook(Hook):
    """Stop training at the first non-finite loss or gradient norm.

    The losses are checked when the model adds them up, the gradient norm
    just before the optimizer step (skipped under mixed precision, whose
    loss scaler handles overflows), so the weights never take the bad
    update and the last checkpoint stays the last finite state.

    Args:
        enabled: False switches the check off.
        max_loss: a finite total loss above this also counts as divergence
            (None: only NaN and infinity do).
        check_grad_norm: also check the norm of the gradients.
    """
    priority = 'VERY_HIGH'

    def __init__(self, enabled: bool = True, max_loss: Optional[float] = 1e8,
                 check_grad_norm: bool = True):
        self.enabled = enabled
        self.max_loss = max_loss
        self.check_grad_norm = check_grad_norm
        self._bad: Optional[str] = None
        self._terms: Dict[str, torch.Tensor] = {}

    def before_train(self, runner) -> None:
        if not self.enabled:
            return
        model = bare_model(runner.model)
        if hasattr(model, 'parse_losses') and not hasattr(
                model.parse_losses, '_evit_checked'):
            model.parse_losses = self._checked_parse(model.parse_losses)
        wrapper = runner.optim_wrapper
        # one wrapper, or each of an OptimWrapperDict's (GAN-style models
        # with one optimizer per part)
        wrappers = list(wrapper.values()) if hasattr(
            wrapper, 'optim_wrappers') else [wrapper]
        for one in wrappers:
            if hasattr(one, 'step') and hasattr(one, 'optimizer') and \
                    not hasattr(one.step, '_evit_checked'):
                one.step = self._checked_step(runner, one)
        self._runner = runner

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        # a model whose train_step steps no wrapper we checked (its own
        # optimisation loop) still stops, one update late
        if self.enabled and self._bad is not None:
            self._stop(runner, updated=True)

    def _checked_parse(self, parse):

        def parse_losses(losses):
            total, log_vars = parse(losses)
            names = [k for k, v in log_vars.items() if torch.is_tensor(v)]
            values = torch.stack(
                [log_vars[k].detach().float().reshape(()) for k in names])
            self._terms = dict(zip(names, values))
            finite = torch.isfinite(values)
            if not bool(finite.all()):  # one sync for all terms
                bad = [k for k, ok in zip(names, finite.tolist()) if not ok]
                # the terms that made the total so; the total alone when
                # finite terms overflowed it
                self._bad = 'non-finite ' + ', '.join(
                    [k for k in bad if k != 'loss'] or bad)
            elif self.max_loss is not None and \
                    float(total.detach()) > self.max_loss:
                self._bad = (f'loss {float(total.detach()):.3g} > max_loss '
                             f'{self.max_loss:g}')
            return total, log_vars

        parse_losses._evit_checked = True
        return parse_losses

    def _checked_step(self, runner, wrapper):
        step = wrapper.step
        amp = hasattr(wrapper, 'loss_scaler')

        def checked_step(*args, **kwargs):
            if self._bad is None and self.check_grad_norm and not amp:
                norm = _total_grad_norm(wrapper)
                if not math.isfinite(norm):
                    self._bad = f'non-finite gradient norm ({norm})'
            if self._bad is not None:
                self._stop(runner)
            return step(*args, **kwargs)

        checked_step._evit_checked = True
        return checked_step

    def _stop(self, runner, updated: bool = False) -> None:
        when = ('after the weights took this update (no optimizer step was '
                'checked before it)'
                if updated else 'before the weights took this update')
        raise DivergenceError(
            f'training diverged at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}): {self._bad}; loss terms: '
            f'{_format_terms(self._terms)}.\nStopped {when}; '
            f'{_last_checkpoint_note(runner)}. Lower the '
            f'learning rate (optim_wrapper.optimizer.lr) or clip gradients '
            f'(optim_wrapper.clip_grad=dict(max_norm=10)), then --resume '
            f'from it; default_hooks.divergence.enabled=False turns this '
            f'check off.')
