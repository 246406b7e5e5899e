"""Official COCO / classification checkpoints -> our models, key for key."""
import os.path as osp
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from efficientvit_mm.checkpoint import (CheckpointMismatchError,
                                        check_against_model,
                                        convert_checkpoint,
                                        load_backbone_checkpoint)
from efficientvit_mm.models.backbones import EfficientViT
from helpers import ROOT, load_tool, run_tool
from helpers.det import (mmdet2_checkpoint, official_backbone_state,
                         official_mask_rcnn_heads_state, official_neck_state,
                         official_retinanet_head_state)

M4_CHANNELS = [128, 256, 384]


def build_detector(config, **backbone):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.update(backbone)
    model = MODELS.build(cfg.model)
    model.eval()
    return model


def official_detector(heads: dict, num_trans: int, extra_convs: int, arch: str,
                      channels):
    """Backbone, neck and ``heads`` weights under the official names."""
    state = OrderedDict(
        ('backbone.' + k, v) for k, v in official_backbone_state(arch).items())
    state.update(official_neck_state(channels, 256, num_trans, extra_convs))
    state.update(heads)
    return state


def official_retinanet(arch='m4', channels=M4_CHANNELS):
    return official_detector(official_retinanet_head_state(), 1, 1, arch,
                             channels)


def official_mask_rcnn(arch='m4', channels=M4_CHANNELS):
    return official_detector(official_mask_rcnn_heads_state(), 2, 0, arch,
                             channels)


