"""Where does inference time go? (the EfficientViT paper, Fig. 2)

torch.profiler records one forward pass with every block wrapped in a named
range. Each operator's self time is charged to the innermost block it ran in
and to one of two kinds:

* compute-bound: convolutions and matrix products;
* memory-bound: everything else -- reshapes/permutes/copies, element-wise
  arithmetic, normalisation, softmax, activations -- split into those
  groups in the CSV.
"""
import contextlib
import csv
import re
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile, record_function

from ..benchmarking.timing import quiet_profiler
from ..models.layers import CascadedGroupAttention, DWConvFFN, PatchMerging

quiet_profiler()  # no kineto log lines on stderr

# (group, kind) by operator name; first match wins.
OP_GROUPS: List[Tuple[str, str, str]] = [
    (r'conv|cudnn|mkldnn_conv', 'convolution', 'compute'),
    (r'(^|::)(addmm|mm|bmm|baddbmm|matmul|linear|addbmm|einsum)$', 'matmul',
     'compute'),
    (r'scaled_dot_product|flash_attention|efficient_attention', 'attention '
     'kernel', 'compute'),
    (r'batch_norm|layer_norm|group_norm|native_norm', 'normalisation',
     'memory'),
    (r'softmax', 'softmax', 'memory'),
    (r'relu|clamp|sigmoid|gelu|hardswish|silu|threshold', 'activation',
     'memory'),
    (r'copy_|clone|contiguous|cat|stack|pad|constant_pad|index|gather|'
     r'_to_copy|fill_|zero_', 'copy/gather', 'memory'),
    (r'add|sub|mul|div|mean|sum|where|neg|abs|rsub', 'element-wise', 'memory'),
    (r'view|reshape|permute|transpose|flatten|split|chunk|unsqueeze|squeeze|'
     r'expand|slice|select|narrow|as_strided|unfold|t$', 'reshape', 'memory'),
]


def classify(op_name: str) -> Tuple[str, str]:
    """(group, 'compute' | 'memory') of an aten operator name."""
    name = op_name.split('::')[-1]
    for pattern, group, kind in OP_GROUPS:
        if re.search(pattern, name):
            return group, kind
    return 'other', 'memory'


def block_type(name: str, module: nn.Module) -> str:
    if isinstance(module, CascadedGroupAttention):
        return 'attention'
    if isinstance(module, DWConvFFN):
        return 'DWConv + FFN'
    if isinstance(module, PatchMerging):
        return 'patch merging'
    if name.endswith('patch_embed'):
        return 'stem'
    return ''


@contextlib.contextmanager
def annotate_blocks(model: nn.Module):
    """Wrap each block's forward in ``record_function('block::<type>')``."""
    handles, stack = [], []

    def pre(label):

        def hook(module, args):
            ctx = record_function(f'block::{label}')
            ctx.__enter__()
            stack.append(ctx)

        return hook

    def post(module, args, output):
        stack.pop().__exit__(None, None, None)

    for name, module in model.named_modules():
        label = block_type(name, module)
        if label:
            handles.append(module.register_forward_pre_hook(pre(label)))
            handles.append(module.register_forward_hook(post))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def runtime_breakdown(model: nn.Module, x: torch.Tensor, forward=None,
                      warmup: int = 2, runs: int = 3) -> List[dict]:
    """Per (block, group) self time in ms per forward, on x's device.

    Time outside every EfficientViT block (necks, heads, the pooling) is
    charged to 'other'.
    """
    forward = forward or (lambda m, t: m(t))
    cuda = x.device.type == 'cuda'
    activities = [ProfilerActivity.CPU
                  ] + ([ProfilerActivity.CUDA] if cuda else [])
    model.eval()
    with torch.inference_mode():
        for _ in range(warmup):
            forward(model, x)
        with annotate_blocks(model), profile(activities=activities) as prof:
            for _ in range(runs):
                forward(model, x)
            if cuda:
                torch.cuda.synchronize()
    totals: Dict[Tuple[str, str, str], float] = defaultdict(float)
    for event in prof.events():
        if event.name.startswith(
                'block::') or not event.name.startswith('aten::'):
            continue
        # innermost enclosing block range
        parent, block = event.cpu_parent, 'other'
        while parent is not None:
            if parent.name.startswith('block::'):
                block = parent.name[len('block::'):]
                break
            parent = parent.cpu_parent
        us = event.self_device_time_total if cuda else \
            event.self_cpu_time_total
        if us <= 0:
            continue
        group, kind = classify(event.name)
        totals[(block, kind, group)] += us / 1e3 / runs
    return [
        dict(block=b, kind=k, group=g, ms=ms)
        for (b, k, g), ms in sorted(totals.items())
    ]


def summarise(rows: Sequence[dict]) -> Dict[str, Dict[str, float]]:
    """block -> {'compute': ms, 'memory': ms}."""
    out: Dict[str, Dict[str, float]] = defaultdict(lambda: {
        'compute': 0.,
        'memory': 0.
    })
    for row in rows:
        out[row['block']][row['kind']] += row['ms']
    return dict(out)


def write_csv(rows: Sequence[dict], path: str) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=['block', 'kind', 'group', 'ms'])
        writer.writeheader()
        for row in rows:
            writer.writerow(dict(row, ms=f'{row["ms"]:.4f}'))


def plot(rows: Sequence[dict], path: str, title: str = '') -> None:
    """Stacked bars: compute- vs memory-bound time per block type."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    summary = summarise(rows)
    order = [
        b for b in ('stem', 'DWConv + FFN', 'attention', 'patch merging',
                    'other') if b in summary
    ]
    compute = [summary[b]['compute'] for b in order]
    memory = [summary[b]['memory'] for b in order]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(order, compute, label='compute-bound (conv, matmul)')
    ax.bar(order, memory, bottom=compute,
           label='memory-bound (reshape, copy, element-wise, norm, softmax)')
    total = sum(compute) + sum(memory)
    for i, b in enumerate(order):
        share = (compute[i] + memory[i]) / max(total, 1e-9)
        ax.text(i, compute[i] + memory[i], f'{share:.0%}', ha='center',
                va='bottom')
    ax.set_ylabel('ms per forward')
    ax.set_title(title or 'Inference time by block and operator kind')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
