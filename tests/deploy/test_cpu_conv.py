"""How folded convolutions run at CPU inference (deploy.cpu_conv)."""
import copy
import pickle

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from efficientvit_mm.deploy import cpu_conv
from efficientvit_mm.models import EfficientViT
from efficientvit_mm.models.layers import ConvNorm
from efficientvit_mm.testing import randomise

pytestmark = pytest.mark.skipif(not cpu_conv.AVAILABLE,
                                reason='this torch has no oneDNN operators')


def _folded(cin=16, cout=32, k=3, groups=1):
    layer = randomise(ConvNorm(cin, cout, k, 1, k // 2, groups=groups)).eval()
    layer.fuse()
    return layer


def _expected(layer, x, relu, residual):
    conv = layer.conv
    out = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding,
                   groups=conv.groups)
    if residual is not None:
        out = out + residual
    return out.relu() if relu else out


@pytest.mark.parametrize('memory_format',
                         [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize('kind',
                         ['depthwise', 'pointwise_small', 'pointwise_large'])
def test_runner_computes_conv_relu_and_residual(memory_format, kind,
                                                monkeypatch):
    """Every kernel the runner picks (oneDNN conv; a 1x1 conv as a BLAS
    addmm or as a oneDNN linear) computes relu?(conv(x) + residual?);
    channels_last maps stay channels_last."""
    if kind == 'pointwise_large':  # every product counts as large
        monkeypatch.setattr(cpu_conv, 'SMALL_PRODUCT', 0)
    layer = (
        _folded(16, 16, 3, groups=16) if kind == 'depthwise' else _folded(
            16, 16, 1))
    x = torch.randn(2, 16, 9, 11).contiguous(memory_format=memory_format)
    with torch.no_grad():
        assert cpu_conv.runner_applies(x)
        for relu in (False, True):
            for residual in (None, torch.randn_like(x)):
                got = layer(x, relu=relu, residual=residual)
                want = _expected(layer, x, relu, residual)
                assert (got - want).abs().max() < 1e-5
                if memory_format == torch.channels_last:
                    assert got.is_contiguous(memory_format=memory_format)


@pytest.mark.parametrize('small', [True, False])
def test_pointwise_conv_reads_channel_slices_of_a_map_in_place(
        small, monkeypatch):
    """Attention heads feed their 1x1 convs channel slices of a
    channels_last map: the conv reads them as strided rows (no copy) and
    writes a channels_last map."""
    monkeypatch.setattr(cpu_conv, 'SMALL_PRODUCT', 2**40 if small else 0)
    layer = _folded(8, 24, 1)
    x = torch.randn(2, 32, 7, 5).contiguous(memory_format=torch.channels_last)
    part = x[:, 8:16]
    assert not part.is_contiguous(memory_format=torch.channels_last)
    rows = cpu_conv._rows(part)
    assert rows is not None and rows.data_ptr() == part.data_ptr()
    with torch.no_grad():
        got = layer(part, relu=True)
        want = _expected(layer, part.contiguous(), True, None)
    assert (got - want).abs().max() < 1e-5
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert cpu_conv._rows(torch.randn(2, 8, 3, 3)) is None  # NCHW


@pytest.mark.parametrize('memory_format,as_linear',
                         [(torch.channels_last, True),
                          (torch.contiguous_format, False)])
def test_compiled_pointwise_convs_become_matrix_products(
        memory_format, as_linear):
    """Traced for inductor, a folded 1x1 conv over a channels_last map is
    a linear (with its add and ReLU), computing the conv's answer; an
    NCHW map and a 3x3 conv keep the conv."""
    pointwise, spatial = _folded(16, 16, 1), _folded(16, 16, 3)
    graphs = []

    def record(gm, inputs):
        graphs.append(gm)
        return gm.forward

    def forward(x):
        return spatial(pointwise(x, relu=True, residual=x))

    x = torch.randn(2, 16, 7, 9).contiguous(memory_format=memory_format)
    with torch.inference_mode():
        got = torch.compile(forward, backend=record, fullgraph=True)(x)
        plain = F.conv2d(x, pointwise.conv.weight, pointwise.conv.bias)
        want = F.conv2d((plain + x).relu(), spatial.conv.weight,
                        spatial.conv.bias, padding=1)
    assert torch.allclose(got, want, atol=1e-5)
    targets = [str(n.target) for g in graphs for n in g.graph.nodes]
    assert sum('linear' in t for t in targets) == int(as_linear)
    assert sum('conv2d' in t for t in targets) == 2 - int(as_linear)


@pytest.mark.parametrize('k', [3, 1])
def test_weights_are_packed_once_per_shape_and_repacked_after_edits(
        k, monkeypatch):
    monkeypatch.setattr(cpu_conv, 'SMALL_PRODUCT', 0)  # 1x1: oneDNN linear
    layer = _folded(16, 32, k)
    x = torch.randn(2, 16, 8, 8).contiguous(memory_format=torch.channels_last)
    packed = layer.runner.packed
    with torch.no_grad():
        layer(x)
        layer(x)
        assert len(packed) == 1
        layer(
            torch.randn(2, 16, 10,
                        8).contiguous(memory_format=torch.channels_last))
        assert len(packed) == 2
        layer.conv.weight.mul_(2)  # in-place edit: new version, new packing
        out = layer(x)
        assert len(packed) == 3
    assert (out - _expected(layer, x, False, None)).abs().max() < 1e-5
    for shape in range(6):  # the cache keeps a few shapes only
        with torch.no_grad():
            layer(torch.randn(1, 16, 8 + shape, 8))
    assert len(packed) <= cpu_conv.MAX_PACKED_SHAPES


def test_inference_tensor_weights_run_unpacked(monkeypatch):
    """A folded model copied under inference_mode has weights without a
    version counter: the runner packs nothing and still computes the
    conv."""
    layer = _folded(16, 32, 1)
    x = torch.randn(2, 16, 8, 8).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        twin = copy.deepcopy(layer)
        twin.conv.weight = nn.Parameter(layer.conv.weight.clone())
        assert twin.conv.weight.is_inference()
        want = _expected(layer, x, True, None)
        for small in (2**40, 0):
            monkeypatch.setattr(cpu_conv, 'SMALL_PRODUCT', small)
            assert (twin(x, relu=True) - want).abs().max() < 1e-5
    assert not twin.runner.packed


def test_autograd_and_tracing_take_the_plain_path():
    layer = _folded()
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    out = layer(x, relu=True)
    out.sum().backward()  # the oneDNN operator has no backward
    assert x.grad is not None and layer.conv.weight.grad is not None

    class Wrapper(nn.Module):

        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, t):
            return self.layer(t, relu=True)

    with torch.no_grad():
        traced = torch.jit.trace(Wrapper(), x.detach())
    graph = str(traced.inlined_graph)
    assert 'aten::relu_' in graph and 'mkldnn' not in graph


def test_deploy_model_with_packed_weights_copies_and_matches():
    model = randomise(EfficientViT('m0', window_size=(7, 7, 4))).eval()
    x = torch.randn(2, 3, 224,
                    224).contiguous(memory_format=torch.channels_last)
    fused = copy.deepcopy(model)
    fused.switch_to_deploy()
    fused.to(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = model(x)
        first = fused(x)  # packs every weight
        twin = copy.deepcopy(fused)  # packed weights are not copied
        assert all(not m.runner.packed for m in twin.modules()
                   if isinstance(m, ConvNorm))
        second = twin(x)
        third = pickle.loads(pickle.dumps(fused))(x)  # nor pickled
    for e, a, b, c in zip(expected, first, second, third):
        assert (e - a).abs().max() <= 1e-4
        assert torch.equal(a, b) and torch.equal(a, c)


def test_runner_exists_only_once_folded():
    """An unfolded layer computes relu(bn(conv(x)) + residual) with plain
    ops and carries no runner; folding adds one, and so does a first call
    after mmcv's fuse_conv_bn."""
    layer = randomise(ConvNorm(4, 4)).eval()
    x = torch.randn(1, 4, 2, 2)
    assert layer.runner is None and not layer.fused
    with torch.no_grad():
        expected = (layer.bn(layer.conv(x)) + x).relu()
        assert torch.allclose(layer(x, relu=True, residual=x), expected)
        layer.fuse()
        assert layer.runner is not None and layer.fused
        assert torch.allclose(
            layer(x, relu=True, residual=x), expected, atol=1e-5)
    built_folded = ConvNorm(4, 4, deploy=True)
    assert built_folded.fused and built_folded.runner is not None
    from mmcv.cnn import fuse_conv_bn
    unfolded = randomise(ConvNorm(4, 4)).eval()
    with torch.no_grad():
        want = (unfolded.bn(unfolded.conv(x)) + x).relu()
        by_mmcv = fuse_conv_bn(copy.deepcopy(unfolded))
        assert by_mmcv.fused and by_mmcv.runner is None
        assert torch.allclose(
            by_mmcv(x, relu=True, residual=x), want, atol=1e-5)
    assert by_mmcv.runner is not None


def test_deploy_stem_runs_large_batches_in_groups(monkeypatch):
    """On the CPU the folded stem takes a batch a few images at a time (its
    first maps then stay in cache): uneven groups, same maps, same layout."""
    model = randomise(EfficientViT('m0')).eval()
    stem = copy.deepcopy(model.patch_embed)
    for i in range(0, len(stem), 2):
        stem[i].fuse()
    x = torch.randn(5, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    # 8 x 32 x 32 first-map elements per image: groups of 2, 2 and 1
    monkeypatch.setattr(cpu_conv, 'GROUP_ELEMENTS', 8 * 32 * 32 * 2)
    calls = []
    monkeypatch.setattr(
        stem, '_convs',
        lambda part: calls.append(part.shape[0]) or type(stem)._convs(
            stem, part))
    with torch.no_grad():
        grouped = stem(x)
        whole = type(stem)._convs(stem, x)
        expected = model.patch_embed(x)
    assert calls == [2, 2, 1]
    assert torch.equal(grouped, whole)
    assert (grouped - expected).abs().max() <= 1e-4
    assert grouped.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():  # one image, or a small batch: one group
        calls.clear()
        stem(x[:1])
    assert calls == [1]
    calls.clear()
    stem(x)  # with autograd (training a folded model): one group
    assert calls == [5]


def test_folded_mask_rcnn_predicts_what_eager_does():
    """Folded convs run channels_last inside the backbone; mmcv's CPU
    roi_align reads NCHW memory whatever the strides, so the RoI features
    (and every detection) of a folded Mask R-CNN were wrong until the
    backbone returned NCHW maps for NCHW input."""
    from efficientvit_mm.apis import data_samples
    from efficientvit_mm.deploy.switch import switch_to_deploy
    from helpers.deploy import TINY_MASK_RCNN, config, random_model
    cfg = config('mask_rcnn_efficientvit_m4_coco.py', TINY_MASK_RCNN)
    eager = random_model(cfg, spread_rcnn_scores=True)
    folded = switch_to_deploy(copy.deepcopy(eager))
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want, got = (
            m.predict(x, data_samples('detection', (64, 96)),
                      rescale=False)[0].pred_instances
            for m in (eager, folded))
    assert len(want) == len(got) > 0
    assert torch.equal(want.labels, got.labels)
    assert (want.bboxes - got.bboxes).abs().max() < 1e-2
    assert (want.scores - got.scores).abs().max() < 1e-4
