"""Which channels matter? Taylor structured pruning (the paper's Fig. 5).

Every prunable group of channels gets a *gate*, a vector of ones multiplied
into the activation the channels produce (by forward hooks; the model is
not changed). Units, one gate entry each:

* ``qk``: one dimension of a head's query/key space. Q and K channels meet
  only in their product, so removing either makes the other useless: they
  go together, and the kept Q and K ratios are equal;
* ``v``: one value channel of a head (its column of the projection too);
* ``ffn``: one hidden channel of an FFN (a row of the first layer, a column
  of the second);
* ``head``: a whole head (all its V channels, hence its Q/K too).

Zeroing gate entry ``u`` removes the unit, so the first-order Taylor
estimate of the change of the loss is ``-dL/dg_u``: the same quantity as
``sum(grad * weight)`` over the unit's weights (Molchanov et al., 2019).
Importance is its square averaged over batches. Pruning removes, step by
step, the units with the least importance per unit of cost (parameters or
FLOPs) until the budget is met, re-estimating importance (and optionally
fine-tuning) between steps. Each unit knows the parameter slices it owns,
so the pruned parameter count is exact; its FLOPs are the multiply-adds of
its rows and columns in the linear and conv layers (as mmengine's
FlopAnalyzer counts them).

Blocks known: EfficientViT's sandwich block and downsampling sandwich,
mmpretrain's Swin block and ViT/DeiT encoder layer; any block with an
``attn`` holding a fused ``qkv``/``proj`` multi-head attention and an mmcv
``ffn`` works the same way.
"""
import csv
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..errors import UserError
from ..models.layers import CascadedGroupAttention, ConvFFN, ConvNorm

KINDS = ('qk', 'v', 'ffn', 'head')
# (parameter, dim, index): one slice of a weight a unit owns
Slice = Tuple[nn.Parameter, int, int]


@dataclass(eq=False)
class Unit:
    """One prunable unit: its gate entry, the weight slices it owns, its
    multiply-adds per image and where it lives."""
    kind: str
    block: str
    layer: str
    gate: torch.Tensor = field(repr=False)
    index: int
    width: int  # the embedding width of the layer (the ratio's divisor)
    head: Optional[int] = None
    slices: List[Slice] = field(default_factory=list, repr=False)
    flops_per_token: int = 0
    tokens: int = 0  # per image, set by the probe forward
    alive: bool = True

    @property
    def params(self) -> int:
        return sum(p.select(d, i).numel() for p, d, i in self.slices)

    @property
    def flops(self) -> int:
        return self.flops_per_token * self.tokens


@dataclass(eq=False)
class AttentionGroup:
    """The units of one attention layer; heads index into ``qk``/``v``."""
    qk: List[List[Unit]]
    v: List[List[Unit]]
    heads: List[Unit]


def _token_positions(x: torch.Tensor) -> int:
    """Tokens of a (..., N, C) input of a Linear, all batches together."""
    return x[..., 0].numel()


def _map_positions(x: torch.Tensor) -> int:
    """Positions of a (B, C, H, W) input of a conv."""
    return x.shape[0] * x.shape[2] * x.shape[3]


def _gate(n: int, like: torch.Tensor) -> torch.Tensor:
    """n ones of ``like``'s dtype and device, a leaf that takes gradients."""
    return torch.ones(n, dtype=like.dtype, device=like.device,
                      requires_grad=True)


def _hook(module: nn.Module, fn: Callable) -> Callable:
    """A forward hook returning ``fn(output)``; returns its remover."""
    return module.register_forward_hook(lambda m, a, out: fn(out)).remove


def _channel_gate(out: torch.Tensor, gate: torch.Tensor,
                  dim: int) -> torch.Tensor:
    shape = [1] * out.dim()
    shape[dim] = -1
    return out * gate.view(shape)


