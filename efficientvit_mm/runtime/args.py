"""Command-line pieces the tools share: config overrides, input shapes,
CPU threads and the launcher."""
import argparse
import os
import os.path as osp
from typing import Optional, Sequence, Tuple

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
# the folder holding tools/ and benchmarks/ (for a checkout of this repo)
CHECKOUT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class ToolParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors take two lines (the message and where
    the options are listed), not the whole usage."""

    def error(self, message: str):
        self.exit(
            2, f'{self.prog}: error: {message}\n'
            f'(the options: {self.prog} --help)\n')


def tool_parser(script: str, description: str,
                raw: bool = False) -> argparse.ArgumentParser:
    """The parser of the tool ``script`` (its ``__file__``), named by its
    path in the checkout (``tools/train.py``); ``raw`` keeps the layout of
    the description (docstrings with command examples)."""
    path = osp.abspath(script)
    prog = osp.relpath(
        path, CHECKOUT) if path.startswith(CHECKOUT +
                                           os.sep) else osp.basename(path)
    return ToolParser(
        prog=prog, description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter
        if raw else argparse.HelpFormatter)


def _cfg_options_action():
    """mmengine's DictAction, with a malformed item reported as an argument
    error (usage and one line) instead of a traceback."""
    from mmengine.config import DictAction

    class CfgOptions(DictAction):

        def __call__(self, parser, namespace, values, option_string=None):
            for item in values:
                if '=' not in item:
                    raise argparse.ArgumentError(
                        self, f'{item!r} has no value: write KEY=VALUE')
            try:
                super().__call__(parser, namespace, values, option_string)
            except (ValueError, AssertionError) as err:
                raise argparse.ArgumentError(
                    self, f'{err}; write lists in brackets without spaces, '
                    f'e.g. KEY="[1,2,3]"') from None

    return CfgOptions


def add_cfg_options(parser: argparse.ArgumentParser,
                    flag: str = '--cfg-options', help: str = None) -> None:
    """``--cfg-options key=value ...`` merged into the config."""
    default = ('change settings of the config, e.g. '
               'train_dataloader.batch_size=4; write lists in brackets '
               'without spaces (model.neck.in_channels="[64,128,192]"); '
               'data_root=PATH also moves every dataset and evaluator file '
               'under the new root')
    parser.add_argument(flag, nargs='+', action=_cfg_options_action(),
                        metavar='KEY=VALUE', help=help or default)


def add_shape(parser: argparse.ArgumentParser,
              what: str = 'input size') -> None:
    """``--shape H W`` (or one size for a square input)."""
    parser.add_argument(
        '--shape', type=int, nargs='+', metavar='N',
        help=f'{what}: H W, or one number for a square (default: 224 for '
        'classification, 800 1333 for detection, 512 for segmentation)')


def parse_shape(parser: argparse.ArgumentParser,
                shape: Optional[Sequence[int]]) -> Optional[Tuple[int, int]]:
    """The (H, W) of a ``--shape`` value; None when it was not given."""
    if shape is None:
        return None
    if len(shape) not in (1, 2) or min(shape) < 1:
        parser.error(f'--shape takes H W or one size (positive), got '
                     f'{" ".join(map(str, shape))}')
    return (shape[0], shape[-1])


def parse_arch_benchmark(script: str, description: str,
                         argv=None) -> argparse.Namespace:
    """The arguments of the benchmarks that measure each of M0-M5:
    ``--archs``, ``--json F`` (all figures), ``--repeats N``."""
    parser = tool_parser(script, description)
    add_archs(parser)
    parser.add_argument('--json', help='write all figures to this file')
    parser.add_argument('--repeats', type=int, default=9)
    return parser.parse_args(argv)


def add_archs(parser: argparse.ArgumentParser) -> None:
    """``--archs m0 ... m5``: the EfficientViT variants to measure."""
    names = [f'm{i}' for i in range(6)]
    parser.add_argument('--archs', nargs='+', choices=names, default=names,
                        metavar='ARCH', help='m0 to m5 (default: all)')


def add_work_dir(parser: argparse.ArgumentParser, what: str) -> None:
    """``--work-dir``: where a run writes ``what``."""
    parser.add_argument(
        '--work-dir', help=f'folder for {what} (default: the config\'s '
        'work_dir, else work_dirs/<config name>)')


def add_threads(parser: argparse.ArgumentParser, default: Optional[int] = None,
                why: str = '') -> None:
    """``--threads N``: torch's CPU threads."""
    parser.add_argument(
        '--threads', type=int, default=default, metavar='N',
        help='CPU threads for torch' +
        (f' (default {default}{why})' if default else why))


