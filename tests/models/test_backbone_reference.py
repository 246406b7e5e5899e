"""The backbone reproduces the official and timm reference tensors."""
import pytest
import torch

from efficientvit_mm.checkpoint import load_backbone_checkpoint
from efficientvit_mm.models import EfficientViT
from helpers import load_reference

TOL = 1e-4


def _features(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize('ref_name,container', [
    ('official_cls_m0.pth', lambda sd: {
        'model': sd
    }),
    ('timm_cls_m0.pth', lambda sd: sd),
])
def test_classification_semantics_at_224(ref_name, container, tmp_ckpt):
    """(7, 7, 4) windows at 224 is the official ImageNet backbone."""
    ref = load_reference(ref_name)
    state = ref.get('model', ref.get('state_dict'))
    path = tmp_ckpt(container(state))
    model = EfficientViT('m0', window_size=(7, 7, 4),
                         init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    feats = _features(model, ref['input'])
    assert len(feats) == 3
    for ours, theirs in zip(feats, ref['features']):
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max().item() <= TOL


def test_timm_layout_gives_the_same_weights_as_official(tmp_ckpt):
    official = EfficientViT('m0', window_size=(7, 7, 4))
    timm = EfficientViT('m0', window_size=(7, 7, 4))
    assert load_backbone_checkpoint(
        official,
        tmp_ckpt({'model': load_reference('official_cls_m0.pth')['model']},
                 'a.pth')) == 'official'
    assert load_backbone_checkpoint(
        timm,
        tmp_ckpt(load_reference('timm_cls_m0.pth')['state_dict'],
                 'b.pth')) == 'timm'
    for (k1, v1), (k2, v2) in zip(official.state_dict().items(),
                                  timm.state_dict().items()):
        assert k1 == k2
        assert torch.equal(v1, v2), k1


def test_downstream_semantics_at_320x480(tmp_ckpt):
    """7x7 windows everywhere; stage-3 biases resized 4x4 -> 7x7 (bicubic)."""
    ref = load_reference('official_downstream_m0_320x480.pth')
    path = tmp_ckpt({'model': ref['model']})
    model = EfficientViT('m0', window_size=7,
                         init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    biases = model.stages[2].blocks[0].attn.attention_biases
    assert biases.shape == (4, 49)
    feats = _features(model, ref['input'])
    shapes = [(1, 64, 20, 30), (1, 128, 10, 15), (1, 192, 5, 8)]
    for ours, theirs, shape in zip(feats, ref['features'], shapes):
        assert ours.shape == shape
        assert (ours - theirs).abs().max().item() <= TOL


def test_downstream_semantics_from_timm_layout(tmp_ckpt):
    """The timm file holds the same ImageNet weights: same downstream maps."""
    ref = load_reference('official_downstream_m0_320x480.pth')
    timm = load_reference('timm_cls_m0.pth')
    model = EfficientViT(
        'm0', window_size=7,
        init_cfg=dict(type='Pretrained',
                      checkpoint=tmp_ckpt(timm['state_dict'])))
    model.init_weights()
    for ours, theirs in zip(_features(model, ref['input']), ref['features']):
        assert (ours - theirs).abs().max().item() <= TOL


def test_mm_checkpoint_with_backbone_prefix_and_own_layout(tmp_ckpt):
    ref = load_reference('official_cls_m0.pth')
    source = EfficientViT('m0', window_size=(7, 7, 4))
    load_backbone_checkpoint(source, tmp_ckpt({'model': ref['model']},
                                              'o.pth'))
    # An mmdet-style checkpoint: backbone weights under 'backbone.', plus a
    # neck that must be ignored.
    state = {'backbone.' + k: v for k, v in source.state_dict().items()}
    state['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)
    path = tmp_ckpt({'state_dict': state, 'meta': {'epoch': 3}}, 'mm.pth')
    model = EfficientViT('m0', window_size=(7, 7, 4))
    assert load_backbone_checkpoint(model, path) == 'efficientvit_mm'
    # and our own layout without a prefix
    own = EfficientViT('m0', window_size=(7, 7, 4))
    load_backbone_checkpoint(own, tmp_ckpt(source.state_dict(), 'own.pth'))
    for out_a, out_b in zip(
            _features(model, ref['input']), _features(own, ref['input'])):
        assert torch.equal(out_a, out_b)
    for ours, theirs in zip(_features(model, ref['input']), ref['features']):
        assert (ours - theirs).abs().max().item() <= TOL
