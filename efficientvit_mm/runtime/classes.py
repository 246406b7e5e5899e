"""Class names of the datasets against the ``num_classes`` of the heads.

Every head of a config that predicts classes (mmdet ``bbox_head``,
``roi_head.bbox_head`` / ``mask_head``; mmseg ``decode_head`` and
``auxiliary_head``; mmpretrain ``head``) must have as many classes as the
datasets it is trained and evaluated on: COCO-format ``metainfo`` classes,
mmseg ``metainfo`` classes, mmpretrain folder names or ``metainfo``.
:func:`check_classes` works from the config alone; the data check of the
tools (:mod:`.data_check`) passes the classes of the built datasets.
"""
import os
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from ..errors import DataFaultError
from .config import DATALOADERS, dataset_cfgs, registered_class

# heads whose num_classes is no count of the dataset's classes
_CLASS_AGNOSTIC = ('rpn_head', )


def head_num_classes(model_cfg) -> List[Tuple[str, int]]:
    """(path, num_classes) of every head in a model config, nested heads
    and lists of heads included (``model.roi_head.bbox_head.0``...)."""

    def walk(node, path) -> Iterator[Tuple[str, int]]:
        if isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                yield from walk(item, f'{path}.{i}')
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get('num_classes'), int):
            yield path, node['num_classes']
        for key, value in node.items():
            if key.endswith('head') and key not in _CLASS_AGNOSTIC:
                yield from walk(value, f'{path}.{key}')

    if not isinstance(model_cfg, dict):
        return []
    return [(p, n) for p, n in walk(model_cfg, 'model') if p != 'model']


def check_class_count(classes: Sequence[str], model_cfg, where: str) -> None:
    """Raise :class:`DataFaultError` unless every head of ``model_cfg`` has
    ``len(classes)`` classes; ``where`` names the dataset."""
    for path, num in head_num_classes(model_cfg):
        if num == len(classes):
            continue
        names = ', '.join(map(
            str,
            list(classes)[:6])) + (', ...' if len(classes) > 6 else '')
        raise DataFaultError(
            f'{where} has {len(classes)} classes ({names}) but '
            f'{path}.num_classes is {num}. Set it to match (--cfg-options '
            f'{path}.num_classes={len(classes)}), or give the dataset '
            f'metainfo=dict(classes=...) with the {num} classes of the model.')


def config_classes(ds_cfg: dict,
                   scope: Optional[str] = None) -> Optional[Tuple[str, ...]]:
    """The classes a dataset config will have, without building it:
    ``metainfo.classes``, else the dataset type's own ``METAINFO``, else
    the class folders of an mmpretrain ``CustomDataset``; None if unknown.
    ``scope``: the toolbox whose registry holds the dataset type."""
    meta = ds_cfg.get('metainfo')
    if isinstance(meta, dict) and meta.get('classes'):
        return tuple(meta['classes'])
    kind = ds_cfg.get('type')
    if kind == 'CustomDataset' and not ds_cfg.get('ann_file'):
        prefix = ds_cfg.get('data_prefix') or ''
        if isinstance(prefix, dict):  # mmpretrain's dict(img_path=...)
            prefix = prefix.get('img_path') or ''
        root = osp.join(ds_cfg.get('data_root') or '', prefix)
        if osp.isdir(root):
            found = sorted(
                d for d in os.listdir(root) if osp.isdir(osp.join(root, d)))
            return tuple(found) or None
        return None
    cls = registered_class(kind, 'dataset', scope) if isinstance(kind,
                                                                 str) else kind
    classes = (getattr(cls, 'METAINFO', None) or {}).get('classes')
    return tuple(classes) if classes else None


def check_classes(cfg, loaders=DATALOADERS) -> None:
    """Every dataset of ``loaders`` whose classes the config tells has as
    many as the heads of ``cfg.model``."""
    for key in loaders:
        for path, ds in dataset_cfgs(cfg.get(key)):
            if 'dataset' in ds or 'datasets' in ds:
                continue  # a wrapper; its inner datasets are checked
            classes = config_classes(ds, cfg.get('default_scope'))
            if classes:
                check_class_count(classes, cfg.get('model'),
                                  f'{key}.{path} ({ds.get("type")})')
