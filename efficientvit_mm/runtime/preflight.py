"""Checks run by ``tools/`` before anything is built.

A missing dataset or checkpoint is the most common first-run failure; deep
inside a dataloader worker it becomes a wall of traceback. These checks
read only the config (dataset ``data_root`` + ``ann_file`` / ``data_prefix``
of every dataloader, ``Pretrained`` init configs anywhere in the model,
``load_from``) so they serve detection, segmentation and classification
configs alike, and raise :class:`PreflightError` with a short message that
says what is missing, where it was expected and how to fix it.
"""
import os.path as osp
import re
from typing import List, Optional, Tuple

from ..errors import PreflightError
from .config import DATALOADERS, dataset_cfgs, evaluator_cfgs, is_remote

OFFICIAL_RELEASE = ('https://github.com/xinyuliu-jeffrey/EfficientViT_Model_'
                    'Zoo/releases/download/v1.0/')

# What to run when there is no dataset at hand, per toolbox scope.
_NO_DATA_HINTS = {
    'mmdet': ('No dataset at hand? The shapes demo generates a synthetic COCO '
              'set and trains on it on the CPU:\n'
              '  .venv/bin/python tools/shapes_demo.py det'),
    'mmseg': ('No dataset at hand? The segmentation demo generates a '
              'synthetic ADE-style set and trains on it on the CPU:\n'
              '  .venv/bin/python tools/shapes_demo.py seg'),
    'mmpretrain': ('No dataset at hand? The classification demo generates '
                   'synthetic shape crops and trains on them on the CPU:\n'
                   '  .venv/bin/python tools/shapes_demo.py cls'),
}


def _join(root: Optional[str], path: str) -> str:
    if not root or osp.isabs(path) or is_remote(path):
        return path
    return osp.join(root, path)


def _dataset_problems(ds: dict) -> List[Tuple[str, str]]:
    """(path, what) of every file or folder of ``ds`` that is missing."""
    if ds.get('backend_args') or ds.get('file_client_args'):
        return []  # a storage backend we cannot check from here
    root = ds.get('data_root')
    problems = []
    if isinstance(root, str) and root and not is_remote(root) \
            and not osp.isdir(root):
        problems.append((root.rstrip('/') + '/', 'data_root'))
    ann = ds.get('ann_file')
    if isinstance(ann, str) and ann:
        path = _join(root, ann)
        if not is_remote(path) and not osp.isfile(path):
            problems.append((path, 'ann_file'))
    prefix = ds.get('data_prefix')
    prefixes = prefix.items() if isinstance(prefix, dict) else [('data_prefix',
                                                                 prefix)]
    for name, value in prefixes:
        if isinstance(value, str) and value:
            path = _join(root, value)
            if not is_remote(path) and not osp.isdir(path):
                problems.append((path.rstrip('/') + '/', f'{name} folder'))
    return problems


def check_datasets(cfg, loaders=DATALOADERS, command: str = 'train',
                   config_path: str = 'CONFIG') -> None:
    """Every file and folder the given dataloaders read must exist."""
    missing = {}  # path -> 'what, used by'
    for key in loaders:
        loader = cfg.get(key)
        for _, ds in dataset_cfgs(loader):
            if 'type' in ds and ('dataset' in ds or 'datasets' in ds):
                continue  # a wrapper; its inner datasets are checked
            for path, what in _dataset_problems(ds):
                missing.setdefault(path, f'{what} of {key}')
    if 'val_dataloader' in loaders or 'test_dataloader' in loaders:
        for ev in evaluator_cfgs(cfg):
            ann = ev.get('ann_file')
            if isinstance(ann, str) and ann and not is_remote(ann) \
                    and not osp.isfile(ann):
                missing.setdefault(
                    ann, f'ann_file of {ev.get("type", "the evaluator")}')
    if not missing:
        return
    root = cfg.get('data_root')
    lines = ['the dataset is missing; not found:']
    lines += [f'  {path}  ({what})' for path, what in missing.items()]
    if root:
        lines.append(f'The config expects it under data_root={root!r} '
                     f'(relative to {osp.abspath(".")}).')
    lines.append('Put the dataset there, or point data_root at your copy:')
    lines.append(f'  python tools/{command}.py {config_path} '
                 f'--cfg-options data_root=/path/to/dataset/')
    hint = _NO_DATA_HINTS.get(cfg.get('default_scope'))
    if hint:
        lines.append(hint)
    raise PreflightError('\n'.join(lines))


