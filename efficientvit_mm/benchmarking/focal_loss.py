"""A CPU focal loss with the memory profile of mmcv's CUDA kernel.

On CUDA, mmdet's ``FocalLoss`` calls mmcv's compiled ``sigmoid_focal_loss``:
it keeps only the logits and the label indices for backward and writes one
(N, C) loss and, in backward, one (N, C) gradient. Off CUDA, mmdet falls back
to a pure-PyTorch formula on a one-hot int64 target, which holds about ten
(N, C) intermediates. For RetinaNet at 1333x800 that fallback alone is over
1 GiB and sets the peak of a CPU training step, so CPU memory figures would
describe mmdet's fallback rather than the model.

:class:`SigmoidFocalLossFunction` computes the same values and gradients as
the fallback (tested) in row chunks, storing what the CUDA kernel stores;
:func:`cuda_like_focal_loss` swaps it in for a measurement and restores
mmdet afterwards. It is a benchmarking aid, not a training feature.
"""
import contextlib

import torch
import torch.nn.functional as F

# rows per chunk: bounds the temporaries to a few (CHUNK, C) tensors
CHUNK_ROWS = 1 << 16


def _row_chunks(logits, labels):
    """(rows, logits[rows], one-hot mask of labels[rows]) per chunk."""
    classes = torch.arange(logits.shape[1], device=logits.device)
    for start in range(0, logits.shape[0], CHUNK_ROWS):
        rows = slice(start, start + CHUNK_ROWS)
        yield rows, logits[rows], labels[rows, None] == classes


class SigmoidFocalLossFunction(torch.autograd.Function):
    """Element-wise sigmoid focal loss.

    ``logits`` (N, C) float, ``labels`` (N,) int64 in [0, C] (C is the
    background) -> loss (N, C), unreduced, as mmcv's op with ``'none'``.
    With p = sigmoid(x): positives -alpha (1-p)^g log p, negatives
    -(1-alpha) p^g log(1-p).
    """

    @staticmethod
    def forward(ctx, logits, labels, gamma: float, alpha: float):
        loss = torch.empty_like(logits)
        for rows, x, positive in _row_chunks(logits, labels):
            p = x.sigmoid()
            loss[rows] = torch.where(
                positive, -alpha * (1 - p).pow(gamma) * F.logsigmoid(x),
                -(1 - alpha) * p.pow(gamma) * F.logsigmoid(-x))
        ctx.save_for_backward(logits, labels)
        ctx.gamma, ctx.alpha = gamma, alpha
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        logits, labels = ctx.saved_tensors
        gamma, alpha = ctx.gamma, ctx.alpha
        grad = torch.empty_like(logits)
        for rows, x, positive in _row_chunks(logits, labels):
            p = x.sigmoid()
            # d/dx of the two branches, with dp/dx = p (1 - p)
            grad_pos = -alpha * (1 - p).pow(gamma) * (
                1 - p - gamma * p * F.logsigmoid(x))
            grad_neg = -(1 - alpha) * p.pow(gamma) * (
                gamma * (1 - p) * F.logsigmoid(-x) - p)
            grad[rows] = torch.where(positive, grad_pos,
                                     grad_neg) * grad_loss[rows]
        return grad, None, None, None


def sigmoid_focal_loss(logits, labels, weight=None, gamma=2.0, alpha=0.25,
                       reduction='mean', avg_factor=None):
    """The loss mmdet's ``FocalLoss`` computes from label targets, on
    :class:`SigmoidFocalLossFunction`: element weights (one per row, or
    one per element), then the mean over ``avg_factor`` when given."""
    loss = SigmoidFocalLossFunction.apply(logits.contiguous(),
                                          labels.contiguous(), gamma, alpha)
    if weight is not None:  # (N,) or (N, C) weights -> (N, 1) or (N, C)
        loss = loss * weight.reshape(loss.shape[0], -1)
    if reduction == 'none':
        return loss
    if reduction == 'sum':
        return loss.sum()
    if avg_factor is None:
        return loss.mean()
    return loss.sum() / (avg_factor + torch.finfo(torch.float32).eps)


@contextlib.contextmanager
def cuda_like_focal_loss():
    """Inside the block, mmdet's ``FocalLoss`` on CPU tensors with label
    targets uses :func:`sigmoid_focal_loss` (the CUDA kernel's memory
    profile) instead of the one-hot fallback; mmdet is restored on exit."""
    from mmdet.models.losses.focal_loss import FocalLoss
    original = FocalLoss.forward

    def forward(self, pred, target, weight=None, avg_factor=None,
                reduction_override=None):
        served = (
            self.use_sigmoid and not self.activated and not pred.is_cuda
            and target.dim() == pred.dim() - 1)
        if not served:
            return original(self, pred, target, weight, avg_factor,
                            reduction_override)
        loss = sigmoid_focal_loss(pred, target, weight, self.gamma, self.alpha,
                                  reduction_override or self.reduction,
                                  avg_factor)
        return loss * self.loss_weight

    FocalLoss.forward = forward
    try:
        yield
    finally:
        FocalLoss.forward = original
