from .deploy import switch_to_deploy
from .checkpoint import (CheckpointMismatchError, detect_layout,
                         extract_state_dict, load_backbone_checkpoint,
                         load_checkpoint_file, match_state_dict,
                         resize_attention_bias, select_prefix,
                         split_efficientvit_state_dict)

__all__ = [
    'CheckpointMismatchError', 'detect_layout', 'extract_state_dict',
    'load_backbone_checkpoint', 'load_checkpoint_file', 'match_state_dict',
    'resize_attention_bias', 'select_prefix', 'split_efficientvit_state_dict', 'switch_to_deploy'
]
