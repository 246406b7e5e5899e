"""Bad input to the backbone and its loader gets a clear error."""
import pickle

import pytest
import torch

from efficientvit_mm.checkpoint import (CheckpointMismatchError,
                                        load_backbone_checkpoint)
from efficientvit_mm.models import EfficientViT
from helpers import load_reference


def test_unknown_arch_lists_valid_names():
    with pytest.raises(
            ValueError, match=r"unknown EfficientViT arch 'm9'.*"
            r"\['m0', 'm1', 'm2', 'm3', 'm4', 'm5'\]"):
        EfficientViT('m9')


def test_incomplete_arch_dict_names_missing_keys():
    with pytest.raises(ValueError, match='missing.*kernels'):
        EfficientViT(
            dict(embed_dims=[64, 128, 192], depths=[1, 2, 3],
                 num_heads=[4, 4, 4], key_dim=16))


@pytest.mark.parametrize('out_indices', [(3, ), (0, 5), (-4, ), ()])
def test_out_indices_out_of_range(out_indices):
    with pytest.raises(ValueError, match='out_indices'):
        EfficientViT('m0', out_indices=out_indices)


@pytest.mark.parametrize('frozen_stages', [-2, 4])
def test_frozen_stages_out_of_range(frozen_stages):
    with pytest.raises(ValueError, match=r'frozen_stages must be an int in '
                       r'\[-1, 3\]'):
        EfficientViT('m0', frozen_stages=frozen_stages)


@pytest.mark.parametrize('shape', [(3, 64, 64), (1, 1, 64, 64), (1, 4, 64, 64),
                                   (1, 3, 8, 64, 64)])
def test_input_must_be_n_by_3_by_h_by_w(shape):
    model = EfficientViT('m0').eval()
    with pytest.raises(ValueError, match=r'expects an N x 3 x H x W'):
        model(torch.randn(*shape))


def test_missing_checkpoint_names_its_path(tmp_path):
    path = str(tmp_path / 'nowhere' / 'efficientvit_m4.pth')
    model = EfficientViT('m0', init_cfg=dict(type='Pretrained',
                                             checkpoint=path))
    with pytest.raises(FileNotFoundError) as err:
        model.init_weights()
    assert path in str(err.value)
    assert 'init_cfg=None' in str(err.value)


def test_checkpoint_of_another_arch_names_keys_and_shapes(tmp_ckpt):
    ref = load_reference('official_cls_m0.pth')
    model = EfficientViT('m1')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_backbone_checkpoint(model, tmp_ckpt({'model': ref['model']}))
    msg = str(err.value)
    assert 'patch_embed.0.conv.weight: checkpoint (8, 3, 3, 3) vs model ' \
           '(16, 3, 3, 3)' in msg
    assert 'another arch' in msg
    # nothing was loaded, not even the keys whose shapes happen to match
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_checkpoint_matching_no_key_fails_loudly(tmp_ckpt):
    path = tmp_ckpt({'state_dict': {'layer1.conv.weight': torch.zeros(1)}})
    with pytest.raises(CheckpointMismatchError,
                       match='no EfficientViT weights recognised'):
        load_backbone_checkpoint(EfficientViT('m0'), path)
    path = tmp_ckpt({'meta': {'epoch': 1}}, 'empty.pth')
    with pytest.raises(CheckpointMismatchError, match='no tensors'):
        load_backbone_checkpoint(EfficientViT('m0'), path)


def test_partial_checkpoint_names_missing_keys(tmp_ckpt):
    state = EfficientViT('m0').state_dict()
    del state['stages.2.blocks.2.attn.proj.conv.weight']
    with pytest.raises(CheckpointMismatchError,
                       match=r"missing \['stages.2.blocks.2.attn.proj"):
        load_backbone_checkpoint(EfficientViT('m0'), tmp_ckpt(state))


def test_deploy_model_explains_how_to_load_unfused_weights(tmp_ckpt):
    state = EfficientViT('m0').state_dict()
    with pytest.raises(CheckpointMismatchError, match='switch_to_deploy'):
        load_backbone_checkpoint(
            EfficientViT('m0', deploy=True), tmp_ckpt(state))


class _RunsCode:

    def __reduce__(self):
        import os
        return (os.system, ('echo pwned > /dev/null', ))


def test_pickle_that_runs_code_is_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    with open(path, 'wb') as f:
        pickle.dump({'model': _RunsCode()}, f)
    model = EfficientViT('m0', init_cfg=dict(type='Pretrained',
                                             checkpoint=path))
    with pytest.raises(RuntimeError, match='refusing to load.*could run '
                       'code'):
        model.init_weights()


def test_group_norm_backbone_normalises_and_refuses_to_fold():
    """A backbone built with another norm than BN applies it (it is never
    taken for a folded layer), and deploy mode, which folds BN only, says
    so instead of dropping the norm."""
    from efficientvit_mm.deploy import switch_to_deploy
    from efficientvit_mm.errors import ConfigValueError
    from efficientvit_mm.models.layers import ConvNorm
    layer = ConvNorm(16, 16, norm_cfg=dict(type='GN', num_groups=4)).eval()
    torch.nn.init.normal_(layer.bn.weight)
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        assert not layer.fused
        assert torch.equal(layer(x), layer.bn(layer.conv(x)))
    model = EfficientViT('m0', norm_cfg=dict(type='GN', num_groups=8)).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ConfigValueError, match="norm_cfg=dict\\(type='BN'\\)"):
        switch_to_deploy(model)
