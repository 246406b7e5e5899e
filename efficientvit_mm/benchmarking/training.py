"""Training-step measurements shared by the benchmark scripts.

A step is one Runner iteration: ``model.train_step`` (data preprocessor,
forward, losses, backward) plus the optimizer step of the config's own optim
wrapper. Models are built with random weights (no download), timed in turn
after warm-up (so a busy spell of the machine hits all of them alike), and
their peak memory is read from the allocator.
"""
import statistics
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from ..engine.optim_wrappers import amp_optim_wrapper
from ..runtime.config import drop_pretrained, load_config
from .timing import peak_memory, sync, time_interleaved


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
    cfg = load_config(config)
    drop_pretrained(cfg.model)
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
    return dict(
        step_s=statistics.median(times), step_s_min=min(times),
        peak_mem_gib=peak / 2**30,
        params_m=sum(p.numel() for p in model.parameters()) / 1e6)


def det_batch(batch_size: int, shape: Sequence[int], boxes: int = 8,
              num_classes: int = 80, seed: int = 0) -> dict:
    """A detection batch as a dataloader gives it: uint8 images and random
    boxes and labels."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(seed)
    h, w = shape
    size = torch.tensor([w, h])
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(
            torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen))
        xy = torch.rand(boxes, 2, generator=gen) * size * 0.8
        wh = (torch.rand(boxes, 2, generator=gen) * 0.3 + 0.05) * size
        gt = InstanceData(
            bboxes=torch.cat([xy, (xy + wh).minimum(size)], 1),
            labels=torch.randint(0, num_classes, (boxes, ), generator=gen))
        sample = DetDataSample(gt_instances=gt)
        sample.set_metainfo(
            dict(
                img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.),
                pad_shape=(h, w), batch_input_shape=(h, w)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def seg_batch(batch_size: int, shape: Sequence[int], num_classes: int = 150,
              seed: int = 0) -> dict:
    """A segmentation batch as a dataloader gives it: uint8 images and
    random label maps."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    h, w = shape
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(
            torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen))
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, h, w), generator=gen))
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def train_steps(configs: Dict[str, str], batch: dict, device: str = 'cpu',
                amp: bool = False, warmup: int = 1, repeats: int = 3,
                backbone: Optional[dict] = None) -> Dict[str, dict]:
    """Step time (median and min, interleaved) and step peak memory of the
    model of each config, on the same batch; figures per name."""
    built = {
        name: build_for_training(config, device, amp, backbone)
        for name, config in configs.items()
    }
    times = time_interleaved(
        {
            name: (lambda m=m, w=w: m.train_step(batch, w))
            for name, (m, w) in built.items()
        }, warmup, repeats, device)
    return {
        name: train_step_figures(model, wrapper, batch, times[name], device)
        for name, (model, wrapper) in built.items()
    }


def backbone_step(config: str, batch_size: int, shape: Sequence[int],
                  device: str = 'cpu', **backbone) -> dict:
    """Time and peak memory of forward + backward of the backbone of
    ``config`` alone (the part ``with_cp`` checkpoints) on a float batch."""
    from mmengine.registry import MODELS
    cfg = load_config(config)
    drop_pretrained(cfg.model)
    cfg.model.backbone.update(backbone)
    model = MODELS.build(cfg.model.backbone).to(device).train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, *shape, generator=gen).to(device)

    def step():
        outs = model(x)
        sum(o.float().mean() for o in outs).backward()

    seconds = time_interleaved({'step': step}, 1, 1, device)['step'][0]
    sync(device)
    return dict(step_s=seconds, step_s_min=seconds,
                peak_mem_gib=peak_memory(step, device) / 2**30,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6)
