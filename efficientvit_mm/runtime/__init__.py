"""What ``tools/`` share: config loading, pre-flight checks, launching
(distributed set-up included) and the command-line helpers, for detection,
segmentation and classification configs alike (chosen by the config's
``default_scope``)."""
from ..errors import PreflightError, UserError
from .classes import check_classes
from .config import (apply_data_root, dataset_cfgs, drop_pretrained,
                     evaluator_cfgs, load_config, task_of)
from .dist import init_cpu_distributed
from .preflight import (check_checkpoint_file, check_datasets,
                        check_pretrained, preflight_test, preflight_train)

__all__ = [
    'PreflightError', 'UserError', 'apply_data_root', 'dataset_cfgs',
    'drop_pretrained', 'evaluator_cfgs', 'load_config', 'task_of',
    'init_cpu_distributed', 'check_checkpoint_file', 'check_datasets',
    'check_pretrained', 'preflight_test', 'preflight_train', 'check_classes'
]
