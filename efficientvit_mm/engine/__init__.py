"""Training machinery of the EfficientViT recipes: adaptive gradient
clipping and the mixed-precision twin of an optim-wrapper config."""
from .optim_wrappers import (AGCAmpOptimWrapper, AGCOptimWrapper,
                             adaptive_clip_grad_, amp_optim_wrapper)

__all__ = [
    'AGCOptimWrapper', 'AGCAmpOptimWrapper', 'adaptive_clip_grad_',
    'amp_optim_wrapper'
]
