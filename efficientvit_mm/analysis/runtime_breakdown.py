"""Where does inference time go? (the EfficientViT paper, Fig. 2)

torch.profiler records forward passes with every block of the model
wrapped in a range named by its *role*. Each operator's self time is
charged to the innermost role it ran in, and to one of two kinds:

* compute-bound: convolutions and matrix products;
* memory-bound: everything else -- reshapes/permutes/copies, element-wise
  arithmetic, normalisation, softmax, activations, pooling -- split into
  those groups in the CSV.

Roles (:data:`ROLES`) are found by module class, by position inside known
backbones and by shape (depthwise convolutions), so the same study runs on
EfficientViT, mmpretrain's Swin, ViT/DeiT, ResNet and ConvNeXt, and on
other models through their class names (``extra_roles``). Time outside
every role (residual adds between blocks, positional embeddings, pooling,
necks and heads) is 'other'.
"""
import contextlib
import csv
import re
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile, record_function

from ..benchmarking.timing import quiet_profiler
from ..errors import UserError

quiet_profiler()  # no kineto log lines on stderr

STEM = 'stem'
PATCH = 'patch embed/merging'
DOWNSAMPLE = 'downsampling'
ATTENTION = 'attention'
TOKEN_MIXING = 'token mixing (dw conv)'
FFN = 'FFN/MLP'
CONV_BLOCK = 'conv block'
NORM = 'normalisation'
OTHER = 'other'
# plotting order
ROLES = (STEM, PATCH, DOWNSAMPLE, ATTENTION, TOKEN_MIXING, FFN, CONV_BLOCK,
         NORM, OTHER)

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
    (r'relu|clamp|sigmoid|gelu|hardswish|silu|threshold|erf|tanh',
     'activation', 'memory'),
    (r'pool', 'pooling', 'memory'),
    (r'copy_|clone|contiguous|cat|stack|pad|constant_pad|index|gather|'
     r'_to_copy|fill_|zero_|roll|im2col|col2im|masked|repeat', 'copy/gather',
     'memory'),
    (r'add|sub|mul|div|mean|sum|where|neg|abs|rsub|^(r?sqrt|pow|exp)_?$',
     'element-wise', 'memory'),
    (r'view|reshape|permute|transpose|flatten|split|chunk|unsqueeze|squeeze|'
     r'expand|slice|select|narrow|as_strided|unfold|^t_?$', 'reshape',
     'memory'),
]

# role of a module by the name of its class or of a base class
CLASS_ROLES: Dict[str, Optional[str]] = {
    # EfficientViT (this package)
    'EfficientViTStem': STEM,
    'EfficientViTDownsample': DOWNSAMPLE,
    'CascadedGroupAttention': ATTENTION,
    'ConvFFN': FFN,
    'DWConvFFN': None,  # a depthwise conv and an FFN: their own roles
    'PatchMerging': PATCH,  # ours and mmcv's (Swin)
    # mmpretrain / mmcv
    'PatchEmbed': PATCH,
    'ShiftWindowMSA': ATTENTION,
    'WindowMSA': ATTENTION,
    'MultiheadAttention': ATTENTION,  # mmpretrain's and torch's
    'FFN': FFN,
    'ConvNeXtBlock': FFN,  # pointwise MLP; its dw conv and norm apart
    'BasicBlock': CONV_BLOCK,
    'Bottleneck': CONV_BLOCK,
}
# roles of modules at a path inside a backbone or block, by its class name
PATH_ROLES: Dict[str, Dict[str, str]] = {
    'ResNet': {
        'stem': STEM,
        'conv1': STEM,
        'relu': STEM,
        'maxpool': STEM
    },
    'ConvNeXt': {
        'downsample_layers.0': STEM,
        'downsample_layers.1': DOWNSAMPLE,
        'downsample_layers.2': DOWNSAMPLE,
        'downsample_layers.3': DOWNSAMPLE
    },
    # the strided shortcut of a ResNet block
    'BasicBlock': {
        'downsample': DOWNSAMPLE
    },
    'Bottleneck': {
        'downsample': DOWNSAMPLE
    },
}
# a class name matching none of the above, by pattern
NAME_PATTERNS = [(r'Attention$|MSA$', ATTENTION), (r'FFN|Mlp|MLP$', FFN),
                 (r'PatchEmbed|PatchMerg', PATCH)]
NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
         nn.LocalResponseNorm)
# a depthwise conv mixes tokens only inside these roles (or none); in
# attention, patch merging and stems it is part of that layer
DW_HOSTS = (None, FFN, CONV_BLOCK, DOWNSAMPLE)


def classify(op_name: str) -> Tuple[str, str]:
    """(group, 'compute' | 'memory') of an aten operator name."""
    name = op_name.split('::')[-1]
    for pattern, group, kind in OP_GROUPS:
        if re.search(pattern, name):
            return group, kind
    return 'other', 'memory'


def _class_names(module: nn.Module) -> List[str]:
    return [cls.__name__ for cls in type(module).__mro__]


def _is_depthwise(module: nn.Module) -> bool:
    """A 2d conv (or a conv + norm pair) with one group per channel."""
    conv = getattr(module, 'conv', module)
    return (isinstance(conv, nn.Conv2d) and conv.groups > 1
            and conv.groups == conv.in_channels == conv.out_channels)


def module_roles(
        model: nn.Module,
        extra_roles: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Module name -> role, for the modules that open a role range.

    A module's role comes from, in order: ``extra_roles`` (class name ->
    role, for models this module does not know); being a norm layer; its place
    in a known backbone (:data:`PATH_ROLES`); its class (:data:`CLASS_ROLES`,
    base classes included); being a depthwise conv outside attention,
    patch and stem layers (token mixing); its class name's pattern. Modules
    without one run inside their parent's role.
    """
    extra = dict(extra_roles or {})
    roles: Dict[str, str] = {}
    at_path: Dict[str, str] = {}

    def role_of(name: str, module: nn.Module, enclosing: Optional[str]):
        classes = _class_names(module)
        for cls in classes:
            if cls in extra:
                return extra[cls]
        if isinstance(module, NORMS):
            return NORM
        if name in at_path:
            return at_path[name]
        for cls in classes:
            if cls in CLASS_ROLES:
                return CLASS_ROLES[cls]
        if _is_depthwise(module) and enclosing in DW_HOSTS:
            return TOKEN_MIXING
        for pattern, role in NAME_PATTERNS:
            if re.search(pattern, classes[0]):
                return role
        return None

    def visit(name: str, module: nn.Module, enclosing: Optional[str]):
        for cls in _class_names(module):
            for path, role in PATH_ROLES.get(cls, {}).items():
                at_path[f'{name}.{path}' if name else path] = role
        role = role_of(name, module, enclosing)
        if role is not None:
            roles[name] = role
            enclosing = role
        for child_name, child in module.named_children():
            visit(f'{name}.{child_name}' if name else child_name, child,
                  enclosing)

    visit('', model, None)
    return roles


@contextlib.contextmanager
def annotate_roles(model: nn.Module, extra_roles: Optional[Dict[str,
                                                                str]] = None):
    """Wrap the forward of each module with a role (see
    :func:`module_roles`) in ``record_function('role::<role>')``."""
    handles, stack = [], []

    def pre(label):

        def hook(module, args):
            ctx = record_function(f'role::{label}')
            ctx.__enter__()
            stack.append(ctx)

        return hook

    def post(module, args, output):
        stack.pop().__exit__(None, None, None)

    modules = dict(model.named_modules())
    for name, role in module_roles(model, extra_roles).items():
        handles.append(modules[name].register_forward_pre_hook(pre(role)))
        handles.append(modules[name].register_forward_hook(post))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def profiler_activities(device) -> List[ProfilerActivity]:
    """What torch.profiler records on ``device``: CPU operators, plus the
    CUDA kernels they launch on a CUDA device (whose times are charged)."""
    cuda = torch.device(device).type == 'cuda'
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])


def event_us(event, cuda: bool) -> float:
    """Self time of a profiler event in microseconds: the time of the
    kernels it launched on CUDA, its own CPU time otherwise."""
    return event.self_device_time_total if cuda else \
        event.self_cpu_time_total


def enclosing_role(event) -> str:
    """The innermost ``role::`` range around a profiler event, or
    'other'."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith('role::'):
            return parent.name[len('role::'):]
        parent = parent.cpu_parent
    return OTHER


