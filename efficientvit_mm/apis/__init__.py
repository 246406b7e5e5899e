"""Task-agnostic helpers shared by the tools."""
from .complexity import count_complexity
from .config import TASKS, build_model, load_config, task_of
from .shapes_demo import SHAPES_DEMOS, ShapesDemo, shapes_demo_main

__all__ = ['count_complexity', 'build_model', 'load_config', 'task_of',
           'TASKS', 'SHAPES_DEMOS', 'ShapesDemo', 'shapes_demo_main']
