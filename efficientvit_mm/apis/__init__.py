"""Building a model from a config, with or without its weights, the
tensor-in wrapper that timing, export and analysis use, and predictions on
your own images and videos (``tools/demo.py``)."""
from .inference import run_demo
from .model import (DEFAULT_SHAPES, TensorForward, build_model,
                    build_preprocessor, data_samples, model_config,
                    tensor_model)

__all__ = [
    'DEFAULT_SHAPES', 'TensorForward', 'build_model', 'build_preprocessor',
    'data_samples', 'model_config', 'run_demo', 'tensor_model'
]
