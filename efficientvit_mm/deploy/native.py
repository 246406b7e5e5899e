"""Our compiled CPU kernels: build, load, and whether they are there.

``csrc/`` defines ``torch.ops.efficientvit_mm.depthwise_conv2d`` (a folded
depthwise conv with its residual add and ReLU, over channels_last maps),
``torch.ops.efficientvit_mm.window_attention`` (one attention head over
windows: scores, bias, softmax and the weighted sum of values in one call)
and ``torch.classes.efficientvit_mm.OpReplay``, which replays a recorded
forward's operator calls (:mod:`.replay`). It is built against the
installed torch, once, by ``tools/setup_env.sh`` (``tools/build_kernels.py``),
into ``$EVIT_CACHE/kernels`` (default
``~/.cache/efficientvit_mm/kernels``), in a folder named after the
torch version, the Python version, the machine architecture and a hash of the
sources and of the CPU's instruction-set flags: the library is compiled for
the CPU it is built on (``-march=native``), and another torch, an edited
source or another CPU sharing the cache gets a build of its own.

Where the library is missing, the first call of :func:`available` builds it
(about 40 s on 2 cores, logged). Where it cannot be built (no C++ compiler),
it logs one warning with the reason and the kernels' callers use oneDNN
instead: the results are the same, only slower.
"""
import hashlib
import logging
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Optional

import torch

logger = logging.getLogger(__name__)

NAME = 'efficientvit_mm_kernels'
CSRC = Path(__file__).parent / 'csrc'
SOURCES = tuple(CSRC / name for name in ('ops.cpp', 'depthwise_conv.cpp',
                                         'window_attention.cpp', 'replay.cpp'))
OPS = ('depthwise_conv2d', 'window_attention')
# for the CPU it is built on; build_dir() keys the build on that CPU's
# instruction-set flags, so that a cache shared by other CPUs never serves
# them code they cannot run
CFLAGS = ['-O3', '-march=native', '-Wno-psabi']

_state: dict = {}  # 'ok': bool once decided, 'error': why not


def cpu_flags() -> str:
    """The instruction-set flags of this CPU (Linux), else its name."""
    try:
        with open('/proc/cpuinfo') as info:
            for line in info:
                if line.startswith(('flags', 'Features')):
                    return ' '.join(sorted(line.split(':', 1)[1].split()))
    except OSError:
        pass
    return f'{platform.machine()} {platform.processor()}'


def build_dir() -> Path:
    """Where the library for this torch, Python, CPU and source lives."""
    digest = hashlib.sha256(cpu_flags().encode())
    for source in sorted(CSRC.glob('*.[ch]*')):  # sources and header
        digest.update(source.name.encode() + source.read_bytes())
    digest.update(' '.join(CFLAGS).encode())
    tag = (f'torch{torch.__version__}-py{sys.version_info[0]}'
           f'{sys.version_info[1]}-{platform.machine()}-'
           f'{digest.hexdigest()[:12]}')
    root = os.environ.get('EVIT_CACHE') or Path.home() / '.cache' / \
        'efficientvit_mm'
    return Path(root) / 'kernels' / tag


def _registered() -> bool:
    return hasattr(torch.ops, 'efficientvit_mm') and all(
        hasattr(torch.ops.efficientvit_mm, op) for op in OPS)


def library_path() -> Path:
    return build_dir() / f'{NAME}.so'