class Pruner:
    """Gates on every prunable unit of ``model`` (an image classifier),
    their importance and their removal.

    Use as a context manager: the gate hooks are in place inside it.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.units: List[Unit] = []
        self.attention: List[AttentionGroup] = []
        self.blocks: Dict[str, List[Unit]] = {}
        self._installs: List[Callable[[], Callable]] = []
        self._removers: List[Callable] = []
        self._probes: List[Callable] = []
        for name, module in model.named_modules():
            self._add_block(name, module)
        if not self.units:
            raise UserError(
                f'{type(model).__name__} has no block Taylor pruning knows '
                '(EfficientViT blocks, mmpretrain Swin blocks or ViT encoder '
                'layers, or blocks with attn (qkv + proj) and an mmcv ffn)')

    # --------------------------------------------------------- discovery
    def _add_block(self, name: str, block: nn.Module) -> None:
        from ..models.backbones.efficientvit import (EfficientViTBlock,
                                                     EfficientViTDownsample)
        units: List[Unit] = []
        if isinstance(block, (EfficientViTBlock, EfficientViTDownsample)):
            if any(m.fused for m in block.modules()
                   if isinstance(m, ConvNorm)):
                raise UserError(
                    f'{name} has its BatchNorms folded (deploy mode): Taylor '
                    'pruning gates and removes BN channels, so prune the '
                    'trainable model, before switch_to_deploy')
            if isinstance(
                    getattr(block, 'attn', None), CascadedGroupAttention):
                units += self._cascaded(name, f'{name}.attn', block.attn)
            for part in ('pre', 'post'):
                units += self._conv_ffn(name, f'{name}.{part}.ffn',
                                        getattr(block, part).ffn)
        elif hasattr(getattr(block, 'ffn', None), 'add_identity'):
            found = _fused_attention(f'{name}.attn',
                                     getattr(block, 'attn', None))
            if found is not None:
                units += self._fused(name, *found)
            units += self._mmcv_ffn(name, f'{name}.ffn', block.ffn)
        if units:
            self.blocks[name] = units
            self.units += units

    def _conv_ffn(self, block: str, layer: str, ffn: ConvFFN) -> List[Unit]:
        """Hidden channels of an EfficientViT ConvFFN (1x1 ConvNorms)."""
        hidden, width = ffn.pw1.conv.out_channels, ffn.pw1.conv.in_channels
        gate = _gate(hidden, ffn.pw1.conv.weight)
        units = [
            Unit(
                'ffn', block, layer, gate, h, width,
                slices=[(ffn.pw1.conv.weight, 0, h), (ffn.pw1.bn.weight, 0, h),
                        (ffn.pw1.bn.bias, 0, h), (ffn.pw2.conv.weight, 1, h)],
                flops_per_token=2 * width) for h in range(hidden)
        ]
        self._installs.append(
            lambda: _hook(ffn.pw1, lambda out: _channel_gate(out, gate, 1)))
        self._probe(ffn.pw1.conv, units, _map_positions)
        return units

    def _mmcv_ffn(self, block: str, layer: str, ffn: nn.Module) -> List[Unit]:
        """Hidden channels of an mmcv FFN with two layers (Linear, act,
        dropout; Linear)."""
        if ffn.num_fcs != 2:
            raise UserError(f'{layer}: FFNs of {ffn.num_fcs} layers are not '
                            'supported (two: Linear, act, Linear)')
        fc1, fc2 = ffn.layers[0][0], ffn.layers[1]
        gate = _gate(fc1.out_features, fc1.weight)
        units = [
            Unit(
                'ffn', block, layer, gate, h, fc1.in_features,
                slices=[(fc1.weight, 0, h), (fc2.weight, 1, h)] +
                ([(fc1.bias, 0, h)] if fc1.bias is not None else []),
                flops_per_token=fc1.in_features + fc2.out_features)
            for h in range(fc1.out_features)
        ]
        self._installs.append(lambda: _hook(
            ffn.layers[0], lambda out: _channel_gate(out, gate, -1)))
        self._probe(fc1, units, _token_positions)
        return units

    def _fused(self, block: str, layer: str, attn: nn.Module) -> List[Unit]:
        """Q/K dims, V channels and heads of a multi-head attention with a
        fused ``qkv`` Linear (rows [q | k | v], heads side by side) and a
        ``proj`` Linear (WindowMSA, ViT's MultiheadAttention)."""
        qkv, proj, heads = attn.qkv, attn.proj, attn.num_heads
        width = qkv.in_features
        dims = qkv.out_features // 3
        hd = dims // heads
        qk_gate, v_gate = _gate(dims, qkv.weight), _gate(dims, qkv.weight)
        head_gate = _gate(heads, qkv.weight)

        def rows(r):
            return [(qkv.weight, 0, r)
                    ] + ([(qkv.bias, 0, r)] if qkv.bias is not None else [])

        group = AttentionGroup([], [], [])
        units = []
        for h in range(heads):
            qk = [
                Unit('qk', block, layer, qk_gate, h * hd + j, width, h,
                     rows(h * hd + j) + rows(dims + h * hd + j),
                     flops_per_token=2 * width) for j in range(hd)
            ]
            v = [
                Unit(
                    'v', block, layer, v_gate, h * hd + j, width, h,
                    rows(2 * dims + h * hd + j) +
                    [(proj.weight, 1, h * hd + j)],
                    flops_per_token=width + proj.out_features)
                for j in range(hd)
            ]
            table = getattr(attn, 'relative_position_bias_table', None)
            own = [(table, 1, h)] if isinstance(table, nn.Parameter) else []
            head = Unit('head', block, layer, head_gate, h, width, h, own)
            group.qk.append(qk)
            group.v.append(v)
            group.heads.append(head)
            units += qk + v + [head]
        self.attention.append(group)

        def multiplier():
            v = v_gate * head_gate.repeat_interleave(hd)
            return torch.cat([qk_gate, torch.ones_like(qk_gate), v])

        self._installs.append(lambda: _hook(
            qkv, lambda out: _channel_gate(out, multiplier(), -1)))
        self._probe(qkv, units, _token_positions)
        return units

    def _cascaded(self, block: str, layer: str,
                  attn: CascadedGroupAttention) -> List[Unit]:
        """Q/K dims, V channels and heads of EfficientViT's cascaded group
        attention (one qkv ConvNorm and one Q depthwise conv per head)."""
        kd, hd = attn.key_dim, attn.head_dims
        width = attn.embed_dims
        group = AttentionGroup([], [], [])
        head_gate = _gate(attn.num_heads, attn.proj.conv.weight)
        units = []
        for h, (qkv, dw) in enumerate(zip(attn.qkvs, attn.dws)):
            qk_gate = _gate(kd, qkv.conv.weight)
            v_gate = _gate(hd, qkv.conv.weight)
            fan_in = qkv.conv.in_channels
            k2 = dw.conv.kernel_size[0] * dw.conv.kernel_size[1]

            def norm_row(cn, r):
                return [(cn.conv.weight, 0, r), (cn.bn.weight, 0, r),
                        (cn.bn.bias, 0, r)]

            qk = [
                Unit(
                    'qk', block, layer, qk_gate, j, width, h,
                    norm_row(qkv, j) + norm_row(qkv, kd + j) + norm_row(dw, j),
                    flops_per_token=2 * fan_in + k2) for j in range(kd)
            ]
            v = [
                Unit(
                    'v', block, layer, v_gate, j, width, h,
                    norm_row(qkv, 2 * kd + j) +
                    [(attn.proj.conv.weight, 1, h * hd + j)],
                    flops_per_token=fan_in + attn.proj.conv.out_channels)
                for j in range(hd)
            ]
            head = Unit('head', block, layer, head_gate, h, width, h,
                        [(attn.attention_biases, 0, h)])
            group.qk.append(qk)
            group.v.append(v)
            group.heads.append(head)
            units += qk + v + [head]

            def multiplier(v_gate=v_gate, h=h):
                qk = torch.ones(2 * kd, dtype=v_gate.dtype,
                                device=v_gate.device)
                return torch.cat([qk, v_gate * head_gate[h]])

            self._installs.append(lambda dw=dw, g=qk_gate: _hook(
                dw, lambda out: _channel_gate(out, g, 1)))
            self._installs.append(lambda qkv=qkv, m=multiplier: _hook(
                qkv, lambda out: _channel_gate(out, m(), 1)))
            self._probe(qkv.conv, qk + v, _map_positions)
        self.attention.append(group)
        return units

    def _probe(self, module: nn.Module, units: List[Unit],
               positions: Callable[[torch.Tensor], int]) -> None:
        """Record, in :meth:`count_tokens`, the positions the units' layer
        computes (``positions(input)`` summed over its calls)."""

        def install():

            def hook(m, args):
                for u in units:
                    u.tokens += positions(args[0])

            return module.register_forward_pre_hook(hook).remove

        self._probes.append(install)

    # ----------------------------------------------------------- running
    def __enter__(self):
        self._removers = [install() for install in self._installs]
        return self

    def __exit__(self, *exc):
        for remove in self._removers:
            remove()
        self._removers = []

    def count_tokens(self, forward: Callable[[torch.Tensor], object],
                     shape: Sequence[int]) -> None:
        """Tokens per image of every unit's layer, from one forward of a
        (2, 3, H, W) input."""
        for u in self.units:
            u.tokens = 0
        removers = [install() for install in self._probes]
        try:
            with torch.no_grad():
                forward(torch.zeros(2, 3, *shape))
        finally:
            for remove in removers:
                remove()
        for u in self.units:
            u.tokens //= 2

    def gates(self) -> List[torch.Tensor]:
        return list({id(u.gate): u.gate for u in self.units}.values())

    def importance(
            self,
            losses: Iterable[Callable[[], torch.Tensor]]) -> Dict[Unit, tuple]:
        """Per unit: (mean squared, mean signed) first-order change of the
        loss when it is removed, ``-dL/dg``, over ``losses`` (callables
        returning one batch's loss, run with the gates in place)."""
        gates = self.gates()
        squares = {id(g): torch.zeros_like(g) for g in gates}
        signed = {id(g): torch.zeros_like(g) for g in gates}
        count = 0
        for loss_fn in losses:
            grads = torch.autograd.grad(loss_fn(), gates, allow_unused=True)
            for g, grad in zip(gates, grads):
                if grad is not None:
                    squares[id(g)] += grad.detach()**2
                    signed[id(g)] -= grad.detach()
            count += 1
        if not count:
            raise UserError('no batch to estimate the importance on')
        return {
            u: (float(squares[id(u.gate)][u.index]) / count,
                float(signed[id(u.gate)][u.index]) / count)
            for u in self.units
        }

    # ----------------------------------------------------------- pruning
    def remove(self, unit: Unit) -> List[Unit]:
        """Remove a unit (its gate entry set to 0), and every unit that is
        useless without it: the Q/K and V of a removed head; a head with no
        V channel left, and its Q/K. Returns the units removed now (none
        when ``unit`` was already removed)."""
        if not unit.alive:
            return []
        unit.alive = False
        removed = [unit]
        with torch.no_grad():
            unit.gate[unit.index] = 0.
        for group in self.attention:
            for h, head in enumerate(group.heads):
                if head is unit:
                    for u in group.qk[h] + group.v[h]:
                        removed += self.remove(u)
                elif head.alive and not any(u.alive for u in group.v[h]):
                    removed += self.remove(head)
        return removed

    def alive(self, kind: Optional[str] = None) -> List[Unit]:
        return [
            u for u in self.units
            if u.alive and (kind is None or u.kind == kind)
        ]

    def removed_cost(self, what: str) -> int:
        """Parameters or FLOPs of the removed units."""
        return sum(getattr(u, what) for u in self.units if not u.alive)

    def block_ratios(self) -> List[dict]:
        """Per block: kept Q, K, V and FFN channels over the width of the
        layer they work in (the block's embedding width; FFN: the mean over
        the block's FFNs), before and after pruning, and the kept heads."""
        rows = []
        for i, (name, units) in enumerate(self.blocks.items()):
            row = dict(index=i, block=name, width=units[0].width)
            for kind, label in (('qk', 'q'), ('qk', 'k'), ('v', 'v'),
                                ('ffn', 'ffn'), ('head', 'heads')):
                before, after = _kept_ratio(
                    [u for u in units if u.kind == kind], kind != 'head')
                row[f'{label}_before'], row[f'{label}_after'] = before, after
            rows.append(row)
        return rows


def _kept_ratio(units: List[Unit], per_width: bool) -> Tuple:
    """(before, after): the units of each layer over its width (or their
    count), averaged over the layers; ('', '') without units."""
    if not units:
        return '', ''
    layers: Dict[str, List[Unit]] = {}
    for u in units:
        layers.setdefault(u.layer, []).append(u)
    scale = [u[0].width if per_width else 1 for u in layers.values()]
    before = np.mean([len(u) / w for u, w in zip(layers.values(), scale)])
    after = np.mean(
        [sum(x.alive for x in u) / w for u, w in zip(layers.values(), scale)])
    return round(float(before), 4), round(float(after), 4)


def _fused_attention(name: str, attn: Optional[nn.Module]):
    """(name, module) of the fused multi-head attention inside a block's
    ``attn`` (itself, or Swin's ``w_msa``), or None."""
    if attn is None:
        return None
    for suffix, module in attn.named_modules():
        if isinstance(getattr(module, 'qkv', None), nn.Linear) and isinstance(
                getattr(module, 'proj', None), nn.Linear) and isinstance(
                    getattr(module, 'num_heads', None), int):
            return (f'{name}.{suffix}' if suffix else name), module
    return None


def unit_cost(pruner: Pruner, unit: Unit, what: str) -> int:
    """What removing ``unit`` saves now: its own parameters or FLOPs, plus
    those of the live units a removed head takes with it."""
    cost = getattr(unit, what)
    if unit.kind == 'head':
        for group in pruner.attention:
            if unit in group.heads:
                h = group.heads.index(unit)
                cost += sum(
                    getattr(u, what) for u in group.qk[h] + group.v[h]
                    if u.alive)
    return cost


def prune_step(pruner: Pruner, scores: Dict[Unit, tuple], what: str,
               goal: float, current: float) -> int:
    """Remove the live units of least importance per unit of cost (``what``:
    'params' or 'flops') until ``current`` minus what they saved reaches
    ``goal``; returns how many units were removed (dependents included).

    The saving counted is that of every unit removed, the dependents a
    removal takes along included (the last V channel of a head takes the
    head and its Q/K), so a step never removes more than its goal needs.
    """
    ranked = sorted(
        (u for u in pruner.alive() if unit_cost(pruner, u, what) > 0),
        key=lambda u: scores[u][0] / unit_cost(pruner, u, what))
    removed = 0
    for unit in ranked:
        if current <= goal:
            break
        gone = pruner.remove(unit)  # ([] for a dependent removed already)
        current -= sum(getattr(u, what) for u in gone)
        removed += len(gone)
    return removed


def model_totals(model: nn.Module, shape: Sequence[int]) -> dict:
    """Parameters, and FLOPs (multiply-adds, mmengine's FlopAnalyzer) of one
    (1, 3, H, W) image through ``model(x, mode='tensor')``."""
    from ..apis.model import TensorForward
    from .complexity import flops_by_module
    net = TensorForward(model).eval()
    flops = flops_by_module(net, (torch.zeros(1, 3, *shape), ))['']
    return dict(
        params=sum(p.numel() for p in model.parameters()), flops=int(flops))


def batch_losses(model: nn.Module, loader: Iterable,
                 batches: int) -> Iterable[Callable[[], torch.Tensor]]:
    """``batches`` callables, each returning the loss of the next batch of
    ``loader`` (the model in eval mode: no dropout, BN statistics fixed)."""
    from .training import first_batch
    it = iter(loader)
    for _ in range(batches):
        try:
            data = next(it)
        except StopIteration:  # the loader again, from its start
            it = iter(loader)
            data = first_batch(it)

        def loss(data=data):
            model.eval()
            batch = model.data_preprocessor(data, True)
            losses = model(**batch, mode='loss')
            return model.parse_losses(losses)[0]

        yield loss


def taylor_prune(model: nn.Module, data_cfg, shape: Sequence[int],
                 budget: str = 'flops', target: float = 0.5, steps: int = 10,
                 batches: int = 8, finetune_epochs: float = 0.,
                 say: Callable[[str], None] = print, seed: int = 0) -> dict:
    """Prune ``model`` step by step to ``target`` of its parameters or
    FLOPs (``budget``), with importance re-estimated on ``batches`` train
    batches before each step and ``finetune_epochs`` of training after it.

    Returns dict(blocks=:meth:`Pruner.block_ratios`, steps=[one row per
    step], totals=the unpruned figures); the model keeps its gates in
    place only inside the returned ``pruner``'s context.
    """
    from .training import build_loader, top1_accuracy, train_briefly
    if budget not in ('flops', 'params'):
        raise UserError(f"budget must be 'flops' or 'params', got {budget}")
    if not 0 < target < 1:
        raise UserError(f'the target is a fraction of the model in (0, 1), '
                        f'got {target}')
    pruner = Pruner(model)
    totals = model_totals(model, shape)
    with pruner:
        pruner.count_tokens(lambda x: model(x, mode='tensor'), shape)
    floor = 1 - sum(getattr(u, budget)
                    for u in pruner.alive()) / totals[budget]
    if target <= floor:
        raise UserError(
            f'a target of {target:g} of the {budget} cannot be reached: '
            f'{floor:.1%} of them are in layers pruning does not touch '
            f'(stem, downsampling, head), so even removing every prunable '
            f'unit leaves more; give a target above {floor:.2f}')
    train = build_loader(data_cfg, 'train', seed)
    val = build_loader(data_cfg, 'val',
                       seed) if data_cfg.get('val_dataloader') else None
    history = []

    def record(step):
        row = dict(step=step,
                   params=totals['params'] - pruner.removed_cost('params'),
                   flops=totals['flops'] - pruner.removed_cost('flops'),
                   units=len(pruner.alive()))
        if val is not None:
            with pruner:
                row['top1'] = round(top1_accuracy(model, val), 2)
        history.append(row)
        say(f'step {step}/{steps}: {row["params"] / 1e6:.3f} M params '
            f'({row["params"] / totals["params"]:.0%}), '
            f'{row["flops"] / 1e6:.1f} M FLOPs '
            f'({row["flops"] / totals["flops"]:.0%})' +
            (f', top-1 {row["top1"]:.1f}%' if 'top1' in row else ''))

    record(0)
    for step in range(1, steps + 1):
        goal = totals[budget] * (1 - (1 - target) * step / steps)
        with pruner:
            scores = pruner.importance(batch_losses(model, train, batches))
            if not any(v[0] > 0 for v in scores.values()):
                raise UserError(
                    'every unit has importance 0: the loss does not depend on '
                    'any gate (a classifier head that starts at zero, as '
                    "mmpretrain's ViT head does, passes no gradient back); "
                    'give a trained checkpoint or train first '
                    '(--train-epochs)')
            removed = prune_step(pruner, scores, budget, goal,
                                 totals[budget] - pruner.removed_cost(budget))
            if finetune_epochs > 0:
                train_briefly(model, data_cfg, finetune_epochs, say,
                              f'  fine-tune {step}', seed=seed)
        say(f'step {step}/{steps}: removed {removed} units')
        record(step)
    return dict(blocks=pruner.block_ratios(), steps=history, totals=totals,
                pruner=pruner)


def write_csv(rows: Sequence[dict], path: str) -> None:
    """Rows of dicts with the same keys, as a CSV."""
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot(blocks: Sequence[dict], path: str, title: str = '') -> None:
    """The paper's Fig. 5 layout: per block, the kept Q, K, V and FFN
    channels over the input embedding width after pruning (bars) and
    before (outlines)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    kinds = [('q', 'Q'), ('k', 'K'), ('v', 'V'), ('ffn', 'FFN')]
    colours = dict(q='tab:blue', k='tab:cyan', v='tab:green', ffn='tab:red')
    x = np.arange(len(blocks))
    width = 0.2
    fig, ax = plt.subplots(figsize=(max(7, 0.7 * len(blocks) + 3), 4.2))
    for i, (key, name) in enumerate(kinds):
        after = [
            np.nan if b[f'{key}_after'] == '' else b[f'{key}_after']
            for b in blocks
        ]
        before = [
            np.nan if b[f'{key}_before'] == '' else b[f'{key}_before']
            for b in blocks
        ]
        offset = (i - 1.5) * width
        ax.bar(x + offset, before, width, fill=False, edgecolor=colours[key],
               linewidth=0.8)
        ax.bar(x + offset, after, width, color=colours[key], label=name)
    ax.axhline(1.0, color='black', linestyle='--', linewidth=1,
               label='input embedding')
    ax.set_xticks(x, [str(b['index'] + 1) for b in blocks])
    ax.set_xlabel('block (outlines: before pruning)')
    ax.set_ylabel('channels / input embedding width')
    ax.set_title(title or 'Taylor structured pruning', fontsize=9)
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1))
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