def runtime_breakdown(
        model: nn.Module, x: torch.Tensor, forward=None, warmup: int = 2,
        runs: int = 3, extra_roles: Optional[Dict[str,
                                                  str]] = None) -> List[dict]:
    """Per (role, kind, group) self time in ms per forward, on x's device.

    Rows ``dict(role, kind, group, ms)``; on CUDA the time is that of the
    kernels each operator launched.
    """
    forward = forward or (lambda m, t: m(t))
    cuda = x.device.type == 'cuda'
    model.eval()
    with torch.inference_mode():
        for _ in range(warmup):
            forward(model, x)
        with annotate_roles(model, extra_roles), profile(
                activities=profiler_activities(x.device)) as prof:
            for _ in range(runs):
                forward(model, x)
            if cuda:
                torch.cuda.synchronize()
    totals: Dict[Tuple[str, str, str], float] = defaultdict(float)
    for event in prof.events():
        if not event.name.startswith('aten::'):
            continue
        us = event_us(event, cuda)
        if us <= 0:
            continue
        group, kind = classify(event.name)
        totals[(enclosing_role(event), kind, group)] += us / 1e3 / runs
    return [
        dict(role=r, kind=k, group=g, ms=ms)
        for (r, k, g), ms in sorted(totals.items())
    ]


def summarise(rows: Sequence[dict]) -> Dict[str, Dict[str, float]]:
    """role -> {'compute': ms, 'memory': ms}, in :data:`ROLES` order."""
    out: Dict[str, Dict[str, float]] = {}
    for role in ROLES + tuple(sorted({r['role'] for r in rows} - set(ROLES))):
        parts = [r for r in rows if r['role'] == role]
        if parts:
            out[role] = {
                kind: sum(r['ms'] for r in parts if r['kind'] == kind)
                for kind in ('compute', 'memory')
            }
    return out


def memory_share(summary: Dict[str, Dict[str, float]]) -> float:
    """Memory-bound fraction of the total time of a :func:`summarise`."""
    total = sum(v['compute'] + v['memory'] for v in summary.values())
    return sum(v['memory'] for v in summary.values()) / max(total, 1e-12)


def format_summary(label: str, rows: Sequence[dict]) -> str:
    """A table of one model's :func:`summarise`: ms per role and kind, the
    role's share of the time and its memory-bound share."""
    summary = summarise(rows)
    total = sum(v['compute'] + v['memory'] for v in summary.values())
    lines = [
        f'{label}: {total:.2f} ms per forward, '
        f'{memory_share(summary):.0%} memory-bound',
        f'  {"role":<24}{"compute ms":>11}{"memory ms":>11}{"of time":>9}'
        f'{"mem-bound":>10}'
    ]
    for role, v in summary.items():
        both = v['compute'] + v['memory']
        lines.append(f'  {role:<24}{v["compute"]:>11.2f}{v["memory"]:>11.2f}'
                     f'{both / total:>9.0%}{v["memory"] / both:>10.0%}')
    return '\n'.join(lines)


def write_csv(results: Dict[str, Sequence[dict]], path: str) -> None:
    """One row per (model, role, kind, operator group)."""
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(
            f, fieldnames=['model', 'role', 'kind', 'group', 'ms'])
        writer.writeheader()
        for model, rows in results.items():
            for row in rows:
                writer.writerow(dict(row, model=model, ms=f'{row["ms"]:.4f}'))


