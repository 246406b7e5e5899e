"""Converting released EfficientViT checkpoints to efficientvit_mm models.

Two families of release files exist:

* ImageNet classifiers (official ``{'model': ...}`` files and timm's
  ``efficientvit_m*``): converted to ``backbone.*`` keys in this package's
  layout plus ``head.classifier.*`` / ``head.dist_classifier.*`` (the
  ``NormLinear`` ``bn`` + ``fc`` pairs of ``EfficientViTClsHead``);
* COCO detectors of the official ``downstream/`` code (mmdet 2.x files:
  ``backbone.blocks1.0.mixer.m.attn...``, ``neck.lateral_convs...``,
  ``bbox_head.*`` / ``rpn_head.*`` / ``roi_head.*``): the backbone part is
  converted, neck and heads already carry the names of our
  ``EfficientViTFPN`` and of mmdet 3.x's RetinaNet / Mask R-CNN heads.

The result is ``{'state_dict': ..., 'meta': {...}}``, loadable with
``load_from`` / ``tools/test.py``. :func:`check_against_model` compares a
converted state dict with a built model and names every missing,
unexpected or mis-shaped key.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from ..errors import CheckpointMismatchError
from .io import atomic_save, load_checkpoint_file
from .layouts import (StateDict, extract_state_dict,
                      split_efficientvit_state_dict)
from .loading import compare_state_dict

# Top-level modules of the detectors the official downstream code released.
DETECTOR_PARTS = ('neck.', 'bbox_head.', 'rpn_head.', 'roi_head.')


def checkpoint_kind(state: StateDict) -> str:
    """``'detector'`` (keys under ``backbone.`` and a neck or head) or
    ``'classifier'``."""
    has_backbone = any(k.startswith('backbone.') for k in state)
    has_parts = any(k.startswith(DETECTOR_PARTS) for k in state)
    if has_backbone and has_parts:
        return 'detector'
    if has_parts:
        raise CheckpointMismatchError(
            'the checkpoint has neck/head weights but no backbone.* keys; '
            'it is not an EfficientViT detector')
    return 'classifier'


def convert_classifier(state: StateDict) -> Tuple[StateDict, str]:
    """ImageNet classifier (official / timm / ours) -> our model keys."""
    if any(k.startswith('backbone.') for k in state):
        # already a whole-model file (ours or an mmpretrain one)
        backbone_in = OrderedDict((k[len('backbone.'):], v)
                                  for k, v in state.items()
                                  if k.startswith('backbone.'))
        others = [k for k in state if not k.startswith(('backbone.', 'head.'))]
        if others:
            raise CheckpointMismatchError(
                f'unexpected keys next to backbone.*/head.*: {others[:10]}')
        head_in = OrderedDict(
            (k, v) for k, v in state.items() if k.startswith('head.'))
        backbone, extra, layout = split_efficientvit_state_dict(backbone_in)
        if extra:
            raise CheckpointMismatchError(
                f'classifier weights inside backbone.*: {list(extra)[:5]}')
        head = OrderedDict((k[len('head.'):], v) for k, v in head_in.items())
    else:
        backbone, head, layout = split_efficientvit_state_dict(state)
    out = OrderedDict(('backbone.' + k, v) for k, v in backbone.items())
    out.update(('head.' + k, v) for k, v in head.items())
    return out, layout


def convert_detector(state: StateDict) -> Tuple[StateDict, str]:
    """Official mmdet 2.x COCO detector -> our model keys."""
    backbone_in = OrderedDict()
    rest = OrderedDict()
    unknown = []
    for key, value in state.items():
        if key.startswith('backbone.'):
            backbone_in[key[len('backbone.'):]] = value
        elif key.startswith(DETECTOR_PARTS):
            rest[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointMismatchError(
            f'{len(unknown)} keys belong to no backbone, neck or head: '
            f'{unknown[:10]}')
    backbone, head, layout = split_efficientvit_state_dict(backbone_in)
    if head:
        raise CheckpointMismatchError(
            f'classifier weights inside a detector backbone: '
            f'{list(head)[:5]}')
    out = OrderedDict(('backbone.' + k, v) for k, v in backbone.items())
    out.update(rest)
    return out, layout


def _dataset_meta(checkpoint: dict) -> Optional[dict]:
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return None
    if isinstance(meta.get('dataset_meta'), dict):
        return dict(meta['dataset_meta'])
    classes = meta.get('CLASSES')  # mmdet 2.x
    if classes:
        return dict(classes=tuple(classes))
    return None


def convert_checkpoint(checkpoint: dict, source: str = '') -> Dict[str, dict]:
    """Convert a loaded release file; returns ``{'state_dict', 'meta'}``."""
    state = extract_state_dict(checkpoint)
    kind = checkpoint_kind(state)
    if kind == 'detector':
        converted, layout = convert_detector(state)
    else:
        converted, layout = convert_classifier(state)
    from ..version import __version__
    meta = dict(
        converted_from=osp.basename(source) if source else None,
        source_layout=layout, kind=kind, efficientvit_mm_version=__version__)
    dataset_meta = _dataset_meta(checkpoint)
    if dataset_meta:
        meta['dataset_meta'] = dataset_meta
    return dict(state_dict=converted, meta=meta)


def check_against_model(state: StateDict, model: torch.nn.Module) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state`` fits
    ``model`` exactly: same keys (``num_batches_tracked`` buffers aside)
    and same shapes."""
    report = compare_state_dict(model.state_dict(), state)
    if not report.fits:
        raise CheckpointMismatchError(
            f'converted checkpoint does not fit {type(model).__name__}: '
            f'{report.describe(10)}. Is the config for the same arch and '
            f'head as the checkpoint?')


def convert_file(src: str, dst: str,
                 model: Optional[torch.nn.Module] = None) -> dict:
    """Read ``src`` safely, convert, optionally check against ``model``,
    save to ``dst`` (atomically: an existing ``dst`` survives a failed
    write); returns the saved dict."""
    result = convert_checkpoint(load_checkpoint_file(src), source=src)
    if model is not None:
        check_against_model(result['state_dict'], model)
        result['meta']['checked_with'] = type(model).__name__
    atomic_save(result, dst)
    return result
