"""Training machinery of the EfficientViT recipes: adaptive gradient
clipping, the mixed-precision twin of an optim-wrapper config, atomic
checkpoint saves and the divergence stop."""
from .cpu_threads import AdaptiveThreadsHook
from .hooks import AtomicCheckpointHook, DivergenceHook
from .optim_wrappers import (AGCAmpOptimWrapper, AGCOptimWrapper,
                             adaptive_clip_grad_, amp_optim_wrapper)

__all__ = [
    'AGCOptimWrapper', 'AGCAmpOptimWrapper', 'AdaptiveThreadsHook',
    'AtomicCheckpointHook', 'DivergenceHook', 'adaptive_clip_grad_',
    'amp_optim_wrapper'
]
