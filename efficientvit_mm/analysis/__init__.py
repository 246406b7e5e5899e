"""Analyses of models and runs: complexity (params, FLOPs), the paper's
efficiency studies (head similarity, Fig. 4; runtime breakdown, Fig. 2) and
reading training logs."""
from .complexity import count_complexity
from .head_similarity import head_similarity, record_head_outputs
from .logs import find_scalar_log, load_scalars, per_class_iou
from .runtime_breakdown import classify, runtime_breakdown, summarise

__all__ = [
    'count_complexity', 'head_similarity', 'record_head_outputs',
    'find_scalar_log', 'load_scalars', 'per_class_iou', 'classify',
    'runtime_breakdown', 'summarise'
]
