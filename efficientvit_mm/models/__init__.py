"""The model: building blocks (``layers``), the EfficientViT backbone, the
EfficientViTFPN neck and the mmpretrain classifier head, all registered in
mmengine's root ``MODELS`` registry."""
from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
