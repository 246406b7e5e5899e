from .optim_wrappers import (AGCAmpOptimWrapper, AGCOptimWrapper,
                             adaptive_clip_grad_)

__all__ = ['AGCOptimWrapper', 'AGCAmpOptimWrapper', 'adaptive_clip_grad_']
