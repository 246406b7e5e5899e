"""Data faults named before training, and bad images skipped during it.

:func:`prepare_dataloaders` builds the dataloaders a run uses (the Runner
then takes them as they are) and checks every dataset before the first
iteration:

* an annotation file that does not parse is named with its line;
* every image an annotation file lists must exist (up to 10 missing names
  and the count are shown); folders are listed once, no image is decoded,
  so COCO-sized sets take seconds;
* no split may be empty;
* the classes must agree with the heads' ``num_classes``;
* boxes the toolbox drops (non-positive size, outside the image, unknown
  category ids) are counted and logged once per dataset.

During training an image that fails to load (undecodable, truncated, a
pipeline error) is skipped with a warning naming the file; past
``bad_image_limit`` (a fraction of the training set, default 1 %) the run
stops and lists the files. In val and test sets such an image stops the run
at once, naming the file (skipping would change the metric).
"""
import collections
import contextlib
import json
import math
import os
import os.path as osp
import sys
from typing import Dict, Iterator, List, Optional, Tuple

from ..errors import DataFaultError, PreflightError, UserError
from .classes import check_class_count
from .config import dataset_cfgs

DEFAULT_BAD_IMAGE_LIMIT = 0.01
SHOWN = 10  # missing or bad files named in a message
BAD_IMAGES_LOG = 'bad_images.txt'


def leaf_datasets(dataset) -> Iterator:
    """The datasets inside wrappers (ConcatDataset, RepeatDataset...)."""
    inner = getattr(dataset, 'datasets', None)
    if isinstance(inner, (list, tuple)):
        for ds in inner:
            yield from leaf_datasets(ds)
    elif getattr(dataset, 'dataset', None) is not None:
        yield from leaf_datasets(dataset.dataset)
    else:
        yield dataset


def describe(dataset) -> str:
    """'CocoDataset (data/coco/annotations/x.json)'."""
    source = getattr(dataset, 'ann_file', '') or getattr(
        dataset, 'data_prefix', '')
    if isinstance(source, dict):
        source = ', '.join(str(v) for v in source.values() if v)
    return f'{type(dataset).__name__} ({source})' if source else \
        type(dataset).__name__


# ------------------------------------------------------ annotation files
def _json_fault(path: str) -> Optional[str]:
    try:
        with open(path, 'rb') as f:
            content = json.load(f)
    except ValueError as err:  # json.JSONDecodeError, UnicodeDecodeError
        where = f' at line {err.lineno}, column {err.colno}' if hasattr(
            err, 'lineno') else ''
        return (f'{path} is not valid JSON{where}: '
                f'{getattr(err, "msg", err)}')
    if isinstance(content, dict) and 'images' not in content:
        return (f'{path} is JSON but no COCO annotation file: it has no '
                f"'images' list (keys: {sorted(content)[:6]})")
    if isinstance(content, dict) and not content['images']:
        return f'{path} lists no images: the split is empty'
    return None


def _list_fault(path: str) -> Optional[str]:
    """The first line of an image-list file (mmpretrain 'path label' or a
    plain list of names) that does not read."""
    with open(path, errors='replace') as f:
        for number, line in enumerate(f, 1):
            parts = line.strip().rsplit(' ', 1)
            if len(parts) == 2 and not parts[1].lstrip('-').isdigit():
                return (f'{path} line {number}: expected "<image> <class '
                        f'index>", got {line.strip()[:60]!r}')
    return None


def annotation_fault(key: str, loader_cfg) -> Optional[DataFaultError]:
    """Why an annotation file of ``loader_cfg`` does not parse, if so."""
    for path, ds in dataset_cfgs(loader_cfg):
        ann = ds.get('ann_file')
        if not isinstance(ann, str) or not ann:
            continue
        full = ann if osp.isabs(ann) else osp.join(
            ds.get('data_root') or '', ann)
        if not osp.isfile(full):
            continue
        fault = _json_fault(full) if full.endswith('.json') else \
            _list_fault(full)
        if fault:
            return DataFaultError(f'{fault} (ann_file of {key}.{path}). Fix '
                                  f'the file, or point ann_file at a good '
                                  f'copy.')
    return None


# what mmengine says when a dataset has no sample at all
_EMPTY = 'need at least one array to concatenate'


def empty_fault(key: str, loader_cfg) -> DataFaultError:
    names = [
        f'{ds.get("type")} ({ds.get("ann_file") or ds.get("data_prefix")})'
        for _, ds in dataset_cfgs(loader_cfg)
        if 'dataset' not in ds and 'datasets' not in ds
    ]
    return DataFaultError(
        f'{key}: the dataset {", ".join(names)} has no samples. Check '
        f'data_root, ann_file and data_prefix (and filter_cfg, which drops '
        f'images without boxes).')


