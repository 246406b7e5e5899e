"""The CPU focal loss used for GPU-like memory figures computes exactly what
mmdet's focal loss computes, and leaves mmdet as it was."""
import pytest
import torch
from mmdet.models.losses import FocalLoss

from efficientvit_mm.benchmarking import focal_loss as focal_loss_memory
from efficientvit_mm.benchmarking.focal_loss import (SigmoidFocalLossFunction,
                                                     cuda_like_focal_loss)


def test_function_passes_gradcheck():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 5, dtype=torch.float64, generator=gen,
                         requires_grad=True)
    labels = torch.randint(0, 6, (12, ), generator=gen)
    assert torch.autograd.gradcheck(
        lambda x: SigmoidFocalLossFunction.apply(x, labels, 2.0, 0.25),
        (logits, ))


@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
def test_matches_mmdet_focal_loss_in_value_and_gradient(
        reduction, monkeypatch):
    # several chunks, the last one partial
    monkeypatch.setattr(focal_loss_memory, 'CHUNK_ROWS', 64)
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(300, 80, dtype=torch.float64, generator=gen) * 3
    labels = torch.randint(0, 81, (300, ), generator=gen)
    weight = torch.rand(300, dtype=torch.float64, generator=gen)
    loss_fn = FocalLoss(use_sigmoid=True, gamma=2.0, alpha=0.25,
                        loss_weight=1.0, reduction=reduction)

    def run():
        x = logits.clone().requires_grad_()
        loss = loss_fn(x, labels, weight,
                       avg_factor=37.0 if reduction == 'mean' else None)
        loss.sum().backward()
        return loss.detach(), x.grad

    forward_before = FocalLoss.forward
    expected = run()
    with cuda_like_focal_loss():
        assert FocalLoss.forward is not forward_before
        got = run()
    assert FocalLoss.forward is forward_before
    torch.testing.assert_close(got[0], expected[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-12)


def test_mmdet_is_restored_after_an_error():
    forward_before = FocalLoss.forward
    with pytest.raises(RuntimeError, match='inside'):
        with cuda_like_focal_loss():
            raise RuntimeError('inside')
    assert FocalLoss.forward is forward_before
