"""Training and testing machinery: adaptive gradient clipping, the
mixed-precision twin of an optim-wrapper config, and the hook that tests a
model in its deploy structure."""
from .deploy_hook import DeployModelHook
from .optim_wrappers import (AGCAmpOptimWrapper, AGCOptimWrapper,
                             adaptive_clip_grad_, amp_optim_wrapper)

__all__ = [
    'DeployModelHook', 'AGCOptimWrapper', 'AGCAmpOptimWrapper',
    'adaptive_clip_grad_', 'amp_optim_wrapper'
]
