"""How alike are the attention heads? (the EfficientViT paper, Fig. 4)

For every attention layer and every head, the cosine similarity between
what that head computes and what each other head computes is averaged over
a set of images (over every window of every image, for windowed
attention); the maximum over the other heads is the head's redundancy
score. Two measures:

* ``maps`` (default, the paper's): the heads' attention maps, softmax(QK^T
  + bias), one (tokens x tokens) map per window;
* ``outputs``: the heads' outputs, attention map times V.

Cascaded group attention should give lower scores than plain multi-head
attention (the same model with ``cascade=False``, or a Swin / ViT).

Both are taken by hooks, without changing the models:

* EfficientViT's :class:`CascadedGroupAttention`: its ``head_outputs``
  (each head's output before the ReLU and the projection); for maps, its
  per-head qkv and Q convs (K and the depthwise-convolved Q, with the
  layer's biases);
* multi-head attention with ``num_heads`` and an output projection ``proj``
  (``nn.Linear``) fed the heads side by side -- mmpretrain's ``WindowMSA``
  (Swin) and ``MultiheadAttention`` (ViT/DeiT), and layers built like them:
  a forward pre-hook on ``proj`` cuts its input into the heads; for maps,
  the output of the layer's ``softmax`` module (WindowMSA: relative
  position biases and shift masks included) or, without one (ViT's fused
  attention), softmax(QK^T / sqrt(d)) from the output of its ``qkv``.
"""
import contextlib
import csv
import glob
import os.path as osp
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from ..models.layers import CascadedGroupAttention

# called with (layer name, [per-head outputs, each (samples, ...)])
HeadSink = Callable[[str, List[torch.Tensor]], None]


def is_projected_mha(module: nn.Module) -> bool:
    """Multi-head attention whose heads meet in a ``proj`` Linear, head
    ``i`` in input channels ``[i*C/h, (i+1)*C/h)`` (WindowMSA, ViT)."""
    proj = getattr(module, 'proj', None)
    heads = getattr(module, 'num_heads', None)
    return (isinstance(proj, nn.Linear) and isinstance(heads, int)
            and heads > 1 and proj.in_features % heads == 0)


def attention_layers(model: nn.Module) -> List[tuple]:
    """(name, module) of every attention layer with per-head outputs we can
    take, in forward (definition) order."""
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, CascadedGroupAttention) or is_projected_mha(m)]


MEASURES = ('maps', 'outputs')


def _tap_cascaded(name: str, layer: CascadedGroupAttention, sink: HeadSink):
    """Hook ``head_outputs`` of one layer; returns its remover."""

    def wrapped(x, window=None, _fn=layer.head_outputs):
        outs = _fn(x, window)
        sink(name, [o.detach().flatten(1) for o in outs])
        return outs

    layer.head_outputs = wrapped

    def remove():
        del layer.head_outputs  # back to the class method

    return remove


def cascaded_map(layer: CascadedGroupAttention, head: int, q: torch.Tensor,
                 k: torch.Tensor) -> torch.Tensor:
    """The attention map of one head of a cascaded group attention from
    its Q (after the depthwise conv) and K, (B, key_dim, h, w) each:
    softmax(Q^T K * scale + bias), (B, h*w, h*w)."""
    bias = layer.attention_bias(q.shape[2], q.shape[3])[head]
    logits = torch.bmm(q.flatten(2).transpose(1, 2), k.flatten(2))
    return (logits * layer.scale + bias).softmax(dim=-1)


def _tap_cascaded_maps(name: str, layer: CascadedGroupAttention,
                       sink: HeadSink):
    """Hooks on each head's qkv conv (its K) and Q conv (its Q): the maps
    of all heads go to ``sink`` once the last head has run."""
    keys, maps, handles = {}, [], []
    kd = layer.key_dim
    for i, (qkv, dw) in enumerate(zip(layer.qkvs, layer.dws)):

        def on_qkv(module, args, out, i=i):
            keys[i] = out.detach()[:, kd:2 * kd]

        def on_q(module, args, out, i=i):
            maps.append(cascaded_map(layer, i, out.detach(), keys.pop(i)))
            if i == layer.num_heads - 1:
                sink(name, [m.flatten(1) for m in maps])
                maps.clear()

        handles.append(qkv.register_forward_hook(on_qkv))
        handles.append(dw.register_forward_hook(on_q))

    def remove():
        for handle in handles:
            handle.remove()

    return remove


