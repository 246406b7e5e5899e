"""Building the model of a config, and running it on a plain image tensor."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ..checkpoint import load_model_weights
from ..runtime.config import task_of

# input size a task is measured at when none is given (H, W)
DEFAULT_SHAPES = {
    'classification': (224, 224),
    'detection': (800, 1333),
    'segmentation': (512, 512),
}


def model_config(cfg: Config) -> dict:
    """``cfg.model`` with the config's top-level ``data_preprocessor``
    merged in, as mmengine's Runner builds it (mmpretrain configs keep the
    normalisation there)."""
    model = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model.setdefault('data_preprocessor', cfg.data_preprocessor)
    return model


def build_model(cfg: Config, checkpoint: Optional[str] = None) -> nn.Module:
    """Build ``cfg.model`` from the registry of the config's scope; with
    ``checkpoint``, load a whole-model checkpoint of this package into it
    (every key must fit, see :func:`load_model_weights`)."""
    from mmengine.registry import MODELS

    import efficientvit_mm  # noqa: F401  (registers the modules)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(model_config(cfg))
    if checkpoint is not None:
        load_model_weights(model, checkpoint)
    return model


def build_preprocessor(cfg: Config) -> nn.Module:
    """The data preprocessor of the model of ``cfg`` alone (normalisation,
    channel order, padding), without building the model."""
    from mmengine.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    preprocessor = dict(model_config(cfg).get('data_preprocessor') or {})
    if task_of(cfg) == 'classification':  # what ImageClassifier defaults to
        preprocessor.setdefault('type', 'ClsDataPreprocessor')
    return MODELS.build(preprocessor)


def data_samples(task: str, shape: Sequence[int]):
    """One data sample with the meta information test-mode forwards read
    (None for classification, whose tensor forward needs none)."""
    h, w = shape
    meta = dict(
        img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
        batch_input_shape=(h, w), scale_factor=(1., 1.))
    if task == 'detection':
        from mmdet.structures import DetDataSample
        sample = DetDataSample()
    elif task == 'segmentation':
        from mmseg.structures import SegDataSample
        sample = SegDataSample()
    else:
        return None
    sample.set_metainfo(meta)
    return [sample]


class TensorForward(nn.Module):
    """``model(x, samples, mode='tensor')`` as a plain module: image tensor
    (N, 3, H, W) in, the raw head outputs out, no data preprocessor and no
    post-processing (for timing, tracing and analysis)."""

    def __init__(self, model: nn.Module, samples=None):
        super().__init__()
        self.model = model
        self.samples = samples

    def forward(self, x: torch.Tensor):
        return self.model(x, self.samples, mode='tensor')


def tensor_model(cfg: Config, shape: Sequence[int],
                 checkpoint: Optional[str] = None) -> TensorForward:
    """The model of ``cfg`` (weights from ``checkpoint`` if given) as a
    :class:`TensorForward` for ``shape`` inputs, in eval mode."""
    model = build_model(cfg, checkpoint)
    return TensorForward(model, data_samples(task_of(cfg), shape)).eval()
