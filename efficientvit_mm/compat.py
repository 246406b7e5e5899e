"""Compatibility fixes for the pinned stack, applied once on import.

Each fix is a small named function, called below and tested in
``tests/runtime/test_compat.py``.

* :func:`silence_pkg_resources_warning` -- mmengine and mmcv import
  ``pkg_resources`` (hence the setuptools<81 pin), and setuptools 80 warns on
  every import; the warning is about setuptools' future, not about anything
  a user can act on, and it buries real messages.
* :func:`allow_mmengine_checkpoints` -- torch >= 2.6 makes
  ``torch.load(weights_only=True)`` the default. mmengine 0.10.7 saves its
  ``message_hub`` (``HistoryBuffer`` objects holding numpy arrays) and numpy
  scalars in every checkpoint and reads them back with a plain
  ``torch.load``, so ``--resume`` and ``load_from`` fail. Instead of turning
  the safety check off (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), the few types
  mmengine writes are added to torch's allow-list of safe globals: loading
  stays weights-only and a pickle that runs code is still refused.
  ``HistoryBuffer`` also pickles its statistics methods as
  ``getattr(HistoryBuffer, 'mean')`` (pickle protocol 2). Allowing the real
  ``getattr`` would open the door to arbitrary code, so a stand-in that only
  resolves those methods is registered under the name ``builtins.getattr``.
* :func:`index_toolbox_configs_once` -- for every ``mmdet::`` / ``mmseg::``
  / ``mmpretrain::`` base of a config, mmengine 0.10.7 first looks the name
  up among the toolbox's model configs, reading its whole model index (for
  mmdet several hundred metafiles, about a second) each time. The index is
  read once per toolbox and process instead; lookups answer the same.
"""
import copy
import functools
import os.path as osp
import pickle
import warnings

import numpy as np
import torch

__all__ = [
    'allow_mmengine_checkpoints', 'silence_pkg_resources_warning',
    'index_toolbox_configs_once', 'MMENGINE_CHECKPOINT_GLOBALS'
]


def _numpy_globals() -> list:
    """numpy objects that plain numpy arrays and scalars pickle to."""
    multiarray = np.core.multiarray  # numpy < 2 (pinned)
    dtypes = [
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
        np.uint32, np.uint64, np.float16, np.float32, np.float64
    ]
    return [
        np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
        *[type(np.dtype(t)) for t in dtypes]
    ]


_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_getattr(owner, name: str):
    """``getattr`` restricted to HistoryBuffer's built-in statistics."""
    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'weights-only load refuses getattr({owner!r}, {name!r}): only '
        f'HistoryBuffer statistics methods are resolved')


def _mmengine_globals() -> list:
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr')]


def allow_mmengine_checkpoints() -> None:
    """Let weights-only ``torch.load`` read mmengine 0.10.7 checkpoints."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch < 2.4 has no weights-only default to fix
        add(MMENGINE_CHECKPOINT_GLOBALS)


def silence_pkg_resources_warning() -> None:
    """The one filter for setuptools' ``pkg_resources`` deprecation, raised
    by mmengine and mmcv on import and again for every inherited config."""
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                            category=UserWarning)


@functools.lru_cache(maxsize=None)
def toolbox_model_configs(package_path: str) -> dict:
    """config name -> its model entry, from every metafile the model index
    of the toolbox at ``package_path`` imports (the first entry of a name
    wins, as in mmengine)."""
    from mmengine.fileio import load
    mim = osp.join(package_path, '.mim')
    configs = {}
    for metafile in load(osp.join(mim, 'model-index.yml'))['Import']:
        for entry in load(osp.join(mim, metafile))['Models']:
            if 'Config' in entry:
                configs.setdefault(entry['Config'].partition('/')[-1], entry)
    return configs


def _model_config_entry(package_path: str, cfg_path: str) -> dict:
    """mmengine's ``_get_cfg_metainfo``, on the index read once."""
    configs = toolbox_model_configs(package_path)
    if cfg_path not in configs:
        raise ValueError(f'{cfg_path} is not a model config of '
                         f'{osp.basename(package_path)} (one of '
                         f'{len(configs)} in its model index)')
    return copy.deepcopy(configs[cfg_path])


def index_toolbox_configs_once() -> None:
    """Let mmengine's config and hub lookups use the index read once."""
    import mmengine.config.utils as config_utils
    import mmengine.hub.hub as hub
    config_utils._get_cfg_metainfo = _model_config_entry
    hub._get_cfg_metainfo = _model_config_entry


# before anything below imports mmengine
silence_pkg_resources_warning()
MMENGINE_CHECKPOINT_GLOBALS = _numpy_globals() + _mmengine_globals()
allow_mmengine_checkpoints()
index_toolbox_configs_once()
