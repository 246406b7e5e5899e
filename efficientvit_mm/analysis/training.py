"""Brief training and evaluation of classifiers for the efficiency studies
(MHSA proportion, Taylor pruning): a model of one config trained on the
data of another (the shapes crops on a CPU), with progress lines."""
import contextlib
import logging

import torch.nn as nn


@contextlib.contextmanager
def quiet_mmengine():
    """mmengine's current logger at WARNING within the block (model
    initialisation otherwise prints one line per parameter)."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def init_weights(model: nn.Module) -> nn.Module:
    """``model.init_weights()`` (mmengine's initialisers, as a training run
    starts), without its log lines."""
    with quiet_mmengine():
        model.init_weights()
    return model
