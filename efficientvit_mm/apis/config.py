"""Which task a config describes, and building its model."""
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ..runtime.config import load_config  # noqa: F401  (re-exported)

# default_scope of a config -> the task it describes
TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation',
         'mmpretrain': 'classification'}


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
