"""What tools/train.py and tools/test.py run: the launch checks, the config
each runs (from its command line), and running it with short errors
instead of tracebacks."""
import os
import os.path as osp
from typing import Callable, Optional

from ..errors import PreflightError, UserError
from .errors import print_user_error

# what each launcher reads from the environment, and who sets it
_LAUNCHER_ENV = {
    'pytorch': (('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
                'torchrun: tools/dist_train.sh CONFIG N (or dist_test.sh)'),
    'slurm': (('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
              'srun: tools/slurm_train.sh (or slurm_test.sh)'),
    'mpi': (('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'), 'mpirun'),
}


def check_launcher(launcher: str) -> None:
    """The variables ``launcher`` needs must be set."""
    if launcher == 'none':
        return
    names, starter = _LAUNCHER_ENV[launcher]
    missing = [n for n in names if n not in os.environ]
    if missing:
        raise PreflightError(
            f'--launcher {launcher} needs {", ".join(missing)} in the '
            f'environment, set when the job is started by {starter}; for a '
            f'single process use --launcher none')


def check_amp() -> None:
    """mmengine's AmpOptimWrapper runs on GPUs (and NPU/MLU/MUSA) only."""
    from mmengine.device import (is_cuda_available, is_mlu_available,
                                 is_musa_available, is_npu_available)
    if not (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available()):
        raise PreflightError(
            '--amp needs a GPU: mmengine 0.10.7 runs mixed precision '
            '(AmpOptimWrapper) on CUDA, NPU, MLU or MUSA devices only; '
            'train in fp32 on the CPU (drop --amp)')


def tool_config(config: str, cfg_options: Optional[dict], launcher: str,
                work_dir: Optional[str]):
    """The config a tool runs: loaded with ``--cfg-options``, the launcher
    checked and recorded, the scope's modules registered, and a work dir
    (``--work-dir``, the config's, or ``work_dirs/<config name>``)."""
    from mmengine.registry import init_default_scope

    from .config import load_config
    check_launcher(launcher)
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    # register every module of the config's toolbox (mmdet, mmseg, ...)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    # the command line wins, then the config; else one folder per config
    stem = osp.splitext(osp.basename(config))[0]
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', stem)
    return cfg


def train_config(args):
    """The config ``tools/train.py`` runs, from its parsed arguments:
    ``--amp``, ``--auto-scale-lr`` and ``--resume`` applied, then the
    pre-flight checks."""
    from ..engine.optim_wrappers import amp_optim_wrapper
    from .preflight import preflight_train
    cfg = tool_config(args.config, args.cfg_options, args.launcher,
                      args.work_dir)
    if args.amp:
        check_amp()
        if not cfg.get('optim_wrapper'):
            raise PreflightError('--amp needs an optim_wrapper in the config')
        try:  # AGCOptimWrapper -> AGCAmpOptimWrapper, others -> Amp...
            cfg.optim_wrapper = amp_optim_wrapper(cfg.optim_wrapper)
        except ValueError as err:
            raise PreflightError(f'--amp: {err}') from None
    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or 'base_batch_size' not in scale:
            raise PreflightError(
                '--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=N) '
                'in the config (N = the total batch size its lr is for)')
        scale['enable'] = True
    if args.resume is not None:
        # 'auto': mmengine finds the newest checkpoint of the work dir
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume
    preflight_train(cfg, args.config)
    return cfg


def enable_visualization(cfg, show: bool, show_dir: Optional[str],
                         wait_time: float) -> None:
    """Turn on the toolbox's visualization hook for --show / --show-dir."""
    hook = (cfg.get('default_hooks') or {}).get('visualization')
    if hook is None:
        raise PreflightError(
            '--show and --show-dir draw through the toolbox\'s '
            'visualization hook, and this config has none: add one to '
            "default_hooks (mmdet: visualization=dict(type="
            "'DetVisualizationHook'))")
    scope = cfg.get('default_scope')
    if scope == 'mmpretrain':
        hook['enable'] = True
        if show_dir:
            hook['out_dir'] = show_dir
    else:
        hook['draw'] = True
        if show_dir and scope == 'mmseg':
            # mmseg's hook has no output folder of its own: the
            # visualizer's backends save the drawings
            cfg.visualizer['save_dir'] = osp.join(cfg.work_dir, show_dir)
        elif show_dir:
            hook['test_out_dir'] = show_dir
    if scope == 'mmseg':
        hook['interval'] = 1  # mmseg draws every 50th image by default
    if show:
        hook['show'] = True
        hook['wait_time'] = wait_time


def test_config(args):
    """The config ``tools/test.py`` runs, from its parsed arguments."""
    from .preflight import preflight_test
    cfg = tool_config(args.config, args.cfg_options, args.launcher,
                      args.work_dir)
    cfg.load_from = args.checkpoint
    if args.deploy:
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type='DeployModelHook', precision=args.deploy)
        ]
    if args.show or args.show_dir:
        enable_visualization(cfg, args.show, args.show_dir, args.wait_time)
    if args.out and cfg.get('default_scope') == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    preflight_test(cfg, args.config, args.checkpoint)
    return cfg


def add_prediction_dump(runner, cfg, out: str) -> None:
    """Save the raw predictions as the toolbox's own test tool does
    (segmentation label maps go through the evaluator, see
    :func:`test_config`)."""
    scope = cfg.get('default_scope')
    if scope == 'mmseg':
        return
    if osp.splitext(out)[1] not in ('.pkl', '.pickle'):
        raise PreflightError(f'--out writes a pickle of the predictions: '
                             f'give it a .pkl name, not {out!r}')
    if scope == 'mmdet':  # mmdet's variant drops the masks' RLE details
        from mmdet.evaluation import DumpDetResults as Dump
    else:
        from mmengine.evaluator import DumpResults as Dump
    runner.test_evaluator.metrics.append(Dump(out_file_path=out))


def run_tool(name: str, build_cfg: Callable, action: Callable) -> int:
    """Build the config and the Runner, then ``action(runner, cfg)``.

    Problems a user can fix (missing data or checkpoints, a checkpoint of
    another model, a wrong launch) print one ``<name>: error: ...`` line and
    return 1.
    """
    import efficientvit_mm  # noqa: F401  (modules and compat fixes)
    from .dist import init_cpu_distributed, shutdown_distributed
    finished = False
    try:
        cfg = build_cfg()
        init_cpu_distributed(cfg, cfg.launcher)
        from mmengine.registry import RUNNERS
        from mmengine.runner import Runner
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg \
            else RUNNERS.build(cfg)
        action(runner, cfg)
        finished = True
    except UserError as err:
        print_user_error(name, err)
        return 1
    finally:
        shutdown_distributed(clean=finished)
    return 0