def plot(results: Dict[str, Sequence[dict]], path: str,
         title: str = '') -> None:
    """Models side by side: (a) the split of time over roles, (b) the
    memory-bound share of all the time, (c) the memory-bound share of each
    role's time."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    summaries = {m: summarise(rows) for m, rows in results.items()}
    models = list(summaries)
    roles = [r for r in ROLES if any(r in s for s in summaries.values())]
    colours = dict(zip(ROLES, plt.get_cmap('tab10').colors))
    fig, (ax_a, ax_b,
          ax_c) = plt.subplots(1, 3, figsize=(16, 4.8),
                               gridspec_kw=dict(width_ratios=[3, 2, 5]))
    left = np.zeros(len(models))
    for role in roles:
        share = np.array([
            sum(summaries[m].get(role, {}).values()) /
            sum(sum(v.values()) for v in summaries[m].values()) for m in models
        ])
        ax_a.barh(models, share, left=left, label=role, color=colours[role])
        left += share
    ax_a.set_xlim(0, 1)
    ax_a.invert_yaxis()
    ax_a.set_xlabel('share of inference time')
    ax_a.set_title('(a) time by role')
    ax_a.legend(fontsize=7, loc='upper center', bbox_to_anchor=(0.5, -0.15),
                ncol=3)
    shares = [memory_share(summaries[m]) for m in models]
    ax_b.bar(range(len(models)), shares, color='tab:red')
    for i, s in enumerate(shares):
        ax_b.text(i, s, f'{s:.0%}', ha='center', va='bottom')
    ax_b.set_xticks(
        range(len(models)), models, rotation=30, ha='right', fontsize=8)
    ax_b.set_ylim(0, 1)
    ax_b.set_title('(b) memory-bound share of the time')
    width = 0.8 / len(models)
    for i, m in enumerate(models):
        values = [
            summaries[m][r]['memory'] /
            max(sum(summaries[m][r].values()), 1e-12)
            if r in summaries[m] else np.nan for r in roles
        ]
        ax_c.bar(
            np.arange(len(roles)) + (i - (len(models) - 1) / 2) * width,
            values, width, label=m)
    ax_c.set_xticks(
        range(len(roles)), roles, rotation=25, ha='right', fontsize=8)
    ax_c.set_ylim(0, 1)
    ax_c.set_title('(c) memory-bound share of each role\'s time')
    ax_c.legend(fontsize=7, loc='upper center', bbox_to_anchor=(0.5, -0.3),
                ncol=min(len(models), 4))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_roles(items: Optional[Sequence[str]]) -> Dict[str, str]:
    """``['ClassName=role', ...]`` (the ``--role`` option) as a dict."""
    out = {}
    for item in items or []:
        cls, sep, role = item.partition('=')
        if not sep or not cls or not role:
            raise UserError(f'--role takes ClassName=role, got {item!r} '
                            f'(roles: {", ".join(ROLES)})')
        out[cls] = role
    return out


def config_breakdown(cfg, shape: Optional[Sequence[int]] = None,
                     batch_size: int = 16, device: str = 'cpu',
                     deploy: bool = False, runs: int = 3, warmup: int = 2,
                     extra_roles: Optional[Dict[str, str]] = None,
                     name: str = 'the config') -> List[dict]:
    """:func:`runtime_breakdown` of the model of ``cfg`` (random weights:
    they do not change the time) on a random ``batch_size`` batch;
    ``deploy`` folds BatchNorm first (models with ``switch_to_deploy``)."""
    from ..apis import DEFAULT_SHAPES, tensor_model
    from ..deploy import switch_to_deploy
    from ..deploy.switch import has_deploy_mode
    from ..runtime.config import drop_pretrained, task_of
    drop_pretrained(cfg.model)
    shape = tuple(shape or DEFAULT_SHAPES[task_of(cfg)])
    net = tensor_model(cfg, shape).to(device)
    if deploy:
        if not has_deploy_mode(net.model):
            raise UserError(f'--deploy: the model of {name} has no '
                            f'switch_to_deploy() (no BatchNorm to fold); '
                            f'profile it without --deploy')
        switch_to_deploy(net.model)
    x = torch.randn(batch_size, 3, *shape, device=device)
    return runtime_breakdown(net, x, warmup=warmup, runs=runs,
                             extra_roles=extra_roles)
