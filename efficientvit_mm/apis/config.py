"""Loading configs and building models for any of the three toolboxes."""
from typing import Optional

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

# default_scope of a config -> the task it describes
TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation',
         'mmpretrain': 'classification'}


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config, apply ``--cfg-options`` overrides, set its scope.

    ``data_root`` is special: configs resolve it into every dataloader when
    they are parsed, so an override of ``data_root`` alone would change
    nothing. It is therefore also written into each dataset that used the
    old value.
    """
    cfg = Config.fromfile(path)
    options = dict(cfg_options or {})
    new_root = options.get('data_root')
    old_root = cfg.get('data_root')
    if options:
        cfg.merge_from_dict(options)
    if new_root is not None and old_root is not None:
        for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            loader = cfg.get(name)
            if not loader:
                continue
            dataset = loader.get('dataset', {})
            # wrappers (RepeatDataset, ConcatDataset...) nest the dataset
            while isinstance(dataset, dict) and 'dataset' in dataset and \
                    'data_root' not in dataset:
                dataset = dataset['dataset']
            if isinstance(dataset, dict) and dataset.get('data_root') == \
                    old_root:
                dataset['data_root'] = new_root
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    return cfg


def task_of(cfg: Config) -> str:
    """'detection', 'segmentation' or 'classification'."""
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise ValueError(
            f'config has default_scope={scope!r}; efficientvit_mm tools '
            f'serve {sorted(TASKS)} configs')
    return TASKS[scope]


def build_model(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` from the registry of the config's scope."""
    from mmengine.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    return MODELS.build(cfg.model)
