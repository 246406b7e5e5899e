"""Heads that need a toolbox are registered only when it is installed."""
__all__ = []

try:
    import mmpretrain  # noqa: F401
except ModuleNotFoundError:  # the backbone and neck work without mmpretrain
    pass
else:
    from .efficientvit_cls_head import EfficientViTClsHead
    __all__ += ['EfficientViTClsHead']
