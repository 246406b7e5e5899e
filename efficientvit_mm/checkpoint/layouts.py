"""Reading EfficientViT checkpoints of every published key layout.

Three layouts exist:

* ``official``: the release files of microsoft/Cream (``{'model': ...}``,
  ``blocks2.1.conv1.c.weight``, with ``attention_bias_idxs`` buffers), and
  the mmdet 2.x COCO checkpoints of its ``downstream/`` code (``backbone.``
  prefix);
* ``timm``: ``efficientvit_m*`` of timm
  (``stages.1.downsample.patchmerge...``);
* ``efficientvit_mm``: this package (``stages.1.downsample.merge...``).

Everything is converted to this package's layout.
"""
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from ..errors import CheckpointMismatchError

StateDict = Dict[str, torch.Tensor]

# Keys of the released classifiers that are not backbone weights.
_HEAD_PREFIXES = ('head.', 'head_dist.')


def extract_state_dict(checkpoint) -> StateDict:
    """The state dict inside a checkpoint container, without ``module.``."""
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(
            f'expected a dict checkpoint, got {type(checkpoint).__name__}')
    state = checkpoint
    for key in ('state_dict', 'model', 'model_ema'):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            state = checkpoint[key]
            break
    tensors = OrderedDict()
    for key, value in state.items():
        if not torch.is_tensor(value):
            continue
        if key.startswith('module.'):
            key = key[len('module.'):]
        tensors[key] = value
    if not tensors:
        raise CheckpointMismatchError(
            f'no tensors found in checkpoint (top-level keys: '
            f'{sorted(checkpoint)[:10]})')
    return tensors


def detect_layout(state: StateDict) -> str:
    """'official', 'timm' or 'efficientvit_mm' (backbone keys, no prefix)."""
    keys = list(state)
    if any(re.match(r'blocks[123]\.', k) for k in keys) or \
            'patch_embed.0.c.weight' in state:
        return 'official'
    if any(k.startswith('patch_embed.conv1.') for k in keys):
        return 'timm'
    if 'patch_embed.0.conv.weight' in state or any(
            k.startswith('stages.0.blocks.0.pre.') for k in keys):
        return 'efficientvit_mm'
    raise CheckpointMismatchError(
        'no EfficientViT weights recognised: expected official '
        '(blocks1.*), timm (stages.*, patch_embed.conv1.*) or efficientvit_mm '
        f'(stages.*.pre.*) keys; first keys are {keys[:5]}')


# Inside one sandwich block, for the two released layouts.
_BLOCK_PARTS = [
    (r'dw0\.m\.', 'pre.dw.'),
    (r'ffn0\.m\.', 'pre.ffn.'),
    (r'mixer\.m\.attn\.', 'attn.'),
    (r'dw1\.m\.', 'post.dw.'),
    (r'ffn1\.m\.', 'post.ffn.'),
]


def _rename_leaf(key: str) -> str:
    """Shared leaf renames: ``c``/``l`` modules and the attention's proj."""
    key = re.sub(r'\.c\.(weight|bias)$', r'.conv.\1', key)
    key = re.sub(r'\.l\.(weight|bias)$', r'.fc.\1', key)
    key = key.replace('.linear.', '.fc.')
    return key.replace('attn.proj.1.', 'attn.proj.')


def _rename_block(prefix: str, rest: str) -> Optional[str]:
    for pattern, new in _BLOCK_PARTS:
        if re.match(pattern, rest):
            return prefix + re.sub('^' + pattern, new, rest)
    return None


def _official_key(key: str) -> Optional[str]:
    m = re.match(r'patch_embed\.(\d+)\.(.*)', key)
    if m:
        return f'patch_embed.{m.group(1)}.{m.group(2)}'
    m = re.match(r'blocks([123])\.(\d+)\.(.*)', key)
    if not m:
        return None
    stage, index, rest = int(m.group(1)) - 1, int(m.group(2)), m.group(3)
    if stage > 0 and index < 3:
        part = ('pre', 'merge', 'post')[index]
        if part == 'merge':
            return f'stages.{stage}.downsample.merge.{rest}'
        rest = re.sub(r'^0\.m\.', 'dw.', rest)
        rest = re.sub(r'^1\.m\.', 'ffn.', rest)
        return f'stages.{stage}.downsample.{part}.{rest}'
    block = index - 3 if stage > 0 else index
    return _rename_block(f'stages.{stage}.blocks.{block}.', rest)


def _timm_key(key: str) -> Optional[str]:
    m = re.match(r'patch_embed\.conv(\d)\.(.*)', key)
    if m:
        return f'patch_embed.{2 * (int(m.group(1)) - 1)}.{m.group(2)}'
    m = re.match(r'stages\.(\d)\.downsample\.(res1|patchmerge|res2)\.(.*)',
                 key)
    if m:
        part = dict(res1='pre', patchmerge='merge', res2='post')[m.group(2)]
        rest = m.group(3)
        if part != 'merge':
            rest = re.sub(r'^0\.m\.', 'dw.', rest)
            rest = re.sub(r'^1\.m\.', 'ffn.', rest)
        return f'stages.{m.group(1)}.downsample.{part}.{rest}'
    m = re.match(r'stages\.(\d)\.blocks\.(\d+)\.(.*)', key)
    if m:
        return _rename_block(f'stages.{m.group(1)}.blocks.{m.group(2)}.',
                             m.group(3))
    return None


def split_efficientvit_state_dict(
        state: StateDict) -> Tuple[StateDict, StateDict, str]:
    """Convert any layout to ours. Returns (backbone, head, layout).

    ``head`` holds released classifier weights renamed for
    :class:`EfficientViTClsHead` (``classifier.*``, ``dist_classifier.*``).
    ``attention_bias_idxs`` buffers are dropped: they are recomputed.
    Unrecognised keys raise :class:`CheckpointMismatchError`.
    """
    layout = detect_layout(state)
    backbone, head, unknown = OrderedDict(), OrderedDict(), []
    for key, value in state.items():
        if key.endswith('attention_bias_idxs'):
            continue
        if key.startswith(_HEAD_PREFIXES):
            name = key.replace('head_dist.', 'dist_classifier.', 1) \
                if key.startswith('head_dist.') else \
                key.replace('head.', 'classifier.', 1)
            head[_rename_leaf(name)] = value
            continue
        if layout == 'official':
            new = _official_key(key)
        elif layout == 'timm':
            new = _timm_key(key)
        else:
            new = key if key.startswith(('patch_embed.', 'stages.')) else None
        if new is None:
            unknown.append(key)
        else:
            backbone[_rename_leaf(new)] = value
    if unknown:
        raise CheckpointMismatchError(
            f'{len(unknown)} keys of this {layout} checkpoint are not '
            f'EfficientViT backbone or head weights: {unknown[:10]}')
    return backbone, head, layout


def select_prefix(state: StateDict, prefix: Optional[str]) -> StateDict:
    """Keep the keys under ``prefix`` (``'backbone.'`` is found by itself)."""
    if prefix is None and any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    if not prefix:
        return state
    if not prefix.endswith('.'):
        prefix += '.'
    selected = OrderedDict(
        (k[len(prefix):], v) for k, v in state.items() if k.startswith(prefix))
    if not selected:
        raise CheckpointMismatchError(
            f'no key starts with prefix {prefix!r}; first keys are '
            f'{list(state)[:5]}')
    return selected
