"""Datasets of efficientvit_mm (synthetic shapes for demos and tests).

Names are imported lazily, so ``python -m efficientvit_mm.datasets.shapes``
runs the module once, as ``__main__``.
"""
import importlib

__all__ = [
    'DEFAULT_CLASSES', 'SHAPE_CLASSES', 'ShapeInstance', 'ShapesGenerator',
    'ShapesScene', 'export_ade', 'export_coco', 'export_crops', 'split_seed'
]


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module('.shapes', __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
