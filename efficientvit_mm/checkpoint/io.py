"""Reading checkpoint files safely.

Files are read with ``torch.load(weights_only=True)``: tensors and plain
containers only, so a pickle that would run code is refused.
"""
import os
import pickle

import torch

from ..errors import CheckpointFileError, CheckpointNotFoundError


def load_checkpoint_file(path: str, map_location='cpu') -> dict:
    """Read a checkpoint safely (tensors and plain containers only)."""
    if path.startswith(('http://', 'https://')):
        return torch.hub.load_state_dict_from_url(path,
                                                  map_location=map_location,
                                                  weights_only=True)
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(
            f'checkpoint file not found: {path!r}. Put the file there, point '
            f'init_cfg.checkpoint (or load_from) at it, or set '
            f'init_cfg=None to train from scratch.')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[0]
        raise CheckpointFileError(
            f'refusing to load {path!r}: it is not a plain weights file and '
            f'unpickling it could run code ({reason}). efficientvit_mm reads '
            f'checkpoints with torch.load(weights_only=True); re-save only '
            f'the state dict from a trusted environment.') from None
