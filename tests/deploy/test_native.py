"""Our compiled depthwise-conv kernel (deploy.native) and where the folded
convs use it."""
import logging

import pytest
import torch
import torch.nn.functional as F

from efficientvit_mm.deploy import cpu_conv, native
from efficientvit_mm.models.layers import ConvNorm
from efficientvit_mm.testing import randomise


@pytest.fixture(scope='module', autouse=True)
def kernels():
    # tools/setup_env.sh builds them: here they must load, not be skipped
    assert native.load(build_missing=False), native._state.get('error')


def _dw(channels=32, k=3, stride=1, padding=None):
    layer = randomise(
        ConvNorm(channels, channels, k, stride,
                 k // 2 if padding is None else padding,
                 groups=channels)).eval()
    layer.fuse()
    return layer


def _want(conv, x, relu=False, residual=None):
    out = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding,
                   groups=conv.groups)
    if residual is not None:
        out = out + residual
    return out.relu() if relu else out


KERNELS = [(3, 1, 1), (5, 1, 2), (7, 1, 3), (3, 2, 1), (5, 2, 2), (3, 1, 0),
           (7, 2, 3)]
MAPS = [(1, 1), (4, 4), (7, 7), (14, 14), (9, 13), (2, 17)]


@pytest.mark.parametrize(
    'k,stride,padding,hw',
    [
        (k, s, p, hw) for k, s, p in KERNELS
        for hw in MAPS if min(hw) + 2 * p >= k  # at least one output pixel
    ])
def test_kernel_is_the_conv(k, stride, padding, hw):
    """Every kernel size and stride, on maps smaller than the kernel, equal
    to a window, odd and wide, with and without residual and ReLU: the
    answer of F.conv2d, written channels_last."""
    h, w = hw
    conv = _dw(48, k, stride, padding).conv
    x = torch.randn(3, 48, h, w).contiguous(memory_format=torch.channels_last)
    weight = cpu_conv.depthwise_weight(conv.weight)
    with torch.no_grad():
        for relu in (False, True):
            want = _want(conv, x, relu)
            residual = torch.randn_like(want)
            for res in (None, residual):
                got = native.depthwise_conv2d(x, weight, conv.bias, stride,
                                              padding, res, relu)
                expected = want if res is None else _want(
                    conv, x, relu, residual)
                assert got.shape == expected.shape
                assert got.is_contiguous(memory_format=torch.channels_last)
                assert (got - expected).abs().max() < 1e-5


def test_kernel_reads_channel_slices_in_place():
    """Attention's Q is a channel slice of a wider channels_last map: the
    kernel reads it (and a sliced residual) through its strides."""
    conv = _dw(16, 5).conv
    wide = torch.randn(4, 64, 7,
                       7).contiguous(memory_format=torch.channels_last)
    q, res = wide[:, 16:32], wide[:, 32:48]
    assert not q.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got = native.depthwise_conv2d(q,
                                      cpu_conv.depthwise_weight(conv.weight),
                                      conv.bias, 1, 2, res, True)
        assert (got - _want(conv, q, True, res)).abs().max() < 1e-5


def test_kernel_rejects_what_it_cannot_compute():
    """Misuse is a short error naming the problem, not a wrong answer."""
    conv = _dw(32).conv
    weight = cpu_conv.depthwise_weight(conv.weight)
    x = torch.randn(1, 32, 8, 8).contiguous(memory_format=torch.channels_last)
    cases = [
        (x.contiguous(), weight, 1, 'channels innermost'),
        (x.double(), weight, 1, 'fp32'),
        (x, weight[:, :, :16].contiguous(), 1, 'C = 32'),
        (x, weight, 3, 'strides 1, 2'),
        (x[:, :24], cpu_conv.depthwise_weight(conv.weight[:24]), 1,
         'multiple of 16'),
    ]
    for inp, w, stride, message in cases:
        with pytest.raises(RuntimeError, match=message):
            native.depthwise_conv2d(inp, w, conv.bias[:w.shape[2]], stride, 1)
    with pytest.raises(RuntimeError, match="output's shape"):
        native.depthwise_conv2d(x, weight, conv.bias, 2, 1, x)