def build(verbose: bool = False) -> Path:
    """Compile the kernels for this torch, CPU and source, unless built, and
    return the library's path. Raises what the compiler raised.

    A built library is never rebuilt in place: the folder's name already
    fixes what it was built from, and a process may have it loaded (another
    checkout would otherwise rebuild it, its sources living elsewhere). It
    is built in a folder of this process's own and renamed into place, so
    another process never finds a half-written library."""
    from torch.utils import cpp_extension
    target = library_path()
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.parent / f'build-{os.getpid()}'
    scratch.mkdir(exist_ok=True)
    try:
        cpp_extension.load(NAME, [str(s) for s in SOURCES],
                           extra_cflags=CFLAGS, build_directory=str(scratch),
                           is_python_module=False, verbose=verbose)
        os.replace(scratch / target.name, target)  # atomic on one filesystem
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def load(build_missing: bool = True) -> bool:
    """Load the kernels, building them first if missing and
    ``build_missing``. True when ``torch.ops.efficientvit_mm`` has them;
    decided once per process."""
    if 'ok' in _state:
        return _state['ok']
    ok, error = _registered(), None
    if not ok:
        path = library_path()
        try:
            if not path.exists():
                if not build_missing:
                    raise FileNotFoundError(f'{path} is not built')
                logger.warning(
                    'building efficientvit_mm CPU kernels for torch %s '
                    '(once, about 40 s on 2 cores) in %s', torch.__version__,
                    path.parent)
                build()
            if not _registered():
                torch.ops.load_library(str(path))
            ok = _registered()
        except Exception as exc:  # compiler missing, build failed, bad .so
            error = f'{type(exc).__name__}: {str(exc).strip()[-500:]}'
    if ok:
        try:
            _register_fake()
        except Exception as exc:  # the kernels cannot be traced: not used
            ok, error = False, f'{type(exc).__name__}: {exc}'
    if not ok and build_missing:
        logger.warning(
            'efficientvit_mm CPU kernels unavailable (%s); depthwise convs '
            "and attention heads run through PyTorch's operators instead "
            '(same results, slower). Run `python tools/build_kernels.py` to '
            'see the build.', error)
    _state.update(ok=ok, error=error)
    return ok


def loaded() -> bool:
    """Whether the kernels are loaded, without trying to load them."""
    return _state.get('ok', False)


def available() -> bool:
    """Whether the kernels can be called (building them if needed)."""
    return _state['ok'] if 'ok' in _state else load()


def _depthwise_shape(x, weight, bias, stride, padding, residual, relu):
    k = weight.shape[0]
    n, c, h, w = x.shape
    out = ((h + 2 * padding - k) // stride + 1,
           (w + 2 * padding - k) // stride + 1)
    return x.new_empty((n, c) +
                       out).contiguous(memory_format=torch.channels_last)


def _attention_shape(q, k, v, bias, scale):
    return q.new_empty(q.shape[:2] + v.shape[2:])


def _register_fake() -> None:
    """Shape functions, so that ``torch.compile`` can trace the ops. Once
    per process: registered already (this module reloaded), they stay."""
    for op, shape in (('depthwise_conv2d', _depthwise_shape),
                      ('window_attention', _attention_shape)):
        try:
            torch.library.register_fake(f'efficientvit_mm::{op}')(shape)
        except RuntimeError as exc:
            if 'already' not in str(exc):
                raise


def depthwise_conv2d(x: torch.Tensor, weight_kkc: torch.Tensor,
                     bias: torch.Tensor, stride: int, padding: int,
                     residual: Optional[torch.Tensor] = None,
                     relu: bool = False) -> torch.Tensor:
    """``relu?(depthwise_conv(x) + bias + residual?)``, channels_last.

    x: (N, C, H, W) fp32 with channels innermost, C a multiple of 16;
    weight_kkc: (K, K, C) contiguous (K = 3, 5 or 7); stride 1 or 2.
    Call only where :func:`available`.
    """
    return torch.ops.efficientvit_mm.depthwise_conv2d(x, weight_kkc, bias,
                                                      stride, padding,
                                                      residual, relu)


def window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     bias: torch.Tensor, scale: float) -> torch.Tensor:
    """``softmax(scale * q k^T + bias) v`` per window: q, k (B, L, D) and v
    (B, L, E), fp32 with features innermost (any row strides), bias (L, L)
    -> (B, L, E) contiguous. Call only where :func:`available`."""
    return torch.ops.efficientvit_mm.window_attention(q, k, v, bias, scale)


def build_main(verbose: bool = False) -> int:
    """Build and load the kernels, saying where; 1 with the compiler's
    message when the build fails (tools/build_kernels.py)."""
    print(f'[kernels] building, unless built, in {build_dir()}', flush=True)
    try:
        build(verbose)
    except Exception as exc:  # the compiler's output is in the message
        print(f'[kernels] build failed: {exc}', file=sys.stderr)
        return 1
    if not load(build_missing=False):
        print(f'[kernels] built, but loading failed: {_state["error"]}',
              file=sys.stderr)
        return 1
    print(f'[kernels] ready: {library_path()}')
    return 0
