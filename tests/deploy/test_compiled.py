"""compile_for_inference: torch.compile with inductor's freezing on the
CPU (weights become constants of the graph, pre-packed for oneDNN)."""
import pytest
import torch

from efficientvit_mm.deploy.compiled import compile_for_inference


def test_cpu_compile_freezes_the_weights():
    """Frozen weights are part of the compiled graph: editing the module's
    weight afterwards does not change the compiled answer (it would
    without freezing), and the answer is the module's."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1),
                                torch.nn.ReLU()).eval()
    x = torch.randn(2, 8, 5, 5)
    compiled = compile_for_inference(model, 'cpu')
    with torch.inference_mode():
        expected = model(x)
        first = compiled(x)
        with torch.no_grad():
            model[0].weight.mul_(2)
        again = compiled(x)
    assert torch.allclose(first, expected, atol=1e-5)
    assert torch.equal(again, first)
    assert not torch.allclose(model(x), first)


def test_past_the_recompile_limit_is_an_error_not_eager(monkeypatch):
    """Each model instance compiles its own frozen graph; past dynamo's
    limit on those, a call fails instead of running eagerly unnoticed
    (the limit is lowered to 1 here: the second instance passes it)."""
    from efficientvit_mm.deploy import compiled
    monkeypatch.setitem(compiled.DYNAMO_OPTIONS, 'recompile_limit', 1)

    class Conv(torch.nn.Conv2d):  # a forward no other test compiles

        def forward(self, x):
            return super().forward(x)

    x = torch.randn(2, 8, 5, 5)
    with torch.inference_mode():
        for i in range(2):
            model = Conv(8, 16, 1).eval()
            fn = compiled.CompiledForInference(model, dict(freezing=True))
            if i == 0:
                assert torch.allclose(fn(x), model(x), atol=1e-5)
            else:
                with pytest.raises(Exception, match='recompile_limit'):
                    fn(x)


def test_cpu_compile_runs_our_depthwise_kernel():
    """Through inductor (frozen weights, C++ wrapper) a folded depthwise
    conv calls our kernel and gives the conv's answer."""
    from efficientvit_mm.deploy import native
    from efficientvit_mm.models.layers import ConvNorm
    from efficientvit_mm.testing import randomise
    assert native.load(build_missing=False), native._state.get('error')
    layer = randomise(ConvNorm(32, 32, 3, 1, 1, groups=32)).eval()
    layer.fuse()
    x = torch.randn(2, 32, 7, 7).contiguous(memory_format=torch.channels_last)
    compiled = compile_for_inference(layer, 'cpu')
    with torch.inference_mode():
        want = torch.nn.functional.conv2d(x, layer.conv.weight,
                                          layer.conv.bias, padding=1,
                                          groups=32)
        got, (code, ) = torch._inductor.utils.run_and_get_code(compiled, x)
    assert torch.allclose(got, want, atol=1e-5)
    assert 'depthwise_conv2d' in code
