"""Reading EfficientViT checkpoints of every published key layout.

Three layouts exist:

* ``official``: the release files of microsoft/Cream (``{'model': ...}``,
  ``blocks2.1.conv1.c.weight``, with ``attention_bias_idxs`` buffers), and the
  mmdet 2.x COCO checkpoints of its ``downstream/`` code (``backbone.`` prefix);
* ``timm``: ``efficientvit_m*`` of timm (``stages.1.downsample.patchmerge...``);
* ``efficientvit_mm``: this package (``stages.1.downsample.merge...``).

Everything is converted to this package's layout. Files are read with
``torch.load(weights_only=True)``: a pickle that would run code is refused.
"""
import logging
import os
import pickle
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

StateDict = Dict[str, torch.Tensor]

# Keys of the released classifiers that are not backbone weights.
_HEAD_PREFIXES = ('head.', 'head_dist.')


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model it is loaded into."""


def load_checkpoint_file(path: str, map_location='cpu') -> dict:
    """Read a checkpoint safely (tensors and plain containers only)."""
    if path.startswith(('http://', 'https://')):
        return torch.hub.load_state_dict_from_url(
            path, map_location=map_location, weights_only=True)
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'checkpoint file not found: {path!r}. Put the file there, point '
            f'init_cfg.checkpoint (or load_from) at it, or set '
            f'init_cfg=None to train from scratch.')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[0]
        raise RuntimeError(
            f'refusing to load {path!r}: it is not a plain weights file and '
            f'unpickling it could run code ({reason}). efficientvit_mm reads '
            f'checkpoints with torch.load(weights_only=True); re-save only '
            f'the state dict from a trusted environment.') from None


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


def resize_attention_bias(bias: torch.Tensor, num_offsets: int) -> torch.Tensor:
    """Bicubic resize of a (heads, S*S) bias table to (heads, num_offsets).

    Matches the official downstream loader: ``F.interpolate`` on a
    (1, heads, S, S) view, ``mode='bicubic'``, default ``align_corners``.
    """
    heads, length = bias.shape
    src, dst = int(round(length**0.5)), int(round(num_offsets**0.5))
    if src * src != length or dst * dst != num_offsets:
        raise CheckpointMismatchError(
            f'attention bias tables must be square: got {length} -> '
            f'{num_offsets} offsets')
    resized = F.interpolate(
        bias.float().view(1, heads, src, src), size=(dst, dst),
        mode='bicubic')
    return resized.view(heads, num_offsets).to(bias.dtype)


def match_state_dict(model: torch.nn.Module, state: StateDict,
                     logger: Optional[logging.Logger] = None) -> StateDict:
    """Fit ``state`` to ``model``: resize attention biases, cast dtypes, and
    raise one error naming every missing, unexpected or mis-shaped key."""
    target = model.state_dict()
    result = OrderedDict()
    mismatched, unexpected = [], []
    for key, value in state.items():
        if key not in target:
            unexpected.append(key)
            continue
        want = target[key]
        if (key.endswith('attention_biases') and value.dim() == 2
                and value.shape[0] == want.shape[0]
                and value.shape[1] != want.shape[1]):
            if logger is not None:
                logger.info(f'resizing {key} from {tuple(value.shape)} to '
                            f'{tuple(want.shape)} (bicubic)')
            value = resize_attention_bias(value, want.shape[1])
        if value.shape != want.shape:
            mismatched.append(f'{key}: checkpoint {tuple(value.shape)} vs '
                              f'model {tuple(want.shape)}')
            continue
        result[key] = value.to(want.dtype)
    missing = [
        k for k in target
        if k not in result and k not in unexpected and not any(
            m.startswith(k + ':') for m in mismatched)
        and not k.endswith('num_batches_tracked')
    ]
    if mismatched or unexpected or missing:
        hint = ''
        if getattr(model, 'deploy', False) and any('.bn.' in k
                                                   for k in unexpected):
            hint = (' The model was built with deploy=True (BN folded) but '
                    'the checkpoint has BatchNorm weights: build it with '
                    'deploy=False, load, then call switch_to_deploy().')
        elif mismatched or missing:
            hint = (' Is the checkpoint for another arch? Check arch, '
                    'window_size and cascade of the model.')

        def show(items):
            return f'{items[:12]}' + (f' ... (+{len(items) - 12} more)'
                                      if len(items) > 12 else '')

        raise CheckpointMismatchError(
            f'checkpoint does not fit {type(model).__name__}: '
            f'{len(result)}/{len(target)} keys match; '
            f'shape mismatches {show(mismatched)}; missing {show(missing)}; '
            f'unexpected {show(unexpected)}.{hint}')
    for key in target:
        if key.endswith('num_batches_tracked') and key not in result:
            result[key] = target[key]
    return result


def load_backbone_checkpoint(model: torch.nn.Module,
                             path: str,
                             prefix: Optional[str] = None,
                             logger: Optional[logging.Logger] = None) -> str:
    """Load any EfficientViT checkpoint into a backbone; returns its layout."""
    state = extract_state_dict(load_checkpoint_file(path))
    state = select_prefix(state, prefix)
    backbone, head, layout = split_efficientvit_state_dict(state)
    state = match_state_dict(model, backbone, logger)
    model.load_state_dict(state, strict=True)
    if logger is not None:
        logger.info(f'loaded {len(state)} EfficientViT backbone tensors from '
                    f'{path} ({layout} layout'
                    + (f', {len(head)} classifier tensors ignored)'
                       if head else ')'))
    return layout