def build_checked(runner, key: str, loader_cfg, seed_per_rank: bool):
    """Build one dataloader as the Runner's loops would, with the faults of
    its annotation files named; returns it and the boxes its datasets
    dropped."""
    from .errors import build_error
    try:
        with counting_dropped_boxes() as drops:
            loader = runner.build_dataloader(loader_cfg, seed=runner.seed,
                                             diff_rank_seed=seed_per_rank)
            for ds in leaf_datasets(loader.dataset):
                if hasattr(ds, 'full_init'):
                    ds.full_init()
    except UserError:
        raise
    except Exception as err:
        user = annotation_fault(key, loader_cfg) or (empty_fault(
            key, loader_cfg) if _EMPTY in str(err) else build_error(err))
        if user is None:
            raise
        raise user from err
    return loader, drops


# ------------------------------------------------------------- dropped boxes
def _drop_reason(ann: dict, image: dict, cat_ids) -> Optional[str]:
    """Why mmdet's CocoDataset leaves out this box, or None."""
    if ann.get('ignore', False):
        return None
    x, y, w, h = ann['bbox']
    if ann['category_id'] not in cat_ids:
        return 'unknown category id'
    if w < 1 or h < 1 or ann.get('area', w * h) <= 0:
        return 'non-positive size'
    inside_w = min(x + w, image['width']) - max(x, 0)
    inside_h = min(y + h, image['height']) - max(y, 0)
    if inside_w <= 0 or inside_h <= 0:
        return 'outside the image'
    return None


@contextlib.contextmanager
def counting_dropped_boxes():
    """Count, per CocoDataset built inside the block, the boxes its parser
    leaves out: ``{dataset id: Counter(reason -> n)}``."""
    counts: Dict[int, collections.Counter] = {}
    try:
        from mmdet.datasets import CocoDataset
    except ImportError:
        yield counts
        return
    plain = CocoDataset.parse_data_info

    def parse_data_info(self, raw):
        tally = counts.setdefault(id(self), collections.Counter())
        for ann in raw['raw_ann_info']:
            reason = _drop_reason(ann, raw['raw_img_info'], self.cat_ids)
            if reason:
                tally[reason] += 1
                if reason == 'unknown category id':
                    tally[f'id {ann["category_id"]}'] += 1
        return plain(self, raw)

    CocoDataset.parse_data_info = parse_data_info
    try:
        yield counts
    finally:
        CocoDataset.parse_data_info = plain


def drop_summary(dataset, tally: collections.Counter) -> Optional[str]:
    reasons = {k: v for k, v in tally.items() if not k.startswith('id ')}
    if not reasons:
        return None
    ids = sorted(int(k[3:]) for k in tally if k.startswith('id '))
    parts = [
        f'{n} {reason}' +
        (f' {ids[:5]}' if reason == 'unknown category id' else '')
        for reason, n in sorted(reasons.items())
    ]
    return (f'{describe(dataset)}: {sum(reasons.values())} boxes left out '
            f'({", ".join(parts)})')


# ------------------------------------------------------------------ files
def missing_files(paths: List[str]) -> List[str]:
    """The ``paths`` that do not exist; each folder is listed once."""
    listings: Dict[str, Optional[set]] = {}
    missing = []
    for path in paths:
        folder, name = osp.split(path)
        if folder not in listings:
            try:
                listings[folder] = set(os.listdir(folder or '.'))
            except OSError:
                listings[folder] = None
        found = listings[folder]  # None: a folder that cannot be listed
        if (found is None or name not in found) and not osp.exists(path):
            missing.append(path)
    return missing


def listed_files(dataset) -> List[str]:
    """The image (and label map) files the samples of ``dataset`` name;
    none for folder-scanned sets (their files exist by construction)."""
    paths = []
    listed = bool(getattr(dataset, 'ann_file', ''))
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        if listed and isinstance(info.get('img_path'), str):
            paths.append(info['img_path'])
        if isinstance(info.get('seg_map_path'), str):
            paths.append(info['seg_map_path'])
    return paths


def check_dataset(key: str, dataset, model_cfg) -> None:
    """Raise :class:`DataFaultError` for an empty set, missing files or
    classes that do not match the model."""
    where = f'{key}: {describe(dataset)}'
    if len(dataset) == 0:
        raise DataFaultError(
            f'{where} has no samples. Check ann_file and data_prefix (and '
            f'filter_cfg, which drops images without boxes).')
    missing = missing_files(listed_files(dataset))
    if missing:
        raise DataFaultError(
            f'{where}: {len(missing)} of the files it lists are missing: '
            f'{", ".join(missing[:SHOWN])}'
            f'{" ..." if len(missing) > SHOWN else ""}. Put them in place or '
            f'remove them from the annotation file.')
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    if classes:
        check_class_count(tuple(classes), model_cfg, where)


