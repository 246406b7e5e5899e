"""Training-step measurements shared by the benchmark scripts.

A step is one Runner iteration: ``model.train_step`` (data preprocessor,
forward, losses, backward) plus the optimizer step of the config's own optim
wrapper. Models are built with random weights (no download), timed in turn
after warm-up (so a busy spell of the machine hits all of them alike), and
their peak memory is read from the allocator.
"""
import statistics
from typing import List, Optional

import torch.nn as nn

from .measure import peak_memory

# the AMP twin of each optim wrapper type the configs use
AMP_WRAPPERS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'AmpOptimWrapper': 'AmpOptimWrapper',
    'AGCOptimWrapper': 'AGCAmpOptimWrapper',
    'AGCAmpOptimWrapper': 'AGCAmpOptimWrapper',
}


def amp_optim_wrapper(optim_cfg: dict) -> dict:
    """The mixed-precision version of an ``optim_wrapper`` config."""
    optim_cfg = dict(optim_cfg)
    kind = optim_cfg.get('type', 'OptimWrapper')
    if kind not in AMP_WRAPPERS:
        raise ValueError(f'no mixed-precision twin known for optim wrapper '
                         f'{kind!r}; known: {sorted(AMP_WRAPPERS)}')
    optim_cfg['type'] = AMP_WRAPPERS[kind]
    optim_cfg.setdefault('loss_scale', 'dynamic')
    return optim_cfg


def load_any_config(config: str):
    """A config file, or ``mmdet::...``/``mmseg::...`` of an installed
    toolbox, with every pretrained checkpoint dropped (random weights)."""
    from mmengine.config import Config
    if '::' in config:
        from mmengine.hub import get_config
        cfg = get_config(config)
    else:
        cfg = Config.fromfile(config)

    def drop_pretrained(node):
        if isinstance(node, dict):
            if node.get('pretrained'):
                node['pretrained'] = None
            init = node.get('init_cfg')
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                node['init_cfg'] = None
            for value in node.values():
                drop_pretrained(value)

    drop_pretrained(cfg.model)
    return cfg


def build_for_training(config: str, device: str = 'cpu', amp: bool = False,
                       backbone: Optional[dict] = None):
    """(model, optim wrapper) of ``config`` in training mode, random weights.

    ``backbone`` overrides backbone settings (e.g. ``with_cp=True``). Off
    CUDA, SyncBN becomes BN, as in any single-process run.
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope

    import efficientvit_mm  # noqa: F401
    cfg = load_any_config(config)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    if backbone:
        cfg.model.backbone.update(backbone)
    model = MODELS.build(cfg.model)
    if device != 'cuda':
        model = revert_sync_batchnorm(model)
    model.init_weights()
    model.to(device).train()
    optim_cfg = amp_optim_wrapper(cfg.optim_wrapper) if amp else \
        cfg.optim_wrapper
    return model, build_optim_wrapper(model, optim_cfg)


def train_step_figures(model: nn.Module, wrapper, batch: dict,
                       times: List[float], device: str = 'cpu') -> dict:
    """Median/min step time and peak step memory of a built model."""
    peak = peak_memory(lambda: model.train_step(batch, wrapper), device)
    return dict(step_s=statistics.median(times), step_s_min=min(times),
                peak_mem_gib=peak / 2**30,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6)
