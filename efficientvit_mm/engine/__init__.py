<<<<<<< HEAD
"""Training machinery of the EfficientViT recipes: adaptive gradient
clipping, the mixed-precision twin of an optim-wrapper config, atomic
checkpoint saves and the divergence stop."""
from .cpu_threads import AdaptiveThreadsHook
from .hooks import AtomicCheckpointHook, DivergenceHook
=======
"""Training and testing machinery: adaptive gradient clipping, the
mixed-precision twin of an optim-wrapper config, and the hook that tests a
model in its deploy structure."""
from .deploy_hook import DeployModelHook
>>>>>>> issue-12
from .optim_wrappers import (AGCAmpOptimWrapper, AGCOptimWrapper,
                             adaptive_clip_grad_, amp_optim_wrapper)

__all__ = [
<<<<<<< HEAD
    'AGCOptimWrapper', 'AGCAmpOptimWrapper', 'AdaptiveThreadsHook',
    'AtomicCheckpointHook', 'DivergenceHook', 'adaptive_clip_grad_',
    'amp_optim_wrapper'
=======
    'DeployModelHook', 'AGCOptimWrapper', 'AGCAmpOptimWrapper',
    'adaptive_clip_grad_', 'amp_optim_wrapper'
>>>>>>> issue-12
]
