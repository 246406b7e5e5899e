"""A tiny mmengine Runner (a linear model on 8 random samples, 4 iterations
an epoch, in a fraction of a second) for the tests of training hooks."""
import itertools
import math

import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import METRICS
from torch import nn
from torch.utils.data import DataLoader, Dataset

_RUNS = itertools.count()


class ToySet(Dataset):
    metainfo = dict(classes=('x', ))

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        x = torch.randn(2, generator=g)
        return dict(inputs=x, targets=x.sum(0, keepdim=True))


class _Spike(torch.autograd.Function):
    """Identity forward, infinite gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * math.inf


class ToyModel(BaseModel):
    """``loss_mse`` + ``loss_reg``; at forward call ``nan_at`` the loss is
    NaN, at ``inf_grad_at`` its gradient is infinite, at ``big_at`` it is
    1e9 times larger."""

    def __init__(self, nan_at=None, inf_grad_at=None, big_at=None):
        super().__init__()
        self.fc = nn.Linear(2, 1)
        self.nan_at, self.inf_grad_at, self.big_at = nan_at, inf_grad_at, \
            big_at
        self.calls = 0

    def forward(self, inputs, targets=None, mode='loss'):
        pred = self.fc(inputs)
        if mode != 'loss':
            return [dict(err=float((pred - targets).abs().mean()))]
        self.calls += 1
        if self.calls == self.inf_grad_at:
            pred = _Spike.apply(pred)
        loss = ((pred - targets)**2).mean()
        if self.calls == self.nan_at:
            loss = loss * float('nan')
        if self.calls == self.big_at:
            loss = loss * 1e9 + 1e9
        return dict(loss_mse=loss, loss_reg=1e-3 * self.fc.weight.abs().sum())


@METRICS.register_module(force=True)
class ToyScore(BaseMetric):
    """'score': rises every evaluation (a new best each time)."""
    calls = 0

    def process(self, data_batch, data_samples):
        self.results.extend(data_samples)

    def compute_metrics(self, results):
        ToyScore.calls += 1
        return dict(score=float(ToyScore.calls))


def toy_runner(work_dir, epochs=3, model=None, hooks=None, best=False, keep=1,
               **overrides):
    """A Runner training ``model`` (default :class:`ToyModel`) for
    ``epochs`` epochs of 4 iterations, saving through
    AtomicCheckpointHook every epoch (and the best 'score' with ``best``)."""
    from mmengine.runner import Runner
    loader = DataLoader(ToySet(), batch_size=2, shuffle=False)
    checkpoint = dict(type='AtomicCheckpointHook', interval=1,
                      max_keep_ckpts=keep)
    extra = {}
    if best:
        checkpoint['save_best'] = 'score'
        checkpoint['rule'] = 'greater'
        extra = dict(
            val_dataloader=DataLoader(ToySet(), batch_size=4), val_cfg=dict(),
            val_evaluator=dict(type='ToyScore'))
    args = dict(
        model=model or ToyModel(), work_dir=str(work_dir),
        train_dataloader=loader, train_cfg=dict(by_epoch=True,
                                                max_epochs=epochs,
                                                val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=checkpoint,
                           logger=dict(type='LoggerHook',
                                       interval=1)), custom_hooks=hooks or [],
        log_level='WARNING', experiment_name=f'toy_{next(_RUNS)}',
        default_scope='mmengine', **extra)
    args.update(overrides)
    return Runner(**args)
