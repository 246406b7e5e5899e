"""EfficientViT checkpoints: safe reading, the published key layouts
(official, timm, ours), fitting them to models, and conversion."""
from ..errors import CheckpointMismatchError
from .convert import check_against_model, convert_checkpoint, convert_file
from .io import load_checkpoint_file
from .layouts import (detect_layout, extract_state_dict, select_prefix,
                      split_efficientvit_state_dict)
from .loading import (KeyReport, compare_state_dict, load_backbone_checkpoint,
                      load_model_weights, match_state_dict,
                      resize_attention_bias)

__all__ = [
    'CheckpointMismatchError', 'KeyReport', 'check_against_model',
    'compare_state_dict', 'convert_checkpoint', 'convert_file',
    'detect_layout', 'extract_state_dict', 'load_backbone_checkpoint',
    'load_checkpoint_file', 'load_model_weights', 'match_state_dict',
    'resize_attention_bias', 'select_prefix', 'split_efficientvit_state_dict'
]