def _tap_projected(name: str, layer: nn.Module, sink: HeadSink):
    """A pre-hook on ``layer.proj`` cutting its (B, N, C) input into
    ``num_heads`` (B, N * C/h) head outputs; returns its remover."""

    def hook(module, args):
        x = args[0].detach()
        heads = x.unflatten(-1, (layer.num_heads, -1)).movedim(-2, 0)
        sink(name, [h.flatten(1) for h in heads])

    return layer.proj.register_forward_pre_hook(hook).remove


def fused_qkv_maps(qkv: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Attention maps softmax(QK^T / sqrt(d)) from the (B, N, 3C) output
    of a fused qkv Linear (rows [q | k | v], heads side by side):
    (B, heads, N, N)."""
    b, n, _ = qkv.shape
    q, k, _ = qkv.reshape(b, n, 3, num_heads, -1).permute(2, 0, 3, 1, 4)
    return (q @ k.transpose(-2, -1) * q.shape[-1]**-0.5).softmax(dim=-1)


def _tap_projected_maps(name: str, layer: nn.Module, sink: HeadSink):
    """The (B, heads, N, N) maps out of the layer's ``softmax`` module, or
    recomputed from its ``qkv`` output; returns the remover."""

    def give(maps):
        sink(name, [m.flatten(1) for m in maps.detach().movedim(1, 0)])

    softmax = getattr(layer, 'softmax', None)
    if isinstance(softmax, nn.Softmax):
        return softmax.register_forward_hook(
            lambda m, a, out: give(out)).remove
    qkv = getattr(layer, 'qkv', None)
    if not isinstance(qkv, nn.Linear):
        raise UserError(f'{name}: no softmax module and no fused qkv Linear '
                        f'to take attention maps from; use --measure '
                        f'outputs')
    return qkv.register_forward_hook(lambda m, a, out: give(
        fused_qkv_maps(out.detach(), layer.num_heads))).remove


# the hook installer by (cascaded group attention?, measure)
TAPS = {
    (True, 'outputs'): _tap_cascaded,
    (True, 'maps'): _tap_cascaded_maps,
    (False, 'outputs'): _tap_projected,
    (False, 'maps'): _tap_projected_maps
}


def model_name(model: nn.Module) -> str:
    """The class of the model's backbone (through a tensor wrapper's
    ``model``), or of the model itself."""
    inner = getattr(model, 'model', model)
    return type(getattr(inner, 'backbone', inner)).__name__


@contextlib.contextmanager
def tap_heads(model: nn.Module, sink: HeadSink, measure: str = 'maps'):
    """Within the block, every attention layer passes what each head
    computes -- its attention maps or its outputs (``measure``) -- as a list
    of (samples, D) tensors, one per head, to ``sink(name, heads)`` on each
    forward."""
    if measure not in MEASURES:
        raise UserError(f'measure must be one of {MEASURES}, got '
                        f'{measure!r}')
    layers = attention_layers(model)
    if not layers:
        raise UserError(
            f'{model_name(model)} has no attention layer whose heads can '
            f'be hooked (EfficientViT CascadedGroupAttention, or multi-head '
            f'attention with num_heads and a Linear proj: mmpretrain '
            f'WindowMSA / MultiheadAttention)')
    removers = [
        TAPS[(isinstance(m, CascadedGroupAttention), measure)](n, m, sink)
        for n, m in layers
    ]
    try:
        yield [n for n, _ in layers]
    finally:
        for remove in removers:
            remove()


class SimilarityAccumulator:
    """Sums, per layer, the (heads, heads) cosine similarities of what the
    heads computed for each sample, and counts the samples."""

    def __init__(self):
        self.sums: Dict[str, torch.Tensor] = {}
        self.counts: Dict[str, int] = {}

    def __call__(self, name: str, heads: List[torch.Tensor]) -> None:
        flat = F.normalize(torch.stack(heads).double(), dim=2)  # (h, N, D)
        sim = torch.einsum('ind,jnd->ij', flat, flat)
        self.sums[name] = self.sums.get(name, 0) + sim
        self.counts[name] = self.counts.get(name, 0) + flat.shape[1]

    def rows(self, order: Sequence[str]) -> List[dict]:
        """Rows ``dict(layer, block, head, max_cos_sim, closest_head)``;
        ``block`` numbers the layers that ran, in ``order``."""
        rows = []
        for block, name in enumerate(n for n in order if n in self.sums):
            sim = self.sums[name] / self.counts[name]
            sim.fill_diagonal_(-float('inf'))
            best, partner = sim.max(dim=1)
            for head in range(sim.shape[0]):
                rows.append(
                    dict(layer=name, block=block, head=head,
                         max_cos_sim=float(best[head]),
                         closest_head=int(partner[head])))
        return rows


def head_similarity(model: nn.Module, batches: Iterable[torch.Tensor],
                    forward=None, measure: str = 'maps') -> List[dict]:
    """Max cosine similarity of each head to the other heads, per layer.

    Args:
        model: an eager (not deploy) model with attention layers (see
            :func:`attention_layers`).
        batches: image tensors (N, 3, H, W), already normalised.
        forward: ``callable(model, x)``; default ``model(x)``.
        measure: 'maps' (attention maps) or 'outputs' (head outputs).

    Returns rows ``dict(layer, block, head, max_cos_sim, closest_head)``,
    the similarity averaged over all samples (windows) of all images.
    """
    forward = forward or (lambda m, x: m(x))
    acc = SimilarityAccumulator()
    model.eval()
    with torch.no_grad(), tap_heads(model, acc, measure) as names:
        for x in batches:
            forward(model, x)
    return acc.rows(names)


def block_means(rows: Sequence[dict]) -> List[float]:
    """Mean over heads of the max similarity, per block, in block order."""
    blocks = sorted({r['block'] for r in rows})
    return [
        float(np.mean([r['max_cos_sim'] for r in rows if r['block'] == b]))
        for b in blocks
    ]


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
         title: Optional[str] = None, measure: str = 'maps') -> None:
    """Mean (and spread) of the per-head max similarity for each block."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, rows in results.items():
        blocks = sorted({r['block'] for r in rows})
        values = [[r['max_cos_sim'] for r in rows if r['block'] == b]
                  for b in blocks]
        ax.plot(blocks, block_means(rows), marker='o', label=label)
        ax.fill_between(blocks, [min(v) for v in values],
                        [max(v) for v in values], alpha=0.15)
    ax.set_xlabel('attention block')
    what = 'attention map' if measure == 'maps' else 'output'
    ax.set_ylabel(
        f'max cosine similarity of a head\'s {what}\n'
        'to another head\'s', fontsize=9)
    ax.set_title(title or 'Head similarity (mean over heads, range shaded)',
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_images(folder: Optional[str], num: int, size: int,
                seed: int = 0) -> np.ndarray:
    """(N, size, size, 3) uint8 RGB images: the image files under
    ``folder`` and its sub-folders, any case of extension (resized; ``num``
    spread evenly over the sorted files, so every class folder of a dataset
    split is sampled), or synthetic shapes scenes without one."""
    import cv2

    from ..apis.inference import IMAGE_EXTS
    if folder:
        files = sorted(
            f for f in glob.glob(osp.join(folder, '**', '*'), recursive=True)
            if osp.splitext(f)[1].lower() in IMAGE_EXTS)
        if not files:
            raise UserError(f'no images ({", ".join(IMAGE_EXTS)}) found '
                            f'under {folder}')
        picks = np.linspace(0, len(files) - 1, min(num, len(files)))
        return np.stack([
            cv2.resize(_read_bgr(files[int(round(i))]),
                       (size, size))[..., ::-1] for i in picks
        ])
    from ..datasets.shapes import ShapesGenerator
    gen = ShapesGenerator(image_size=size, seed=seed)
    return np.stack([s.image for s in gen.scenes(num)])


def _read_bgr(path: str) -> np.ndarray:
    """The (H, W, 3) BGR pixels of an image file; one OpenCV cannot read
    is a :class:`UserError`."""
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f'cannot read the image {path} (not an image, or '
                        f'damaged): remove it from the --images folder')
    return image


def normalised_batches(images: np.ndarray, cfg,
                       batch_size: int) -> Iterator[torch.Tensor]:
    """(N, 3, H, W) float batches normalised with the config's data
    preprocessor mean and std (images are RGB, as the models expect)."""
    pre = cfg.model.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    mean = torch.tensor(pre.get('mean', [123.675, 116.28, 103.53]))
    std = torch.tensor(pre.get('std', [58.395, 57.12, 57.375]))
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size].copy()).float()
        yield ((x - mean) / std).permute(0, 3, 1, 2).contiguous()


def config_head_similarity(cfg, checkpoint: Optional[str], images: np.ndarray,
                           batch_size: int = 16,
                           measure: str = 'maps') -> List[dict]:
    """:func:`head_similarity` of the model of ``cfg`` (weights from
    ``checkpoint``, or random ones with None) on ``images``."""
    from ..apis import tensor_model
    from ..runtime.config import drop_pretrained
    if checkpoint is None:
        drop_pretrained(cfg.model)
    size = images.shape[1:3]
    net = tensor_model(cfg, size, checkpoint)
    return head_similarity(net, normalised_batches(images, cfg, batch_size),
                           measure=measure)