def check_threads(parser: argparse.ArgumentParser,
                  threads: Optional[int]) -> None:
    if threads is not None and threads < 1:
        parser.error(f'--threads must be at least 1, got {threads}')


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device cpu|cuda`` (checked by :func:`check_device`)."""
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu',
                        help='where the models run (default cpu)')


def check_device(device: str) -> None:
    """A :class:`UserError` (one line in a tool) for ``cuda`` on a machine
    where torch sees no CUDA device."""
    import torch

    from ..errors import UserError
    if device == 'cuda' and not torch.cuda.is_available():
        raise UserError('--device cuda: torch sees no CUDA device on this '
                        'machine; run with --device cpu, or on a machine '
                        'with a GPU and a CUDA build of torch')


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


def add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug``: tracebacks with the short error messages."""
    parser.add_argument(
        '--debug', action='store_true',
        help='print the traceback of an error too (as EVIT_DEBUG=1 does)')


def parse_debug_args(parser: argparse.ArgumentParser,
                     argv=None) -> argparse.Namespace:
    """``parser.parse_args`` with ``--debug`` added and applied."""
    from .errors import enable_debug
    add_debug(parser)
    args = parser.parse_args(argv)
    if args.debug:
        enable_debug()
    return args


def parse_run_args(parser: argparse.ArgumentParser,
                   argv=None) -> argparse.Namespace:
    """Arguments of a tool that runs a config (train, test): its own, then
    ``--cfg-options``, the launcher options and ``--debug``."""
    add_cfg_options(parser)
    add_launcher(parser)
    args = parse_debug_args(parser, argv)
    export_local_rank(args)
    return args


def export_local_rank(args: argparse.Namespace) -> None:
    """torchrun exports LOCAL_RANK itself; the older launcher passes it as
    an option instead, so make it visible the same way."""
    if args.local_rank is not None:
        os.environ.setdefault('LOCAL_RANK', str(args.local_rank))


def add_model(parser: argparse.ArgumentParser) -> None:
    """``CONFIG CHECKPOINT`` (``'none'``: weights as built) and
    ``--cfg-options``: the model an analysis tool studies."""
    parser.add_argument('config')
    parser.add_argument(
        'checkpoint', help="whole-model checkpoint, or 'none' for the "
        'weights the model is built with')
    add_cfg_options(parser)


def checkpoint_or_none(value: str) -> Optional[str]:
    """The CHECKPOINT of :func:`add_model`, None for ``'none'``."""
    return None if value.lower() == 'none' else value


def add_configs(parser: argparse.ArgumentParser) -> None:
    """``CONFIG [CONFIG ...]``, ``--labels`` (one per config) and
    ``--cfg-options`` (for every config): models studied side by side."""
    parser.add_argument('configs', nargs='+', metavar='CONFIG',
                        help='config files or mmpretrain::... configs')
    parser.add_argument('--labels', nargs='+',
                        help='one name per config (default: config names)')
    add_cfg_options(parser)


def config_labels(parser: argparse.ArgumentParser,
                  args: argparse.Namespace) -> Sequence[str]:
    """The ``--labels`` of :func:`add_configs` (checked: one per config),
    or the configs' file names."""
    if args.labels and len(args.labels) != len(args.configs):
        parser.error(f'--labels needs one name per config '
                     f'({len(args.configs)}), got {len(args.labels)}')
    return args.labels or [config_name(c) for c in args.configs]


def config_name(config: str) -> str:
    """'swin-tiny_16xb64_in1k' for mmpretrain::swin_transformer/swin-tiny_
    16xb64_in1k.py or a file path."""
    return osp.splitext(osp.basename(config.split('::')[-1]))[0]


def output_paths(out_dir: str, *names: str) -> Sequence[str]:
    """``out_dir/<name>`` for each name, the folder made."""
    os.makedirs(out_dir, exist_ok=True)
    return [osp.join(out_dir, name) for name in names]
