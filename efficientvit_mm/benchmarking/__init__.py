"""Speed and memory measurements: one timing engine (:mod:`.timing`), the
inference modes (:mod:`.inference`), training steps (:mod:`.training`), the
machine a figure was taken on (:mod:`.machine`), and a CPU focal loss with
the memory profile of mmcv's CUDA kernel (:mod:`.focal_loss`)."""
from .inference import MODES, benchmark, benchmark_config, prepare
from .machine import describe_machine
from .timing import peak_memory, time_interleaved

__all__ = [
    'MODES', 'benchmark', 'benchmark_config', 'prepare', 'describe_machine',
    'peak_memory', 'time_interleaved'
]
