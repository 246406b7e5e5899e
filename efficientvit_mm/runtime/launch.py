"""What tools/train.py and tools/test.py run: the launch checks, the config
each runs (from its command line), and running it with short errors
instead of tracebacks."""
import os
import os.path as osp
from typing import Callable, Optional

from ..errors import PreflightError, UserError, WorkDirBusyError

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
    fresh_visualizer(cfg)
    return cfg


def fresh_visualizer(cfg) -> None:
    """Give the run a visualizer of its own. mmengine hands back the
    instance of an existing name, so a second run in one process (after an
    inferencer, say) would log into the first one's folder, or nowhere;
    without a name the runner names it after its own experiment."""
    from mmengine.visualization import Visualizer
    vis = cfg.get('visualizer')
    if not isinstance(vis, dict) or 'name' not in vis:
        return
    kinds, taken = [Visualizer], False
    while kinds and not taken:  # each class keeps its own instances
        kind = kinds.pop()
        taken = kind.check_instance_created(vis['name'])
        kinds += kind.__subclasses__()
    if taken:
        vis.pop('name')


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
        # 'auto': the newest checkpoint of the work dir, found once the
        # Runner is built (see runtime/checkpoints.py)
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


def use_atomic_checkpoints(cfg) -> None:
    """Save through :class:`~efficientvit_mm.engine.hooks.
    AtomicCheckpointHook` where the config uses mmengine's CheckpointHook
    (or, having none, gets mmengine's default one)."""
    hooks = cfg.get('default_hooks')
    if hooks is None:
        cfg.default_hooks = hooks = {}
    if 'checkpoint' not in hooks:
        hooks['checkpoint'] = dict(type='AtomicCheckpointHook', interval=1)
    elif isinstance(hooks['checkpoint'],
                    dict) and hooks['checkpoint'].get('type') in (
                        'CheckpointHook', 'mmengine.CheckpointHook'):
        hooks['checkpoint']['type'] = 'AtomicCheckpointHook'
    # mmengine refuses None for hooks it does not add itself
    for name in [n for n, hook in hooks.items() if hook is None]:
        if name not in ('runtime_info', 'timer', 'sampler_seed', 'logger',
                        'param_scheduler', 'checkpoint'):
            del hooks[name]


def global_rank() -> int:
    """This process's rank in the job (0 for a single process)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if name in os.environ:
            return int(os.environ[name])
    return 0


def claim_work_dir(cfg, prog: str):
    """The work-dir lock, taken by rank 0; every rank of a started process
    group learns whether rank 0 got it (else they would wait for it in the
    next collective until the timeout)."""
    import torch.distributed as dist

    from .errors import message_of, print_warning
    from .lock import acquire_work_dir
    lock, failure = None, None
    if global_rank() == 0:
        try:
            lock = acquire_work_dir(cfg.work_dir,
                                    warn=lambda m: print_warning(prog, m))
        except Exception as err:  # busy, or a folder it cannot write
            failure = err
    if dist.is_available() and dist.is_initialized() and \
            dist.get_world_size() > 1:
        shared = [
            None if failure is None else
            (isinstance(failure, WorkDirBusyError), message_of(failure))
        ]
        dist.broadcast_object_list(shared, src=0)
        if failure is None and shared[0] is not None:
            busy, text = shared[0]
            raise WorkDirBusyError(text) if busy else UserError(
                f'rank 0 could not lock the work dir {cfg.work_dir} '
                f'({text}); its log tells more')
    if failure is not None:
        raise failure
    return lock


def build_runner(cfg):
    """The Runner of ``cfg``; a build error that means a fixable config
    problem (unknown argument, unregistered type...) becomes a UserError."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from .errors import build_error
    try:
        return Runner.from_cfg(cfg) if 'runner_type' not in cfg \
            else RUNNERS.build(cfg)
    except UserError:
        raise
    except Exception as err:
        user = build_error(err)
        if user is None:
            raise
        raise user from err


def resume_hint(prog: str, cfg) -> str:
    """How to continue a training stopped by Ctrl-C."""
    if cfg is None:
        return ''
    from .checkpoints import checkpoints_in
    command = f'python {prog} {cfg.filename} --work-dir {cfg.work_dir}'
    if osp.isfile(osp.join(cfg.work_dir, 'last_checkpoint')) or \
            checkpoints_in(cfg.work_dir):
        return f'Continue from the last checkpoint with: {command} --resume'
    return f'No checkpoint was saved yet; start again with: {command}'


def run_tool(name: str, build_cfg: Callable, action: Callable,
             command: str = 'test') -> int:
    """Build the config and the Runner, check what the run starts from,
    then ``action(runner, cfg)``; ``command`` is 'train' or 'test'.

    Before ``action``: a training run locks its work dir, the checkpoint it
    starts from (``load_from``, ``--resume``, the checkpoint of a test) is
    checked against the built model, and every dataset it uses is built and
    checked (see :mod:`.checkpoints`, :mod:`.data_check`). Problems a user
    can fix print a short ``<name>: error: ...`` and return 1 (130 after
    Ctrl-C); bugs keep their traceback.
    """
    import efficientvit_mm  # noqa: F401  (modules and compat fixes)
    from .checkpoints import prepare_start
    from .config import misspelt_keys
    from .data_check import prepare_dataloaders
    from .dist import (collective_timeout, init_cpu_distributed,
                       shutdown_distributed, start_heartbeat, stop_heartbeat)
    from .errors import print_warning, report
    finished, lock, cfg = False, None, None
    try:
        cfg = build_cfg()
        for key, meant in misspelt_keys(cfg):
            print_warning(
                name, f'config key {key!r} means nothing to mmengine and is '
                f'ignored; did you mean {meant!r}?')
        if command == 'train':
            use_atomic_checkpoints(cfg)
        init_cpu_distributed(cfg, cfg.launcher)
        if command == 'train':
            lock = claim_work_dir(cfg, name)
        runner = build_runner(cfg)
        if cfg.launcher != 'none':
            start_heartbeat(collective_timeout(cfg), lambda: runner.iter)
        prepare_start(runner, cfg, command, cfg.filename)
        prepare_dataloaders(runner, cfg, command)
        action(runner, cfg)
        finished = True
    except (Exception, KeyboardInterrupt) as err:
        hint = (lambda: resume_hint(name, cfg)) if command == 'train' \
            else None
        return report(name, err, on_interrupt=hint)
    finally:
        stop_heartbeat()
        if lock is not None:
            lock.release()
        shutdown_distributed(clean=finished)
    return 0
