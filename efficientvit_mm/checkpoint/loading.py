"""Fitting checkpoints to models: attention-bias resizing, key checks,
and loading into an EfficientViT backbone."""
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import torch
import torch.nn.functional as F

from ..errors import CheckpointMismatchError
from .io import load_checkpoint_file
from .layouts import (StateDict, extract_state_dict, select_prefix,
                      split_efficientvit_state_dict)


def resize_attention_bias(bias: torch.Tensor,
                          num_offsets: int) -> torch.Tensor:
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
    resized = F.interpolate(bias.float().view(1, heads, src, src),
                            size=(dst, dst), mode='bicubic')
    return resized.view(heads, num_offsets).to(bias.dtype)


@dataclass
class KeyReport:
    """How a state dict fits a model: the keys that fit and those that do
    not (``num_batches_tracked`` counters never count as missing)."""
    matched: int
    total: int
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[str] = field(default_factory=list)  # 'key: a vs b'
    mismatched_keys: List[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def bad_keys(self) -> List[str]:
        """Every key that does not fit: missing, unexpected, mis-shaped."""
        return self.mismatched_keys + self.missing + self.unexpected

    def select(self, keep: Callable[[str], bool]) -> 'KeyReport':
        """The same report with only the bad keys for which ``keep(key)``
        holds (``matched`` and ``total`` unchanged)."""
        pairs = [(k, m) for k, m in zip(self.mismatched_keys, self.mismatched)
                 if keep(k)]
        return KeyReport(self.matched, self.total,
                         [k for k in self.missing if keep(k)],
                         [k for k in self.unexpected if keep(k)],
                         [m for _, m in pairs], [k for k, _ in pairs])

    def describe(self, shown: int = 8) -> str:
        """'n/m keys match; ...' with the first ``shown`` keys of each kind."""

        def show(what, items):
            more = f' (+{len(items) - shown} more)' if len(items) > shown \
                else ''
            return f'{len(items)} {what} {items[:shown]}{more}'

        parts = [
            show(what, items)
            for what, items in (('shape mismatches',
                                 self.mismatched), ('missing', self.missing),
                                ('unexpected', self.unexpected)) if items
        ]
        return f'{self.matched}/{self.total} keys match; ' + '; '.join(parts)


def compare_state_dict(target: StateDict, state: StateDict) -> KeyReport:
    """Compare ``state`` with a model's own state dict ``target``."""
    unexpected = [k for k in state if k not in target]
    wrong = [
        k for k, v in state.items()
        if k in target and tuple(v.shape) != tuple(target[k].shape)
    ]
    mismatched = [
        f'{k}: checkpoint {tuple(state[k].shape)} vs model '
        f'{tuple(target[k].shape)}' for k in wrong
    ]
    missing = [
        k for k in target
        if k not in state and not k.endswith('num_batches_tracked')
    ]
    matched = sum(1 for k in state if k in target) - len(wrong)
    return KeyReport(matched, len(target), missing, unexpected, mismatched,
                     wrong)


def fit_attention_biases(target: StateDict, state: StateDict,
                         logger: Optional[logging.Logger] = None) -> StateDict:
    """``state`` with every attention-bias table resized (bicubic) to the
    window of the model, as the official downstream loader does."""
    out = OrderedDict()
    for key, value in state.items():
        want = target.get(key)
        if (want is not None and key.endswith('attention_biases')
                and value.dim() == 2 and value.shape[0] == want.shape[0]
                and value.shape[1] != want.shape[1]):
            if logger is not None:
                logger.info(f'resizing {key} from {tuple(value.shape)} to '
                            f'{tuple(want.shape)} (bicubic)')
            value = resize_attention_bias(value, want.shape[1])
        out[key] = value
    return out


def match_state_dict(model: torch.nn.Module, state: StateDict,
                     logger: Optional[logging.Logger] = None) -> StateDict:
    """Fit ``state`` to ``model``: resize attention biases, cast dtypes, and
    raise one error naming every missing, unexpected or mis-shaped key."""
    target = model.state_dict()
    state = fit_attention_biases(target, state, logger)
    report = compare_state_dict(target, state)
    if not report.fits:
        hint = ''
        if getattr(model, 'deploy', False) and any('.bn.' in k
                                                   for k in report.unexpected):
            hint = (' The model was built with deploy=True (BN folded) but '
                    'the checkpoint has BatchNorm weights: build it with '
                    'deploy=False, load, then call switch_to_deploy().')
        elif report.mismatched or report.missing:
            hint = (' Is the checkpoint for another arch? Check arch, '
                    'window_size and cascade of the model.')
        raise CheckpointMismatchError(
            f'checkpoint does not fit {type(model).__name__}: '
            f'{report.describe(12)}.{hint}')
    result = OrderedDict((k, v.to(target[k].dtype)) for k, v in state.items())
    for key in target:
        if key.endswith('num_batches_tracked') and key not in result:
            result[key] = target[key]
    return result


def load_backbone_checkpoint(model: torch.nn.Module, path: str,
                             prefix: Optional[str] = None,
                             logger: Optional[logging.Logger] = None) -> str:
    """Load any EfficientViT checkpoint into a backbone; returns its layout."""
    state = extract_state_dict(load_checkpoint_file(path))
    state = select_prefix(state, prefix)
    backbone, head, layout = split_efficientvit_state_dict(state)
    state = match_state_dict(model, backbone, logger)
    model.load_state_dict(state, strict=True)
    if logger is not None:
        logger.info(
            f'loaded {len(state)} EfficientViT backbone tensors from '
            f'{path} ({layout} layout' +
            (f', {len(head)} classifier tensors ignored)' if head else ')'))
    return layout


def load_model_weights(model: torch.nn.Module, path: str) -> StateDict:
    """Load a whole-model checkpoint of this package (``state_dict`` or
    ``{'model': ...}`` containers, ``module.`` prefixes stripped) into
    ``model``; every key and shape must fit, or nothing is loaded."""
    state = extract_state_dict(load_checkpoint_file(path))
    report = compare_state_dict(model.state_dict(), state)
    if not report.fits:
        raise CheckpointMismatchError(
            f'{path} does not fit this config: {report.describe()}. Convert '
            f'official or timm files with tools/convert_checkpoint.py first.')
    model.load_state_dict(state, strict=False)  # counters may be absent
    return state
