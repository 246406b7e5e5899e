"""How many attention layers does a model need? (the paper's Fig. 3)

Subnetworks of a model keep a chosen fraction of its attention layers
(MHSA); every other attention layer is replaced by an FFN of the same
width: a fresh FFN built like the block's own (same hidden ratio, the same
drop path), fed the same normalised input and added to the same residual.
Each variant's throughput and peak memory are measured in one run, timed
interleaved; optionally each is trained briefly and its top-1 accuracy
measured.

Blocks known: EfficientViT's sandwich block (cascaded group attention ->
ConvFFN), mmpretrain's Swin block (ShiftWindowMSA -> FFN) and ViT/DeiT
encoder layer (MultiheadAttention -> FFN); any block with an ``attn`` and
an mmcv ``ffn`` child works the same way.
"""
import copy
import csv
import math
import textwrap
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from ..errors import UserError

PLACEMENTS = ('spread', 'first', 'last')


class FFNInPlaceOfAttention(nn.Module):
    """An FFN where an attention layer was. Extra forward arguments of the
    attention (Swin's ``hw_shape``) are ignored; no residual is added here:
    the block adds it, as it did for the attention.

    Shape: as the attention's input (tokens or maps), unchanged.
    """

    def __init__(self, ffn: nn.Module):
        super().__init__()
        self.ffn = ffn

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.ffn(x)


def _reset(module: nn.Module) -> nn.Module:
    """Fresh parameters for every layer of ``module`` (their defaults; the
    model's ``init_weights`` may then apply its own initialisers)."""
    for m in module.modules():
        if m is not module and callable(getattr(m, 'reset_parameters', None)):
            m.reset_parameters()
    return module


def _efficientvit_ffn(block: nn.Module) -> nn.Module:
    """A fresh copy of the sandwich block's ConvFFN: its width, hidden ratio
    and norm layers (the model's ``norm_cfg``), the second norm starting at
    zero as a new ConvFFN's does."""
    ffn = _reset(copy.deepcopy(block.pre.ffn))
    weight = getattr(ffn.pw2.bn, 'weight', None)
    if weight is not None:
        with torch.no_grad():
            weight.zero_()
    return ffn


def _mmcv_ffn(block: nn.Module) -> nn.Module:
    """A fresh copy of the block's mmcv FFN, without its identity add."""
    ffn = _reset(copy.deepcopy(block.ffn))
    ffn.add_identity = False
    return ffn


def ffn_for(block: nn.Module) -> Optional[Callable[[nn.Module], nn.Module]]:
    """The maker of the replacement FFN of a block holding an attention
    layer in ``attn``, or None for any other module."""
    from ..models.backbones.efficientvit import EfficientViTBlock
    if isinstance(block, EfficientViTBlock):
        return _efficientvit_ffn
    ffn = getattr(block, 'ffn', None)
    if isinstance(getattr(block, 'attn', None), nn.Module) and hasattr(
            ffn, 'add_identity'):
        return _mmcv_ffn
    return None


def attention_blocks(model: nn.Module) -> List[str]:
    """Names of the blocks whose ``attn`` can be swapped, in order."""
    names = [n for n, m in model.named_modules() if ffn_for(m) is not None]
    if not names:
        raise UserError(
            f'{type(model).__name__} has no block this study knows '
            f'(EfficientViT sandwich blocks, mmpretrain Swin blocks, ViT '
            f'encoder layers, or a block with attn and an mmcv ffn)')
    return names


def kept_indices(num: int, fraction: float, placement: str) -> List[int]:
    """Which of ``num`` attention layers a ``fraction`` keeps: the nearest
    whole number of them, spread evenly over the depth, or the first or
    last ones."""
    if not 0. <= fraction <= 1.:
        raise UserError(f'MHSA fractions must lie in [0, 1], got {fraction}')
    if placement not in PLACEMENTS:
        raise UserError(f'placement must be one of {PLACEMENTS}, got '
                        f'{placement!r}')
    k = int(math.floor(fraction * num + 0.5))
    if placement == 'first':
        return list(range(k))
    if placement == 'last':
        return list(range(num - k, num))
    return [int(math.floor((i + 0.5) * num / k)) for i in range(k)]


