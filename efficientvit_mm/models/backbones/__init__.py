from .efficientvit import (EfficientViT, EfficientViTBlock,
                           EfficientViTDownsample, EfficientViTStage)

__all__ = [
    'EfficientViT', 'EfficientViTBlock', 'EfficientViTDownsample',
    'EfficientViTStage'
]