def _pretrained_cfgs(node, path='model'):
    """(path, init_cfg) of every ``Pretrained`` init config in ``node``."""
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained' and 'checkpoint' in node:
            yield path, node
        for key, value in node.items():
            yield from _pretrained_cfgs(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _pretrained_cfgs(value, f'{path}.{i}')


def check_pretrained(cfg, command: str = 'train',
                     config_path: str = 'CONFIG') -> None:
    """Every local ``Pretrained`` checkpoint of the model must exist."""
    for path, init in _pretrained_cfgs(cfg.get('model')):
        ckpt = init['checkpoint']
        if not isinstance(ckpt, str) or is_remote(ckpt) or osp.isfile(
                osp.expanduser(ckpt)):
            continue
        lines = [f'pretrained checkpoint {ckpt} ({path}) not found.']
        name = osp.basename(ckpt)
        if re.fullmatch(r'efficientvit_m[0-5]\.pth', name):
            lines += [
                'Download the official ImageNet release into place:',
                f'  mkdir -p {osp.dirname(ckpt) or "."} && wget -O {ckpt} '
                f'{OFFICIAL_RELEASE}{name}'
            ]
        else:
            lines.append(f'Put the checkpoint at {ckpt}, or point '
                         f'{path}.checkpoint at it.')
        lines += [
            'Or train from scratch (much lower accuracy):',
            f'  python tools/{command}.py {config_path} --cfg-options '
            f'{path}=None'
        ]
        raise PreflightError('\n'.join(lines))


def check_checkpoint_file(path: Optional[str], what: str) -> None:
    if not path or is_remote(path):
        return
    full = osp.expanduser(path)
    if not osp.isfile(full):
        where = '' if osp.isabs(full) else f' (from {osp.abspath(".")})'
        raise PreflightError(f'{what} {path} not found{where}: give the path '
                             f'of an existing checkpoint file')


def _opt(key: str, value) -> str:
    """A ``--cfg-options`` item (lists without spaces, as DictAction
    reads them)."""
    if isinstance(value, (list, tuple)):
        value = '[' + ','.join(map(str, value)) + ']'
    return f'{key}={value}'


def check_widths(cfg) -> None:
    """The neck (or the classifier head) must read the widths the
    EfficientViT backbone of the config gives: a changed ``arch`` that
    leaves ``in_channels`` behind stops here, with the values to set."""
    model = cfg.get('model')
    backbone = model.get('backbone') if isinstance(model, dict) else None
    if not isinstance(backbone, dict) or \
            backbone.get('type') != 'EfficientViT':
        return
    from ..models.backbones import EfficientViT
    arch = backbone.get('arch', 'm0')
    try:
        widths = EfficientViT.stage_widths(
            arch, backbone.get('out_indices', (0, 1, 2)))
    except (ValueError, TypeError, KeyError) as err:
        raise PreflightError(f'model.backbone: {err}') from None
    name = arch if isinstance(arch, str) else 'custom'
    neck = model.get('neck')
    head = model.get('head')
    if isinstance(neck, dict) and 'in_channels' in neck:
        key, want, have = 'model.neck.in_channels', widths, neck['in_channels']
        have = list(have) if isinstance(have, (list, tuple)) else have
        both = f'configs/_base_/backbones/efficientvit_{name}.py'
    elif isinstance(head, dict) and 'in_channels' in head and (
            neck is None or isinstance(neck, dict)
            and neck.get('type') == 'GlobalAveragePooling'):
        key, want, have = 'model.head.in_channels', widths[-1], head[
            'in_channels']
        both = f'configs/efficientvit_{name}_in1k.py'
    else:
        return
    if have != want:
        raise PreflightError(
            f'{key} is {have}, but the EfficientViT-{name} backbone gives '
            f'{want} (its stage widths for out_indices '
            f'{list(backbone.get("out_indices", (0, 1, 2)))}). Set it to '
            f'match, e.g. --cfg-options {_opt(key, want)}, or start from '
            f'{both}, which sets both.')


def preflight_train(cfg, config_path: str) -> None:
    from .classes import check_classes
    check_widths(cfg)
    loaders = ['train_dataloader']
    if cfg.get('val_cfg') and cfg.get('val_dataloader') and \
            cfg.get('val_evaluator'):
        loaders.append('val_dataloader')
    check_datasets(cfg, loaders, 'train', config_path)
    check_classes(cfg, loaders)
    check_pretrained(cfg, 'train', config_path)
    resume = cfg.get('resume')
    load_from = cfg.get('load_from')
    check_checkpoint_file(
        load_from, 'resume checkpoint' if resume else 'load_from checkpoint')


def preflight_test(cfg, config_path: str, checkpoint: str) -> None:
    check_widths(cfg)
    check_checkpoint_file(checkpoint, 'checkpoint')
    check_datasets(cfg, ['test_dataloader'], 'test', config_path)
    from .classes import check_classes
    check_classes(cfg, ['test_dataloader'])
