"""The BN-folded inference path: folding a whole model
(:func:`switch_to_deploy`), the CPU kernels folded layers run on
(:mod:`.cpu_conv`), our compiled ones (:mod:`.native`) and the C++ replay of
a folded forward (:mod:`.replay`)."""
from .switch import switch_to_deploy

__all__ = ['switch_to_deploy']
