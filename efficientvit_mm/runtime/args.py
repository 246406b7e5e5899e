"""Command-line pieces the tools share: config overrides, input shapes,
CPU threads and the launcher."""
import argparse
import os
from typing import Optional, Sequence, Tuple

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def add_cfg_options(parser: argparse.ArgumentParser,
                    flag: str = '--cfg-options', help: str = None) -> None:
    """``--cfg-options key=value ...`` merged into the config."""
    from mmengine.config import DictAction
    parser.add_argument(
        flag, nargs='+', action=DictAction, metavar='KEY=VALUE',
        help=help or 'change settings of the config, e.g. '
        'model.backbone.arch=m2 or key="[a,b]" for a list; data_root=PATH '
        'also moves every dataset and evaluator file under the new root')


def add_shape(parser: argparse.ArgumentParser, what: str = 'input size'
              ) -> None:
    """``--shape H W`` (or one size for a square input)."""
    parser.add_argument(
        '--shape', type=int, nargs='+', metavar='N',
        help=f'{what}: H W, or one number for a square (default: 224 for '
        'classification, 800 1333 for detection, 512 for segmentation)')


def parse_shape(parser: argparse.ArgumentParser,
                shape: Optional[Sequence[int]]
                ) -> Optional[Tuple[int, int]]:
    """The (H, W) of a ``--shape`` value; None when it was not given."""
    if shape is None:
        return None
    if len(shape) not in (1, 2) or min(shape) < 1:
        parser.error(f'--shape takes H W or one size (positive), got '
                     f'{" ".join(map(str, shape))}')
    return (shape[0], shape[-1])


def add_threads(parser: argparse.ArgumentParser,
                default: Optional[int] = None, why: str = '') -> None:
    """``--threads N``: torch's CPU threads."""
    parser.add_argument(
        '--threads', type=int, default=default, metavar='N',
        help='CPU threads for torch' + (f' (default {default}{why})'
                                        if default else why))


def check_threads(parser: argparse.ArgumentParser,
                  threads: Optional[int]) -> None:
    if threads is not None and threads < 1:
        parser.error(f'--threads must be at least 1, got {threads}')


def add_launcher(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and the per-process rank option that
    ``torch.distributed.launch`` appends to every command line."""
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none',
        help='how the processes were started: none (one process), pytorch '
        '(torchrun, tools/dist_*.sh), slurm (srun, tools/slurm_*.sh) or mpi '
        '(mpirun)')
    parser.add_argument('--local-rank', '--local_rank', type=int,
                        dest='local_rank', help=argparse.SUPPRESS)


def export_local_rank(args: argparse.Namespace) -> None:
    """torchrun exports LOCAL_RANK itself; the older launcher passes it as
    an option instead, so make it visible the same way."""
    if args.local_rank is not None:
        os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
