"""Switch a whole model (backbone, head, ...) to its inference structure."""
import torch.nn as nn

from ..errors import UserError


def switch_to_deploy(model: nn.Module) -> nn.Module:
    """Call ``switch_to_deploy()`` on every module of ``model`` that has one.

    For EfficientViT models this folds every BatchNorm of the backbone and of
    the classifier head. Folding is idempotent. Returns ``model`` in eval mode.
    """
    targets = [
        m for m in model.modules()
        if callable(getattr(m, 'switch_to_deploy', None))
    ]
    if not targets:
        raise UserError(f'{type(model).__name__} has no part with a '
                        f'switch_to_deploy() method: deploy mode needs an '
                        f'EfficientViT backbone or head')
    for module in targets:
        module.switch_to_deploy()
    return model.eval()