def test_runner_uses_the_kernel_where_it_applies(monkeypatch):
    """A folded depthwise conv over a channels_last fp32 map runs our
    kernel; NCHW maps, bf16, channels not a multiple of 16 and dense convs
    keep oneDNN, with the same answers."""
    calls = []
    kernel = native.depthwise_conv2d
    monkeypatch.setattr(native, 'depthwise_conv2d',
                        lambda *a: calls.append(1) or kernel(*a))
    cl = torch.channels_last
    cases = [
        (_dw(32), torch.randn(2, 32, 7, 7).contiguous(memory_format=cl), 1),
        (_dw(32, 5, 2), torch.randn(2, 32, 9,
                                    9).contiguous(memory_format=cl), 1),
        (_dw(32), torch.randn(2, 32, 7, 7), 0),  # NCHW
        (_dw(24), torch.randn(2, 24, 7, 7).contiguous(memory_format=cl), 0),
    ]
    with torch.no_grad():
        for layer, x, used in cases:
            del calls[:]
            residual = torch.randn(_want(layer.conv,
                                         x).shape).contiguous(memory_format=cl)
            got = layer(x, relu=True, residual=residual)
            want = _want(layer.conv, x, True, residual)
            assert (got - want).abs().max() < 1e-5
            assert len(calls) == used, (layer.conv, x.stride())
            if used:  # the rearranged weight is kept, as packed ones are
                assert len(layer.runner.packed) == 1


def test_without_kernels_depthwise_convs_use_onednn(monkeypatch, caplog):
    """A failed build is one warning with its reason, and the model runs
    through oneDNN with the same answer."""
    monkeypatch.setattr(native, '_state', {})
    monkeypatch.setattr(native, '_registered', lambda: False)
    monkeypatch.setattr(native, 'library_path',
                        lambda: native.build_dir() / 'missing.so')

    def no_compiler(verbose=False):
        raise OSError('c++: command not found')

    monkeypatch.setattr(native, 'build', no_compiler)
    layer = _dw(32)
    x = torch.randn(2, 32, 7, 7).contiguous(memory_format=torch.channels_last)
    with caplog.at_level(logging.WARNING, logger=native.__name__):
        with torch.no_grad():
            got = layer(x, residual=x)
            again = layer(x, residual=x)
    assert not native.available()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2  # "building ...", then why it is unavailable
    assert 'c++: command not found' in warnings[1]
    assert "PyTorch's operators" in warnings[1]
    want = _want(layer.conv, x, residual=x)
    assert (got - want).abs().max() < 1e-5 and torch.equal(got, again)


def test_build_folder_follows_torch_and_source(monkeypatch, tmp_path):
    """A cache shared by several torch versions, or an edited source, gets
    a build of its own."""
    monkeypatch.setenv('EVIT_CACHE', str(tmp_path))
    first = native.build_dir()
    assert first.parent == tmp_path / 'kernels'
    monkeypatch.setattr(torch, '__version__', '0.0.0')
    assert native.build_dir() != first


def test_compiled_depthwise_convs_call_the_kernel():
    """Traced for inductor, a folded depthwise conv over a channels_last map
    is a call of our kernel (its residual and ReLU inside); NCHW maps keep
    the conv."""
    layer = _dw(32, 5)
    graphs = []

    def record(gm, inputs):
        graphs.append(gm)
        return gm.forward

    def forward(x):
        return layer(x, relu=True, residual=x)

    for memory_format, calls in ((torch.channels_last, 1),
                                 (torch.contiguous_format, 0)):
        del graphs[:]
        torch._dynamo.reset()
        x = torch.randn(2, 32, 7, 7).contiguous(memory_format=memory_format)
        with torch.inference_mode():
            got = torch.compile(forward, backend=record, fullgraph=True)(x)
            want = _want(layer.conv, x, True, x)
        assert (got - want).abs().max() < 1e-5
        targets = [str(n.target) for g in graphs for n in g.graph.nodes]
        assert sum('depthwise_conv2d' in t for t in targets) == calls


def _attention(q, k, v, bias, scale):
    scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=scale)
    return torch.bmm(scores.softmax(-1), v)


@pytest.mark.parametrize('windows,tokens,key_dim,value_dim', [(5, 49, 16, 16),
                                                              (3, 49, 16, 60),
                                                              (2, 16, 16, 96),
                                                              (4, 1, 16, 32),
                                                              (2, 196, 16, 48),
                                                              (3, 5, 8, 7),
                                                              (1, 20, 3, 17)])
def test_window_attention_is_softmax_attention(windows, tokens, key_dim,
                                               value_dim):
    """Whole windows (49 tokens), single tokens, maps larger than a 7x7
    window, feature sizes that are not multiples of 16, and q, k, v read
    as slices of one (B, L, 2D + E) projection, as the heads do."""
    qkv = torch.randn(windows, tokens, 2 * key_dim + value_dim) * 2
    q, k, v = qkv.split([key_dim, key_dim, value_dim], dim=2)
    bias = torch.randn(tokens, tokens)
    scale = key_dim**-0.5
    got = native.window_attention(q, k, v, bias, scale)
    assert got.shape == (windows, tokens, value_dim) and got.is_contiguous()
    assert (got - _attention(q, k, v, bias, scale)).abs().max() < 1e-5