# ------------------------------------------------------------- bad images
def bad_image_limit(cfg) -> float:
    value = cfg.get('bad_image_limit', DEFAULT_BAD_IMAGE_LIMIT)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 <= value <= 1:
        raise PreflightError(f'bad_image_limit is the fraction of training '
                             f'images that may fail to load (0 to 1), got '
                             f'{value!r}')
    return float(value)


class GuardedPipeline:
    """A dataset's pipeline that skips a sample it cannot load (training:
    returns None, so the dataset draws another) or names it (val/test).

    Skipped files are appended to ``log_path`` (shared by the dataloader
    workers); more than ``limit`` stops the run with their names.
    """

    def __init__(self, pipeline, skip: bool, log_path: str, limit: int,
                 fraction: float):
        self.pipeline, self.skip = pipeline, skip
        self.log_path, self.limit, self.fraction = log_path, limit, fraction

    def __getattr__(self, name):
        if name == 'pipeline':
            raise AttributeError(name)
        return getattr(self.pipeline, name)

    def __call__(self, data):
        try:
            return self.pipeline(data)
        except Exception as err:
            from .errors import message_of
            name = data.get('img_path') or data.get('seg_map_path') or \
                f'sample {data.get("sample_idx")}'
            reason = f'{type(err).__name__}: ' + (message_of(err).splitlines()
                                                  or [''])[0][:150]
            if not self.skip:
                raise DataFaultError(f'cannot load {name} ({reason}). Fix or '
                                     f'replace the file.') from None
            return self._skip(str(name), reason)

    def _skip(self, name: str, reason: str):
        with open(self.log_path, 'a') as f:
            f.write(f'{name}\t{reason}\n')
        with open(self.log_path) as f:  # distinct files: the limit is a
            bad = list(  # share of the set, and a bad file fails each epoch
                dict.fromkeys(
                    line.split('\t')[0] for line in f if line.strip()))
        if len(bad) > self.limit:
            raise DataFaultError(
                f'{len(bad)} training images could not be loaded, more than '
                f'bad_image_limit={self.fraction:g} of the set allows '
                f'({self.limit}): {", ".join(bad[:SHOWN])}'
                f'{" ..." if len(bad) > SHOWN else ""} (all in '
                f'{self.log_path}). Fix or remove them.')
        print(
            f'[efficientvit_mm] warning: skipping {name}: {reason} '
            f'({len(bad)} skipped, at most {self.limit} allowed)',
            file=sys.stderr, flush=True)
        return None


def guard_pipelines(dataset, skip: bool, log_path: str,
                    fraction: float) -> None:
    size = len(dataset)
    for ds in leaf_datasets(dataset):
        pipeline = getattr(ds, 'pipeline', None)
        if pipeline is not None and not isinstance(pipeline, GuardedPipeline):
            ds.pipeline = GuardedPipeline(pipeline, skip, log_path,
                                          math.floor(fraction * size),
                                          fraction)


# ------------------------------------------------------------------- entry
def loaders_of(runner, command: str) -> List[str]:
    """The dataloaders ``command`` ('train', 'test') will iterate."""
    if command == 'test':
        return ['test_dataloader']
    keys = ['train_dataloader']
    if all(
            getattr(runner, f'_val_{part}', None) is not None
            for part in ('loop', 'dataloader', 'evaluator')):
        keys.append('val_dataloader')
    return keys


def prepare_dataloaders(runner, cfg, command: str) -> Tuple[str, ...]:
    """Build and check the dataloaders ``command`` uses and hand them to
    ``runner``; returns their names."""
    fraction = bad_image_limit(cfg)
    seed_per_rank = runner._randomness_cfg.get('diff_rank_seed', False)
    keys = loaders_of(runner, command)
    for key in keys:
        loader_cfg = getattr(runner, f'_{key}', None)
        if not isinstance(loader_cfg, dict):
            continue
        loader, drops = build_checked(
            runner, key, loader_cfg, seed_per_rank
            and key == 'train_dataloader')
        for ds in leaf_datasets(loader.dataset):
            check_dataset(key, ds, cfg.get('model'))
            note = drop_summary(ds, drops.get(id(ds), collections.Counter()))
            if note:
                runner.logger.warning(note)
        guard_pipelines(loader.dataset, key == 'train_dataloader',
                        osp.join(runner.log_dir, BAD_IMAGES_LOG), fraction)
        setattr(runner, f'_{key}', loader)
    return tuple(keys)
