"""Checks of the launch environment, before a job starts."""
import os

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
