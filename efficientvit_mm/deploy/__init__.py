"""The BN-folded inference path: folding a whole model
(:func:`switch_to_deploy`), the CPU kernels folded layers run on
(:mod:`.cpu_conv`) and our compiled ones (:mod:`.native`)."""
from .switch import switch_to_deploy

__all__ = ['switch_to_deploy']
