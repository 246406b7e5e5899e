"""What tools/train.py and tools/test.py share: the launch checks, the
config a tool runs, and running it with short errors instead of
tracebacks."""
import os
import os.path as osp
import sys
from typing import Callable, Optional

from .preflight import PreflightError

# what each launcher reads from the environment, and who sets it
_LAUNCHER_ENV = {
    'pytorch': (('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
                'torchrun: tools/dist_train.sh CONFIG N (or dist_test.sh)'),
    'slurm': (('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
              'srun: tools/slurm_train.sh (or slurm_test.sh)'),
    'mpi': (('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'),
            'mpirun'),
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
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def run_tool(name: str, build_cfg: Callable, action: Callable) -> int:
    """Build the config and the Runner, then ``action(runner, cfg)``.

    Problems a user can fix (missing data or checkpoints, a checkpoint of
    another model, a wrong launch) print one ``<name>: error: ...`` line and
    return 1.
    """
    import efficientvit_mm  # noqa: F401  (modules and compat fixes)
    from efficientvit_mm.models.utils import CheckpointMismatchError

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
    except (PreflightError, CheckpointMismatchError) as err:
        print(f'{name}: error: {err}', file=sys.stderr)
        return 1
    finally:
        shutdown_distributed(clean=finished)
    return 0
