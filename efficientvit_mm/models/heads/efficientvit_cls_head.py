"""The EfficientViT ImageNet classifier head for mmpretrain."""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.registry import MODELS
from mmpretrain.models.heads import ClsHead

from ...errors import ConfigValueError
from ..layers import NormLinear


@MODELS.register_module()
class EfficientViTClsHead(ClsHead):
    """BatchNorm1d, optional dropout, then Linear, on pooled features.

    With ``distillation=True`` a second, identical classifier is built (the
    released distilled models); in eval the two logits are averaged, as the
    official model does. This package trains no teacher, so training that
    second classifier raises an error: train with ``distillation=False``.

    ``switch_to_deploy()`` folds each BatchNorm into its Linear.

    Shapes: feats tuple whose last item is (N, C) -> logits (N, num_classes).

    Args:
        num_classes: number of categories.
        in_channels: C, the backbone's last width.
        dropout: dropout rate before the Linear (training only).
        distillation: build the distillation classifier.
        init_std: std of the truncated-normal Linear init.
        deploy: build the BN-folded structure directly.
    """

    def __init__(self, num_classes: int, in_channels: int, dropout: float = 0.,
                 distillation: bool = False, init_std: float = 0.02,
                 deploy: bool = False,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 topk: Sequence[int] = (1, ), cal_acc: bool = False,
                 init_cfg: Optional[dict] = None):
        if isinstance(loss, dict) and '_scope_' not in loss:
            # mmpretrain's loss names, whatever toolbox's scope is current
            # (the head is registered in mmengine's root registry too)
            loss = dict(loss, _scope_='mmpretrain')
        super().__init__(loss=loss, topk=topk, cal_acc=cal_acc,
                         init_cfg=init_cfg)
        if num_classes <= 0:
            raise ConfigValueError(f'num_classes must be positive, got '
                                   f'{num_classes}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.distillation = distillation
        self.classifier = NormLinear(in_channels, num_classes, dropout,
                                     init_std, deploy)
        self.dist_classifier = NormLinear(in_channels, num_classes, dropout,
                                          init_std,
                                          deploy) if distillation else None

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """The last item of the neck's output: (N, C)."""
        feat = feats[-1]
        if feat.dim() != 2:
            raise ConfigValueError(
                f'EfficientViTClsHead expects pooled (N, C) features, got '
                f'{tuple(feat.shape)}: add neck=dict(type='
                f"'GlobalAveragePooling')")
        return feat

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        x = self.pre_logits(feats)
        logits = self.classifier(x)
        if self.dist_classifier is None:
            return logits
        if self.training:
            raise RuntimeError(
                'EfficientViTClsHead(distillation=True) averages the released '
                'distillation classifier at inference; training it needs a '
                'teacher, which efficientvit_mm does not provide. Train with '
                'distillation=False.')
        return (logits + self.dist_classifier(x)) / 2

    def switch_to_deploy(self) -> None:
        """Fold the BatchNorm of each classifier into its Linear."""
        for classifier in (self.classifier, self.dist_classifier):
            if classifier is not None:
                classifier.fuse()
