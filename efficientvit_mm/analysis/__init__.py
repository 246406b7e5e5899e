"""Analyses of models and runs: complexity (params, FLOPs), the paper's
efficiency studies (runtime breakdown, Fig. 2; MHSA proportion, Fig. 3;
head similarity, Fig. 4; Taylor pruning, Fig. 5) and reading training
logs."""
from .complexity import count_complexity
from .head_similarity import head_similarity, tap_heads
from .logs import find_scalar_log, load_scalars, per_class_iou
from .runtime_breakdown import (classify, module_roles, runtime_breakdown,
                                summarise)

__all__ = [
    'count_complexity', 'head_similarity', 'tap_heads', 'find_scalar_log',
    'load_scalars', 'per_class_iou', 'classify', 'module_roles',
    'runtime_breakdown', 'summarise'
]