def replace_attention(model: nn.Module, keep: Sequence[int]) -> List[str]:
    """Swap the attention of every block not in ``keep`` (indices into
    :func:`attention_blocks`) for an FFN; returns the swapped blocks."""
    modules = dict(model.named_modules())
    swapped = []
    for i, name in enumerate(attention_blocks(model)):
        if i not in keep:
            block = modules[name]
            block.attn = FFNInPlaceOfAttention(ffn_for(block)(block))
            swapped.append(name)
    return swapped


@dataclass
class Variant:
    """One subnetwork: its label, which attention layers it keeps of how
    many, and the built model."""
    label: str
    kept: List[int]
    num_attention: int
    model: nn.Module = field(repr=False)

    @property
    def proportion(self) -> float:
        return len(self.kept) / self.num_attention


def build_variants(cfg, fractions: Sequence[float], placement: str = 'spread',
                   seed: int = 0) -> List[Variant]:
    """One model of ``cfg`` per distinct number of kept attention layers,
    each initialised as a training run starts (same seed for all)."""
    from ..apis import build_model
    from .training import init_weights
    variants, seen = [], set()
    for fraction in sorted(fractions, reverse=True):
        torch.manual_seed(seed)
        model = build_model(cfg)
        num = len(attention_blocks(model))
        keep = kept_indices(num, fraction, placement)
        if len(keep) in seen:
            continue
        seen.add(len(keep))
        replace_attention(model, keep)
        init_weights(model)
        variants.append(
            Variant(f'{len(keep)}/{num} MHSA', keep, num, model.eval()))
    return variants


def measure_speed(variants: Sequence[Variant], batch_size: int,
                  shape: Sequence[int], device: str = 'cpu',
                  **timing) -> Dict[str, dict]:
    """Throughput, latency and peak memory of every variant, timed
    interleaved in this process (:func:`benchmarking.inference.benchmark`).
    """
    from ..apis.model import TensorForward
    from ..benchmarking.inference import benchmark
    nets = {
        v.label: TensorForward(v.model).eval().to(device)
        for v in variants
    }
    return benchmark({
        k: (m, m)
        for k, m in nets.items()
    }, batch_size, shape, device, channels_last={k: False
                                                 for k in nets}, **timing)


FIELDS = [
    'model', 'variant', 'mhsa_layers', 'attention_layers', 'proportion',
    'kept', 'params', 'images_per_s', 'batch_ms', 'peak_mib', 'top1', 'train_s'
]


def result_row(model: str, variant: Variant, speed: dict,
               top1: Optional[float] = None,
               train_s: Optional[float] = None) -> dict:
    """One CSV row of a variant."""
    params = sum(p.numel() for p in variant.model.parameters())
    return dict(model=model, variant=variant.label, mhsa_layers=len(
        variant.kept), attention_layers=variant.num_attention,
                proportion=round(variant.proportion,
                                 4), kept=' '.join(map(str, variant.kept)),
                params=params, images_per_s=round(speed['images_per_s'], 2),
                batch_ms=round(speed['batch_ms'],
                               3), peak_mib=round(speed['peak_mib'], 3),
                top1='' if top1 is None else round(top1, 2),
                train_s='' if train_s is None else round(train_s, 1))


