"""Training and testing machinery of the EfficientViT recipes: adaptive
gradient clipping, the mixed-precision twin of an optim-wrapper config,
atomic checkpoint saves, the divergence stop, the CPU-threads hook and the
hook that tests a model in its deploy structure."""
from .cpu_threads import AdaptiveThreadsHook
from .deploy_hook import DeployModelHook
from .hooks import AtomicCheckpointHook, DivergenceHook
from .optim_wrappers import (AGCAmpOptimWrapper, AGCOptimWrapper,
                             adaptive_clip_grad_, amp_optim_wrapper)

__all__ = [
    'AGCOptimWrapper', 'AGCAmpOptimWrapper', 'AdaptiveThreadsHook',
    'AtomicCheckpointHook', 'DeployModelHook', 'DivergenceHook',
    'adaptive_clip_grad_', 'amp_optim_wrapper'
]
