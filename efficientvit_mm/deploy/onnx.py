"""ONNX export of deploy models, checked against PyTorch with onnxruntime.

* classification configs export the whole classifier (logits), dynamic
  batch;
* detection and segmentation configs export the backbone (its three stage
  maps), dynamic batch, height and width.

Dynamic shapes: a stage map no larger than one attention window is attended
whole in PyTorch, which the traced graph does not reproduce; the exported
backbone is exact whenever the stage-3 map exceeds the window in height or
width (inputs above 448 px on one side with 7x7 windows), as detection and
segmentation inputs do. Export at the size you deploy.
"""
import warnings
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..errors import UserError
from .switch import switch_to_deploy

TOLERANCE = 1e-4


class ClassifierLogits(nn.Module):
    """Image tensor -> logits, without the data preprocessor."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(x, mode='tensor')


def exportable(model: nn.Module,
               task: str) -> Tuple[nn.Module, List[str], Dict[str, dict]]:
    """(module, output names, dynamic axes) of a built model for its task;
    the module is folded (deploy mode) and in eval mode."""
    switch_to_deploy(model)
    if task == 'classification':
        axes = {'input': {0: 'batch'}, 'logits': {0: 'batch'}}
        return ClassifierLogits(model).eval(), ['logits'], axes
    names = [f'stage{i}' for i in model.backbone.out_indices]
    axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
    axes.update({n: {0: 'batch', 2: f'{n}_h', 3: f'{n}_w'} for n in names})
    return model.backbone.eval(), names, axes


def export(module: nn.Module, names: Sequence[str], axes: Dict[str, dict],
           shape: Sequence[int], path: str, opset: int = 17) -> None:
    """Trace ``module`` on a (1, 3, H, W) input and write ``path``."""
    x = torch.randn(1, 3, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer notes on shape arithmetic
        torch.onnx.export(module, (x, ), path, dynamo=False,
                          input_names=['input'], output_names=list(names),
                          dynamic_axes=axes, opset_version=opset)


def ort_session(path: str, threads: int = 1):
    """An onnxruntime CPU session of ``path``."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        raise UserError('ONNX export needs the optional extras: pip install '
                        'onnx onnxruntime') from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(path, options,
                                providers=['CPUExecutionProvider'])


def max_difference(session, module: nn.Module, x: torch.Tensor) -> float:
    """Largest absolute difference between onnxruntime and PyTorch over
    every output, on input ``x``."""
    with torch.no_grad():
        expected = module(x)
    expected = expected if isinstance(expected, (tuple, list)) else [expected]
    got = session.run(None, {'input': x.numpy()})
    return max(
        float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected))
