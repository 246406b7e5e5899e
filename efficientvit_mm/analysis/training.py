"""Brief training and evaluation of classifiers for the efficiency studies
(MHSA proportion, Taylor pruning): a model of one config trained on the
data of another (the shapes crops on a CPU), with progress lines."""
import contextlib
import logging
import math
import time
from typing import Callable, Iterable

import torch
import torch.nn as nn

from ..errors import UserError


@contextlib.contextmanager
def quiet_mmengine():
    """mmengine's current logger at WARNING within the block (model
    initialisation otherwise prints one line per parameter)."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def init_weights(model: nn.Module) -> nn.Module:
    """``model.init_weights()`` (mmengine's initialisers, as a training run
    starts), without its log lines."""
    with quiet_mmengine():
        model.init_weights()
    return model


def data_model_cfg(cfg, data_cfg):
    """The model config of ``cfg`` set up to train on ``data_cfg``'s data:
    its head sized for the data's classes (top-1 only), its data
    preprocessor (mean, std, colour order) taken from the data config,
    batch augments (Mixup, CutMix) and pretrained weights dropped."""
    import copy

    from ..runtime.config import drop_pretrained
    head = (data_cfg.get('model') or {}).get('head') or {}
    num_classes = head.get('num_classes')
    if not isinstance(num_classes, int):
        raise UserError(
            'the data config has no model.head.num_classes: give a '
            'classification config whose head is sized for its dataset '
            '(e.g. configs/demo/efficientvit_m0_shapes_cls.py)')
    model = copy.deepcopy(cfg.model)
    drop_pretrained(model)
    if 'head' not in model or 'num_classes' not in model.head:
        raise UserError('the model config has no model.head.num_classes: '
                        'the studies train image classifiers')
    model.head.num_classes = num_classes
    if 'topk' in model.head:
        model.head.topk = (1, )
    model.train_cfg = None
    pre = dict(data_cfg.get('data_preprocessor') or {})
    pre.update((data_cfg.model.get('data_preprocessor') or {}))
    pre.setdefault('type', 'mmpretrain.ClsDataPreprocessor')
    pre['num_classes'] = num_classes
    model.data_preprocessor = pre
    out = copy.deepcopy(cfg)
    out.model = model
    return out


def build_loader(data_cfg, split: str, seed: int = 0):
    """The ``<split>_dataloader`` of a config, built (mmengine Runner's
    builder); a missing one is a clear error."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    loader = data_cfg.get(f'{split}_dataloader')
    if not loader:
        raise UserError(f'the data config has no {split}_dataloader')
    init_default_scope(data_cfg.get('default_scope', 'mmpretrain'))
    try:
        return Runner.build_dataloader(loader, seed=seed)
    except FileNotFoundError as err:
        raise UserError(
            f'{split} data not found ({err}); write the shapes crops with '
            f'`python tools/shapes_demo.py cls` (or point the data config '
            f'elsewhere with --data-options data_root=PATH)') from None


def first_batch(loader: Iterable, split: str = 'train'):
    """The first batch of ``loader``; an empty one is a clear error."""
    for data in loader:
        return data
    raise UserError(f'the {split} dataloader gives no batch: its split has '
                    f'fewer images than its batch_size (with drop_last) or '
                    f'none; point the data config at more data')


def lr_schedule(total_iters: int, warmup_iters: int) -> Callable[[int], float]:
    """Linear warm-up from 1% then cosine to 1% of the base lr."""

    def factor(i: int) -> float:
        if i < warmup_iters:
            return 0.01 + 0.99 * i / max(warmup_iters, 1)
        t = (i - warmup_iters) / max(total_iters - warmup_iters, 1)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.)))

    return factor


def train_briefly(model: nn.Module, data_cfg, epochs: float,
                  say: Callable[[str], None] = print, label: str = '',
                  log_every: int = 20, seed: int = 0) -> dict:
    """Train ``model`` (an mmpretrain classifier) on the train split of
    ``data_cfg`` for ``epochs`` (a fraction allowed) with its optimizer,
    one epoch of warm-up at most, then cosine decay. Progress lines go to
    ``say``. Returns dict(iters, seconds, last_loss)."""
    from mmengine.optim import build_optim_wrapper
    loader = build_loader(data_cfg, 'train', seed)
    total = max(1, int(round(epochs * len(loader))))
    with quiet_mmengine():
        optim = build_optim_wrapper(model, data_cfg.optim_wrapper)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optim.optimizer, lr_schedule(total, min(len(loader), total // 5)))
    model.train()
    start, done, loss = time.time(), 0, float('nan')
    while done < total:
        for data in loader:
            logs = model.train_step(data, optim)
            schedule.step()
            done += 1
            loss = logs['loss'].item()
            if done % log_every == 0 or done == total:
                say(f'{label} iter {done}/{total} (epoch '
                    f'{done / len(loader):.1f}) loss {loss:.3f} '
                    f'{time.time() - start:.0f}s')
            if done == total:
                break
    return dict(iters=total, seconds=time.time() - start, last_loss=loss)


@torch.no_grad()
def top1_accuracy(model: nn.Module, loader: Iterable) -> float:
    """Top-1 accuracy (%) of an mmpretrain classifier over a loader."""
    model.eval()
    correct = count = 0
    for data in loader:
        for sample in model.val_step(data):
            correct += int(sample.pred_label[0] == sample.gt_label[0])
            count += 1
    if not count:
        raise UserError('the val split holds no images')
    return 100. * correct / count
