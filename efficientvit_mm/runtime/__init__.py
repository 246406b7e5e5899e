"""Shared machinery of ``tools/``: config handling, pre-flight checks and
CPU distributed set-up, for detection, segmentation and classification
configs alike (chosen by the config's ``default_scope``)."""
from .config import (apply_data_root, dataset_cfgs, load_config,
                     quiet_import_warnings)
from .dist import init_cpu_distributed
from .preflight import (PreflightError, check_checkpoint_file,
                        check_datasets, check_pretrained, preflight_test,
                        preflight_train)

__all__ = [
    'apply_data_root', 'dataset_cfgs', 'load_config',
    'quiet_import_warnings', 'init_cpu_distributed', 'PreflightError',
    'check_checkpoint_file', 'check_datasets', 'check_pretrained',
    'preflight_test', 'preflight_train'
]