@pytest.mark.parametrize('config,make', [
    ('retinanet_efficientvit_m4_coco.py', official_retinanet),
    ('mask_rcnn_efficientvit_m4_coco.py', official_mask_rcnn),
])
def test_official_coco_checkpoint_loads_strictly(config, make, tmp_path):
    official = make()
    src = str(tmp_path / 'official.pth')
    torch.save(mmdet2_checkpoint(official, classes=['person'] * 80), src)
    dst = str(tmp_path / 'ours.pth')
    proc = run_tool([
        'tools/convert_checkpoint.py', src, dst, '--config',
        f'configs/{config}'
    ])
    assert 'checked against' in proc.stdout
    converted = torch.load(dst, weights_only=True)
    assert converted['meta']['kind'] == 'detector'
    assert converted['meta']['dataset_meta']['classes'][0] == 'person'

    model = build_detector(config)
    result = model.load_state_dict(converted['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # neck and heads are taken over tensor for tensor
    ours = model.state_dict()
    for key, value in official.items():
        if not key.startswith('backbone.'):
            assert torch.equal(ours[key], value), key
    # every official backbone tensor but the index buffers is used
    n_official = sum(
        1 for k in official
        if k.startswith('backbone.') and not k.endswith('attention_bias_idxs'))
    n_ours = sum(1 for k in converted['state_dict']
                 if k.startswith('backbone.'))
    assert n_official == n_ours


def test_converted_backbone_computes_like_backbone_loader(tmp_path):
    """The converted detector's backbone gives the same features as the
    backbone loaded from the official file through its own loader."""
    official = official_retinanet()
    src = str(tmp_path / 'official.pth')
    torch.save(mmdet2_checkpoint(official), src)
    converted = convert_checkpoint(torch.load(src, weights_only=True), src)

    model = build_detector('retinanet_efficientvit_m4_coco.py')
    model.load_state_dict(converted['state_dict'], strict=True)
    reference = EfficientViT('m4', window_size=7).eval()
    assert load_backbone_checkpoint(reference, src) == 'official'

    x = torch.randn(1, 3, 130, 197)
    with torch.no_grad():
        ours = model.backbone(x)
        ref = reference(x)
        feats = model.extract_feat(x)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [f.shape[1] for f in feats] == [256] * 5


def test_reference_features_through_detector_conversion(tmp_path):
    """A backbone saved by the official downstream code (M0, 320x480,
    reference features in tests/data), wrapped as an mmdet 2.x RetinaNet
    file, converts to a RetinaNet-M0 whose backbone reproduces the official
    features."""
    from helpers import load_reference
    ref = load_reference('official_downstream_m0_320x480.pth')
    # the downstream backbone has no classifier: its head.* keys stay out;
    # the official code resized the ImageNet bias tables to its 7x7 windows
    # (bicubic) before training, so its detector files hold 7x7 tables
    state = OrderedDict()
    for key, value in ref['model'].items():
        if key.startswith('head.'):
            continue
        if key.endswith('attention_biases') and value.shape[1] != 49:
            side = int(value.shape[1]**0.5)
            value = F.interpolate(
                value.view(1, -1, side, side), size=(7, 7),
                mode='bicubic').view(value.shape[0], 49)
        state['backbone.' + key] = value
    state.update(official_neck_state([64, 128, 192], 256, 1, 1))
    state.update(official_retinanet_head_state())
    converted = convert_checkpoint(mmdet2_checkpoint(state))
    model = build_detector('retinanet_efficientvit_m0_coco.py')
    model.load_state_dict(converted['state_dict'], strict=True)
    with torch.no_grad():
        feats = model.backbone(ref['input'])
    for ours, theirs in zip(feats, ref['features']):
        torch.testing.assert_close(ours, theirs.float(), rtol=1e-4, atol=1e-4)


def test_classifier_checkpoint_to_backbone_and_head(tmp_path):
    from helpers import load_reference
    convert_tool = load_tool('convert_checkpoint')
    for name in ('official_cls_m0.pth', 'timm_cls_m0.pth'):
        ref = load_reference(name)
        src = str(tmp_path / name)
        torch.save(
            {
                k: v
                for k, v in ref.items() if k in ('model', 'state_dict')
            }, src)
        dst = str(tmp_path / ('converted_' + name))
        assert convert_tool.main([src, dst]) == 0
        out = torch.load(dst, weights_only=True)
        sd = out['state_dict']
        assert out['meta']['kind'] == 'classifier'
        assert all(k.startswith(('backbone.', 'head.')) for k in sd)
        for key in ('head.classifier.bn.weight', 'head.classifier.fc.weight',
                    'head.classifier.fc.bias'):
            assert key in sd, (name, key)
        assert sd['head.classifier.fc.weight'].shape == (1000, 192)
        backbone = EfficientViT('m0', window_size=(7, 7, 4)).eval()
        backbone.load_state_dict(
            {
                k[len('backbone.'):]: v
                for k, v in sd.items() if k.startswith('backbone.')
            }, strict=True)
        with torch.no_grad():
            feats = backbone(ref['input'])
        torch.testing.assert_close(feats[-1], ref['features'][-1].float(),
                                   rtol=1e-4, atol=1e-4)


def test_distilled_classifier_keeps_both_heads():
    from helpers import load_reference
    state = dict(load_reference('official_cls_m0.pth')['model'])
    for key in list(state):
        if key.startswith('head.'):
            state['head_dist.' + key[len('head.'):]] = state[key] * 2
    out = convert_checkpoint({'model': state})['state_dict']
    torch.testing.assert_close(out['head.dist_classifier.fc.weight'],
                               2 * out['head.classifier.fc.weight'])
    assert 'head.dist_classifier.bn.running_var' in out


def test_mismatched_config_is_named(tmp_path):
    """An M4 checkpoint checked against the M0 config fails and says so."""
    src = str(tmp_path / 'official.pth')
    torch.save(mmdet2_checkpoint(official_retinanet()), src)
    proc = run_tool([
        'tools/convert_checkpoint.py', src,
        str(tmp_path / 'x.pth'), '--config',
        'configs/retinanet_efficientvit_m0_coco.py'
    ], check=False)
    assert proc.returncode == 1
    assert 'shape mismatches' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'x.pth').exists()


def test_check_against_model_lists_missing_and_unexpected():
    model = build_detector('retinanet_efficientvit_m0_coco.py')
    state = dict(model.state_dict())
    state.pop('bbox_head.retina_cls.weight')
    state['neck.fpn_convs.9.conv.weight'] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as err:
        check_against_model(state, model)
    assert 'bbox_head.retina_cls.weight' in str(err.value)
    assert 'neck.fpn_convs.9.conv.weight' in str(err.value)


def official_fpn_forward(sd, inputs, num_trans, extra_on_input):
    """The forward of the official EfficientViTFPN (downstream/
    efficientvit_fpn.py, norm-free, act-free), written with functional ops
    on its state dict."""

    def conv(name, x, **kw):
        return F.conv2d(x, sd[f'neck.{name}.conv.weight'],
                        sd[f'neck.{name}.conv.bias'], **kw)

    laterals = [conv(f'lateral_convs.{i}', x) for i, x in enumerate(inputs)]
    for i in range(len(laterals) - 1, 0, -1):
        laterals[i - 1] = laterals[i - 1] + F.interpolate(
            laterals[i], size=laterals[i - 1].shape[2:], mode='nearest')
    extra_laterals, prev = [], laterals[0]
    for j in range(num_trans):
        prev = F.conv_transpose2d(
            prev, sd[f'neck.extra_trans_convs.{j}.conv.weight'],
            sd[f'neck.extra_trans_convs.{j}.conv.bias'], stride=2)
        extra_laterals.insert(0, prev)
    outs = [
        conv(f'fpn_convs.{i}', x, padding=1) for i, x in enumerate(laterals)
    ]
    if extra_on_input:
        outs.append(
            conv(f'fpn_convs.{len(laterals)}', inputs[-1], stride=2,
                 padding=1))
    extra_outs = [
        conv(f'extra_fpn_convs.{j}', x, padding=1)
        for j, x in enumerate(extra_laterals)
    ]
    return extra_outs + outs


@pytest.mark.parametrize('config,make,num_trans,on_input', [
    ('retinanet_efficientvit_m4_coco.py', official_retinanet, 1, True),
    ('mask_rcnn_efficientvit_m4_coco.py', official_mask_rcnn, 2, False),
])
def test_converted_neck_computes_the_official_fpn(config, make, num_trans,
                                                  on_input):
    official = make()
    converted = convert_checkpoint(mmdet2_checkpoint(official))
    model = build_detector(config)
    model.load_state_dict(converted['state_dict'], strict=True)
    gen = torch.Generator().manual_seed(0)
    inputs = [
        torch.randn(1, c, h, w, generator=gen)
        for c, (h, w) in zip(M4_CHANNELS, [(13, 19), (7, 10), (4, 5)])
    ]
    with torch.no_grad():
        ours = model.neck(inputs)
        theirs = official_fpn_forward(official, inputs, num_trans, on_input)
    assert len(ours) == len(theirs) == 5
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
