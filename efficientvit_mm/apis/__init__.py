"""Task-agnostic helpers shared by the tools."""
from .complexity import count_complexity
from .config import TASKS, build_model, load_config, task_of

__all__ = ['count_complexity', 'build_model', 'load_config', 'task_of',
           'TASKS']
