"""The paper's efficiency studies as functions usable on any checkpoint."""
from .head_similarity import head_similarity, record_head_outputs
from .runtime_breakdown import classify, runtime_breakdown, summarise

__all__ = ['head_similarity', 'record_head_outputs', 'classify',
           'runtime_breakdown', 'summarise']
