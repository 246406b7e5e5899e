"""How alike are the attention heads? (the EfficientViT paper, Fig. 4)

For every attention layer and every head, the cosine similarity between that
head's output and each other head's output is averaged over a set of images;
the maximum over the other heads is the head's redundancy score. Cascaded
group attention should give lower scores than plain multi-head attention
(the same model with ``cascade=False``).
"""
import contextlib
import csv
import glob
import os.path as osp
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..models.layers import CascadedGroupAttention


@contextlib.contextmanager
def record_head_outputs(model: torch.nn.Module):
    """Within the block, every attention layer appends its per-head outputs
    (list of (N, C/h, H, W)) to ``records[name]`` on each forward."""
    layers = [(n, m) for n, m in model.named_modules()
              if isinstance(m, CascadedGroupAttention)]
    if not layers:
        raise ValueError('the model has no CascadedGroupAttention layer')
    records: Dict[str, List[List[torch.Tensor]]] = {n: [] for n, _ in layers}
    for name, layer in layers:

        def wrapped(x, window=None, _name=name, _fn=layer.head_outputs):
            outs = _fn(x, window)
            records[_name].append([o.detach() for o in outs])
            return outs

        layer.head_outputs = wrapped
    try:
        yield records
    finally:
        for _, layer in layers:
            del layer.head_outputs  # back to the class method


def head_similarity(model: torch.nn.Module, batches: Iterable[torch.Tensor],
                    forward=None) -> List[dict]:
    """Max cosine similarity of each head to the other heads, per layer.

    Args:
        model: an eager (not deploy) model containing EfficientViT attention.
        batches: image tensors (N, 3, H, W), already normalised.
        forward: ``callable(model, x)``; default ``model(x)``.

    Returns rows ``dict(layer, block, head, max_cos_sim, closest_head)``,
    the similarity averaged over all windows of all images.
    """
    forward = forward or (lambda m, x: m(x))
    sums: Dict[str, torch.Tensor] = {}
    counts: Dict[str, int] = {}
    model.eval()
    with torch.no_grad(), record_head_outputs(model) as records:
        for x in batches:
            for name in records:
                records[name].clear()
            forward(model, x)
            for name, calls in records.items():
                for heads in calls:  # one call per forward (windows batched)
                    flat = torch.stack([h.flatten(1) for h in heads])
                    flat = F.normalize(flat, dim=2)  # (heads, N, D)
                    # (heads, heads) cosine similarity summed over samples
                    sim = torch.einsum('ind,jnd->ij', flat, flat)
                    sums[name] = sums.get(name, 0) + sim
                    counts[name] = counts.get(name, 0) + flat.shape[1]
    rows = []
    for block, name in enumerate(sums):
        sim = sums[name] / counts[name]
        sim.fill_diagonal_(-float('inf'))
        best, partner = sim.max(dim=1)
        for head in range(sim.shape[0]):
            rows.append(
                dict(layer=name, block=block, head=head,
                     max_cos_sim=float(best[head]),
                     closest_head=int(partner[head])))
    return rows


def write_csv(rows: Sequence[dict], path: str, variant: str = '') -> None:
    with open(path, 'w', newline='') as f:
        fields = [
            'variant', 'layer', 'block', 'head', 'max_cos_sim', 'closest_head'
        ]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(dict(row, variant=row.get('variant', variant)))


def plot(results: Dict[str, Sequence[dict]], path: str,
         title: Optional[str] = None) -> None:
    """Mean (and spread) of the per-head max similarity for each block."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, rows in results.items():
        blocks = sorted({r['block'] for r in rows})
        values = [[r['max_cos_sim'] for r in rows if r['block'] == b]
                  for b in blocks]
        means = [float(np.mean(v)) for v in values]
        ax.plot(blocks, means, marker='o', label=label)
        ax.fill_between(blocks, [min(v) for v in values],
                        [max(v) for v in values], alpha=0.15)
    ax.set_xlabel('attention block')
    ax.set_ylabel('max cosine similarity to another head')
    ax.set_title(title or 'Head similarity (mean over heads, range shaded)')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def load_images(folder: Optional[str], num: int, size: int,
                seed: int = 0) -> np.ndarray:
    """(N, size, size, 3) uint8 RGB images: the jpg/png files under
    ``folder`` (resized), or synthetic shapes scenes without one."""
    import cv2
    if folder:
        files = sorted(
            f for ext in ('jpg', 'jpeg', 'png', 'JPEG') for f in glob.glob(
                osp.join(folder, '**', f'*.{ext}'), recursive=True))
        if not files:
            raise UserError(f'no jpg/png images found under {folder}')
        return np.stack([
            cv2.resize(cv2.imread(path), (size, size))[..., ::-1]
            for path in files[:num]
        ])
    from ..datasets.shapes import ShapesGenerator
    gen = ShapesGenerator(image_size=size, seed=seed)
    return np.stack([s.image for s in gen.scenes(num)])


def normalised_batches(images: np.ndarray, cfg,
                       batch_size: int) -> Iterator[torch.Tensor]:
    """(N, 3, H, W) float batches normalised with the config's data
    preprocessor mean and std (images are RGB, as the models expect)."""
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor')
    mean = torch.tensor(pre.get('mean', [123.675, 116.28, 103.53]))
    std = torch.tensor(pre.get('std', [58.395, 57.12, 57.375]))
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size].copy()).float()
        yield ((x - mean) / std).permute(0, 3, 1, 2).contiguous()


def config_head_similarity(cfg, checkpoint: Optional[str], images: np.ndarray,
                           batch_size: int = 16) -> List[dict]:
    """:func:`head_similarity` of the model of ``cfg`` (weights from
    ``checkpoint``, or random ones with None) on ``images``."""
    from ..apis import tensor_model
    size = images.shape[1:3]
    net = tensor_model(cfg, size, checkpoint)
    return head_similarity(net, normalised_batches(images, cfg, batch_size))
