"""Reading what training and testing logged: mmengine's scalar logs
(``vis_data/scalars.json``) and mmseg's per-class IoU tables."""
import glob
import json
import os.path as osp
import re
from typing import Dict, List, Tuple

Series = Dict[str, List[Tuple[float, float]]]


def find_scalar_log(path: str) -> str:
    """The scalar log of a run: ``path`` itself if it is a file, else the
    newest ``*/vis_data/scalars.json`` (or ``*/vis_data/<stamp>.json``)
    under the work dir ``path``."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path} is neither a log file nor a work '
                                f'dir')
    candidates = glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json'))
    candidates += glob.glob(osp.join(path, 'vis_data', 'scalars.json'))
    if not candidates:
        candidates = [
            p for p in glob.glob(osp.join(path, '*', 'vis_data', '*.json'))
            if not p.endswith('scalars.json')
        ]
    if not candidates:
        raise FileNotFoundError(
            f'no scalar log under {path}: expected '
            f'<work_dir>/<timestamp>/vis_data/scalars.json (written by '
            f"mmengine's LocalVisBackend)")
    # newest run: the timestamped folder names sort in time order
    return sorted(candidates)[-1]


def _numbers(record: dict, skip: Tuple[str, ...]):
    """(key, float) of the numeric entries of a log record, but ``skip``."""
    return [(k, float(v)) for k, v in record.items()
            if isinstance(v, (int, float)) and k not in skip]


def load_scalars(path: str) -> Tuple[Series, Series, str]:
    """Split a scalar log into training and validation series.

    Returns ``(train, val, val_unit)``: ``train[key]`` is a list of
    ``(iteration, value)``; ``val[key]`` a list of ``(step, value)`` where
    the step is the epoch for epoch-based runs (``val_unit='epoch'``) and
    the iteration otherwise.
    """
    train: Series = {}
    val: Series = {}
    epoch_based = False
    log = find_scalar_log(path)
    with open(log) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                raise ValueError(f'{log}, line {number}, is not a JSON record '
                                 f'({err.msg}): a damaged log') from None
            step = record.get('step')
            if step is None:
                continue
            if 'lr' in record or 'loss' in record:  # a training record
                epoch_based = epoch_based or 'epoch' in record
                x = record.get('iter', step)
                for key, value in _numbers(record, ('epoch', 'iter', 'step')):
                    train.setdefault(key, []).append((x, value))
            else:
                for key, value in _numbers(record,
                                           ('step', 'data_time', 'time')):
                    val.setdefault(key, []).append((step, value))
    if epoch_based:
        # iteration counts restart in each epoch in some loops; make them
        # cumulative so curves never go back in time
        for key, points in train.items():
            out, offset, last = [], 0, None
            for x, y in points:
                if last is not None and x + offset < last:
                    offset = last
                out.append((x + offset, y))
                last = x + offset
            train[key] = out
    return train, val, 'epoch' if epoch_based else 'iter'


def per_class_iou(log_file: str) -> Dict[str, float]:
    """{class: IoU} from the last per-class table of an mmseg log (its
    IoUMetric returns only the averages and logs the table); {} when the
    log has none."""
    try:
        with open(log_file) as f:
            text = f.read()
    except OSError:
        return {}
    start = text.rfind('per class results:')
    if start < 0:
        return {}
    out = {}
    for line in text[start:].splitlines()[1:]:
        m = re.match(r'\|\s*([^|]+?)\s*\|\s*([\d.]+|nan)\s*\|', line)
        if m:
            out[m.group(1)] = float(m.group(2))
        elif out and not line.startswith(('|', '+')):
            break
    return out
