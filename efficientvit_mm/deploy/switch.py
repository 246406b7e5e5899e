"""Switch a whole model (backbone, head, ...) to its inference structure."""
import torch.nn as nn

from ..errors import UserError


def _deploy_parts(model: nn.Module) -> list:
    """The modules of ``model`` with a ``switch_to_deploy()`` method."""
    return [
        m for m in model.modules()
        if callable(getattr(m, 'switch_to_deploy', None))
    ]


def has_deploy_mode(model: nn.Module) -> bool:
    """Whether some part of ``model`` has a ``switch_to_deploy()`` (an
    EfficientViT backbone or head)."""
    return bool(_deploy_parts(model))


def fold_for_export(model: nn.Module) -> nn.Module:
    """``switch_to_deploy(model)`` where it has a deploy mode; any other
    model (another backbone, folded already or not) is exported as it is.
    Returns ``model`` in eval mode."""
    return switch_to_deploy(model) if has_deploy_mode(model) else model.eval()


def switch_to_deploy(model: nn.Module) -> nn.Module:
    """Call ``switch_to_deploy()`` on every module of ``model`` that has one.

    For EfficientViT models this folds every BatchNorm of the backbone and of
    the classifier head. Folding is idempotent. Returns ``model`` in eval mode.
    """
    targets = _deploy_parts(model)
    if not targets:
        raise UserError(f'{type(model).__name__} has no part with a '
                        f'switch_to_deploy() method: deploy mode needs an '
                        f'EfficientViT backbone or head')
    for module in targets:
        module.switch_to_deploy()
    return model.eval()
