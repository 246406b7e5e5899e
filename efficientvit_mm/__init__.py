"""EfficientViT (CVPR 2023, cascaded group attention) for OpenMMLab 2.0.

``import efficientvit_mm`` registers every module in mmengine's root
registries, so ``type='EfficientViT'`` builds from mmdet, mmseg and
mmpretrain configs alike, and applies the compatibility fixes the pinned
stack needs (see :mod:`efficientvit_mm.compat`); under mmdeploy, also
mmdeploy's (:mod:`efficientvit_mm.deploy.mmdeploy_compat`).
"""
import sys as _sys

from . import compat  # noqa: F401  (must run before any checkpoint is read)
from . import engine, models  # noqa: F401
from .version import __version__

if 'mmdeploy' in _sys.modules:  # mmdeploy's tools are loading our configs
    from .deploy.mmdeploy_compat import apply as _apply_mmdeploy_compat
    _apply_mmdeploy_compat()

__all__ = ['__version__']