def write_csv(rows: Sequence[dict], path: str) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: str) -> List[dict]:
    """The rows of a :func:`write_csv` file, numbers as numbers."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in ('proportion', 'images_per_s', 'batch_ms', 'peak_mib',
                    'top1', 'train_s'):
            row[key] = '' if row[key] == '' else float(row[key])
    return rows


def plot(rows: Sequence[dict], path: str, title: str = '') -> None:
    """One panel per model, against the proportion of MHSA layers kept:
    throughput relative to the variant with the most MHSA layers (a ratio
    of timings interleaved in one run; images/s and peak memory written at
    each point) and, when trained, top-1 accuracy."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    models = list(dict.fromkeys(r['model'] for r in rows))
    width = max(6.5, 5 * len(models))  # inches; ~12 title characters each
    fig, axes = plt.subplots(1, len(models), figsize=(width, 4.2),
                             squeeze=False)
    for ax, name in zip(axes[0], models):
        mine = sorted((r for r in rows if r['model'] == name),
                      key=lambda r: r['proportion'])
        x = [100 * r['proportion'] for r in mine]
        base = mine[-1]['images_per_s']
        ratio = [r['images_per_s'] / base for r in mine]
        ax.plot(x, ratio, 'o-', color='tab:blue', label='throughput')
        ax.set_ylim(min(0.8, min(ratio) - 0.05), max(1.2, max(ratio) + 0.15))
        ax.set_xlabel('MHSA layers kept (%)')
        ax.set_ylabel(f'throughput / {mine[-1]["variant"]}', color='tab:blue')
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        for r, xi, yi in zip(mine, x, ratio):
            rate = r['images_per_s']
            speed = f'{rate:.0f}/s' if rate >= 100 else f'{rate:.3g}/s'
            ax.annotate(f'{speed}\n{r["peak_mib"]:.0f} MiB', (xi, yi),
                        textcoords='offset points', xytext=(0, 6), ha='center',
                        fontsize=7)
        if all(r['top1'] != '' for r in mine):
            acc = ax.twinx()
            acc.plot(x, [r['top1'] for r in mine], 's--', color='tab:red',
                     label='top-1')
            acc.set_ylabel('top-1 accuracy (%)', color='tab:red')
    if title:
        fig.suptitle(textwrap.fill(title, int(12 * width)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def study(cfg, label: str, fractions: Sequence[float], batch_size: int,
          shape: Sequence[int], device: str = 'cpu', placement: str = 'spread',
          data_cfg=None, epochs: float = 0., seed: int = 0,
          say: Callable[[str], None] = print, **timing) -> List[dict]:
    """The MHSA-proportion study of one config: its variants built (and,
    with ``data_cfg`` and ``epochs``, trained briefly and scored on the val
    split), then timed interleaved. Returns one :func:`result_row` each."""
    from .training import (build_loader, data_model_cfg, top1_accuracy,
                           train_briefly)
    if data_cfg is not None:
        cfg = data_model_cfg(cfg, data_cfg)
    variants = build_variants(cfg, fractions, placement, seed)
    for v in variants:  # (BaseModel.to moves its data preprocessor too)
        v.model.to(device)
    say(f'{label}: {len(variants)} variants, keeping ' +
        ', '.join(v.label for v in variants))
    scores: Dict[str, tuple] = {}
    if data_cfg is not None and epochs > 0:
        val = build_loader(data_cfg, 'val', seed)
        for i, v in enumerate(variants):
            say(f'{label} [{i + 1}/{len(variants)}] training {v.label} '
                f'for {epochs:g} epoch(s)')
            torch.manual_seed(seed)
            run = train_briefly(v.model, data_cfg, epochs, say, f'  {v.label}',
                                seed=seed)
            scores[v.label] = (top1_accuracy(v.model, val), run['seconds'])
            say(f'  {v.label}: top-1 {scores[v.label][0]:.1f}% after '
                f'{run["seconds"]:.0f}s')
    say(f'{label}: timing {len(variants)} variants interleaved (batch '
        f'{batch_size}, {shape[0]}x{shape[1]}, {device})')
    with torch.no_grad():
        speed = measure_speed(variants, batch_size, shape, device, **timing)
    rows = [
        result_row(label, v, speed[v.label],
                   *scores.get(v.label, (None, None))) for v in variants
    ]
    for r in rows:
        say(f'  {r["variant"]:>10}: {r["images_per_s"]:9.1f} img/s, peak '
            f'{r["peak_mib"]:8.1f} MiB' +
            (f', top-1 {r["top1"]:.1f}%' if r['top1'] != '' else ''))
    return rows