def test_window_attention_is_stable_for_large_scores():
    """Scores in the hundreds (a softmax without the maximum subtracted
    overflows) give the same answer as PyTorch's, finite."""
    q, k, v = (torch.randn(2, 49, 16) * 30 for _ in range(3))
    bias = torch.randn(49, 49) * 100
    got = native.window_attention(q, k, v, bias, 0.25)
    assert torch.isfinite(got).all()
    assert (got - _attention(q, k, v, bias, 0.25)).abs().max() < 1e-4


def test_window_attention_rejects_mismatched_inputs():
    q = torch.randn(2, 49, 16)
    v = torch.randn(2, 49, 32)
    bias = torch.randn(49, 49)
    with pytest.raises(RuntimeError, match='disagree'):
        native.window_attention(q, q[:, :48], v, bias, 1.)
    with pytest.raises(RuntimeError, match='bias must be'):
        native.window_attention(q, q, v, bias[:48], 1.)
    with pytest.raises(RuntimeError, match='features innermost'):
        native.window_attention(q.transpose(1, 2), q, v, bias, 1.)
    with pytest.raises(RuntimeError, match='fp32'):
        native.window_attention(q.double(), q, v, bias, 1.)


def test_attention_heads_use_the_kernel_at_cpu_inference(monkeypatch):
    """Cascaded group attention over channels_last fp32 maps at inference
    runs each head as one kernel call, with the answer of the baddbmm /
    softmax / bmm path that NCHW maps, autograd and bf16 take."""
    from efficientvit_mm.models.layers import CascadedGroupAttention
    calls = []
    kernel = native.window_attention
    monkeypatch.setattr(native, 'window_attention',
                        lambda *a: calls.append(1) or kernel(*a))
    attn = randomise(CascadedGroupAttention(64, 16, 4, 7, (5, 5, 5, 5)))
    attn.eval()
    x = torch.randn(2, 64, 14, 11)  # windows, padded
    with torch.no_grad():
        want = attn(x)
        assert not calls
        got = attn(x.contiguous(memory_format=torch.channels_last))
    assert len(calls) == 4
    assert (got - want).abs().max() < 1e-5
    del calls[:]
    attn(x.contiguous(memory_format=torch.channels_last))  # with autograd
    assert not calls


def test_a_built_library_is_not_rebuilt(monkeypatch):
    """Another checkout with the same sources finds the library built and
    leaves it alone (a process may have it loaded)."""
    from torch.utils import cpp_extension

    def compile_again(*args, **kwargs):
        raise AssertionError('rebuilt a built library')

    monkeypatch.setattr(cpp_extension, 'load', compile_again)
    assert native.library_path().exists()
    assert native.build() == native.library_path()


def test_reloading_the_loader_keeps_the_kernels(monkeypatch):
    """Reloaded (as autoreload does), the module finds the ops and their
    shape functions registered, and uses them."""
    monkeypatch.setattr(native, '_state', {})
    assert native.load(build_missing=False)
    assert native.loaded()


def test_a_library_is_renamed_into_place(monkeypatch, tmp_path):
    """A build writes in a folder of its own and renames the library into
    place: another process never finds a half-written one."""
    from torch.utils import cpp_extension
    monkeypatch.setattr(native, 'build_dir', lambda: tmp_path / 'k')
    seen = []

    def fake_compile(name, sources, build_directory, **kwargs):
        seen.append(build_directory)
        assert not native.library_path().exists()
        open(f'{build_directory}/{native.NAME}.so', 'w').close()

    monkeypatch.setattr(cpp_extension, 'load', fake_compile)
    assert native.build() == tmp_path / 'k' / f'{native.NAME}.so'
    assert native.library_path().exists()
    assert seen[0] != str(tmp_path / 'k')
    assert sorted(p.name for p in (tmp_path / 'k').iterdir()) == [
        f'{native.NAME}.so'
    ]  # the scratch folder is gone


def test_attention_heads_fall_back_when_projections_are_nchw():
    """A norm that returns NCHW maps (instance norm) leaves the heads'
    q, k, v without channels innermost: they take PyTorch's operators
    instead of failing the kernel's checks."""
    from efficientvit_mm.models.layers import CascadedGroupAttention
    attn = CascadedGroupAttention(32, 16, 2, 7, (5, 5),
                                  norm_cfg=dict(type='IN', affine=True))
    attn.eval()
    x = torch.randn(2, 32, 7, 7)
    with torch.no_grad():
        want = attn(x)
        got = attn(x.contiguous(memory_format=torch.channels_last))
    assert (got - want).abs().max() < 1e-5
