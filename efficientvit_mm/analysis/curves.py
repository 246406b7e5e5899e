"""Loss and metric curves of one or more runs, drawn from their scalar
logs (see :mod:`.logs`)."""
import os.path as osp
from typing import List, Optional, Sequence

from ..errors import UserError
from .logs import load_scalars

MAX_DEFAULT_PANELS = 8


def default_keys(train: dict, val: dict) -> List[str]:
    """The losses, then the headline metrics (mAP, mIoU, top-1), then the
    other validation metrics."""
    losses = sorted(k for k in train if k.startswith('loss'))
    metrics = sorted(val)
    head = [
        k for k in metrics
        if k.endswith(('bbox_mAP', 'segm_mAP', 'mIoU', 'top1'))
    ]
    return losses + head + [k for k in metrics if k not in head]


def plot_curves(runs: Sequence[str], out: str,
                keys: Optional[Sequence[str]] = None,
                names: Optional[Sequence[str]] = None,
                title: Optional[str] = None) -> List[str]:
    """One panel per series of ``keys`` (default: losses and validation
    metrics, at most 8), one line per run; writes the PNG ``out`` and
    returns the keys drawn."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if names and len(names) != len(runs):
        raise UserError('--legend needs one name per run')
    try:
        logs = [load_scalars(run) for run in runs]
    except (FileNotFoundError, ValueError) as err:
        raise UserError(str(err)) from None
    if not keys:
        keys = []
        for train, val, _ in logs:
            keys += [k for k in default_keys(train, val) if k not in keys]
        keys = keys[:MAX_DEFAULT_PANELS]
    known = sorted({k for t, v, _ in logs for k in list(t) + list(v)})
    if not known:
        raise UserError(f'the logs of {list(runs)} hold no series: did the '
                        f'runs log any iteration?')
    missing = [
        k for k in keys if not any(k in t or k in v for t, v, _ in logs)
    ]
    if missing or not keys:
        raise UserError(f'no series {missing} in the logs; available: '
                        f'{known}')
    names = names or [osp.basename(osp.normpath(r)) for r in runs]
    cols = min(len(keys), 3)
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for name, (train, val, unit) in zip(names, logs):
            series, xlabel = (train[key], 'iteration') if key in train else \
                (val.get(key, []), unit)
            if not series:
                continue
            xs, ys = zip(*series)
            ax.plot(xs, ys, marker='o' if key not in train else None,
                    markersize=3, label=name)
            ax.set_xlabel(xlabel)
        ax.set_title(key)
        ax.grid(alpha=0.3)
        if len(logs) > 1:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return list(keys)
