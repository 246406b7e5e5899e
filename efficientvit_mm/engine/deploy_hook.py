"""Testing the inference structure: a hook that folds the model (and, on
request, turns its dense parts to bf16) once its weights are loaded."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..deploy import switch_to_deploy
from ..deploy.precision import to_bf16
from .hooks import bare_model

PRECISIONS = ('fp32', 'bf16')


@HOOKS.register_module()
class DeployModelHook(Hook):
    """Before the test loop: ``switch_to_deploy`` on the runner's model,
    then :func:`~efficientvit_mm.deploy.precision.to_bf16` for
    ``precision='bf16'``. ``tools/test.py --deploy fp32|bf16`` adds it."""

    priority = 'LOWEST'

    def __init__(self, precision: str = 'fp32'):
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got '
                             f'{precision!r}')
        self.precision = precision

    def before_test(self, runner) -> None:
        model = bare_model(runner.model)  # DDP -> the model
        switch_to_deploy(model)
        if self.precision == 'bf16':
            to_bf16(model)
        runner.logger.info(f'testing the deploy model ({self.precision})')
