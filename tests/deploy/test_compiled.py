"""compile_for_inference: torch.compile with inductor's freezing on the
CPU (weights become constants of the graph, pre-packed for oneDNN)."""
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
