"""ONNX export of deploy models, checked against PyTorch with onnxruntime.

What a config exports (``part='model'``, the default):

* classification: the whole classifier, ``logits``;
* detection: the whole detector with its post-processing, ``dets``,
  ``labels`` (and ``masks``) after NMS; segmentation: ``label_map``. These
  go through mmdeploy's rewrites (:mod:`.mmdeploy_export`).

``part='backbone'`` exports the backbone alone (its stage maps). The model
is folded first (deploy mode). Batch, height and width are dynamic, and
one graph is exact at every input size: the attention computes its window
choice and bias index in the graph from the input's shape.
"""
import warnings
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config

from ..errors import UserError
from ..runtime.config import task_of
from .mmdeploy_compat import OPSET
from .switch import fold_for_export

# largest abs difference allowed on maps, logits, scores and mask
# probabilities, relative to the output's largest magnitude where that is
# above 1 (fp32 rounding grows with it: logits of 200 differ by 2e-4 between
# any two fp32 runtimes, PyTorch's own eager and deploy modes included)
TOLERANCE = 1e-4
# ... on box coordinates, in pixels of the network input
BOX_TOLERANCE = 1e-2
# ... on label maps: the fraction of pixels whose label may differ (ties of
# nearly equal logits)
LABEL_MAP_TOLERANCE = 1e-3
PARTS = ('model', 'backbone')
DYNAMIC = {0: 'batch', 2: 'height', 3: 'width'}


class ClassifierLogits(nn.Module):
    """Image tensor -> logits, without the data preprocessor."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(x, mode='tensor')


def exportable(
        model: nn.Module, task: str,
        part: str = 'model') -> Tuple[nn.Module, List[str], Dict[str, dict]]:
    """(module, output names, dynamic axes) of the classifier, or of the
    backbone of any model (``part='backbone'``); the module is folded
    (deploy mode, where the model has one: :func:`.switch.fold_for_export`)
    and in eval mode."""
    fold_for_export(model)
    if part == 'model' and task == 'classification':
        axes = {'input': DYNAMIC, 'logits': {0: 'batch'}}
        return ClassifierLogits(model).eval(), ['logits'], axes
    names = [f'stage{i}' for i in model.backbone.out_indices]
    axes = {'input': DYNAMIC}
    axes.update({n: {0: 'batch', 2: f'{n}_h', 3: f'{n}_w'} for n in names})
    return model.backbone.eval(), names, axes


def export(module: nn.Module, names: Sequence[str], axes: Dict[str, dict],
           shape: Sequence[int], path: str, opset: int = OPSET) -> None:
    """Trace ``module`` on a (1, 3, H, W) input and write ``path``."""
    x = torch.randn(1, 3, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # tracer notes on shape arithmetic
        torch.onnx.export(module, (x, ), path, dynamo=False,
                          input_names=['input'], output_names=list(names),
                          dynamic_axes=axes, opset_version=opset)


def export_model(model: nn.Module, cfg: Config, shape: Sequence[int],
                 path: str, part: str = 'model',
                 opset: int = OPSET) -> Callable:
    """Fold ``model`` (built from ``cfg``; deploy mode where it has one, see
    :func:`.switch.fold_for_export`) and export ``part`` of it to
    ``path``, tracing a (1, 3, H, W) input. Returns PyTorch's version of
    the graph: a function of a list of input batches giving, for each, the
    graph's outputs (a tuple of tensors)."""
    if part not in PARTS:
        raise UserError(f'part must be one of {PARTS}, got {part!r}')
    task = task_of(cfg)
    if part == 'model' and task != 'classification':
        from .mmdeploy_export import export_dense, rewritten_outputs
        fold_for_export(model)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            export_dense(model, cfg, shape, path, opset)
        return lambda xs: rewritten_outputs(model, cfg, xs, opset)
    module, names, axes = exportable(model, task, part)
    export(module, names, axes, shape, path, opset)

    def reference(xs):
        with torch.no_grad():
            return [_as_tuple(module(x)) for x in xs]

    return reference


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out, )


def ort_session(path: str, threads: int = 1):
    """An onnxruntime CPU session of ``path``; a file onnxruntime cannot
    load (not ONNX, truncated) is a :class:`UserError`."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        raise UserError('ONNX export needs the optional extras: pip install '
                        'onnx onnxruntime') from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(path, options,
                                    providers=['CPUExecutionProvider'])
    except Exception as err:  # onnxruntime raises its own types
        raise UserError(f'onnxruntime cannot load {path}: '
                        f'{str(err).splitlines()[0]}; give an .onnx file '
                        f'of tools/export_onnx.py') from None


def run_session(session, x: torch.Tensor) -> Dict[str, np.ndarray]:
    """The outputs of ``session`` on input ``x``, by name; an onnxruntime
    failure becomes a :class:`UserError` naming the input shape."""
    try:
        got = session.run(None, {'input': x.numpy()})
    except Exception as err:  # onnxruntime raises its own types
        raise UserError(f'onnxruntime failed on an input of shape '
                        f'{tuple(x.shape)}: {str(err).splitlines()[0]}')
    return {o.name: v for o, v in zip(session.get_outputs(), got)}


def differences(expected: Dict[str, np.ndarray],
                got: Dict[str, np.ndarray]) -> Dict[str, float]:
    """How far ``got`` is from ``expected``, output by output: the largest
    abs difference, divided by the largest magnitude of the expected output
    where that is above 1 (``dets`` split into ``boxes``, in pixels, and
    ``scores``); the fraction of differing labels for ``labels`` and
    ``label_map``; inf where shapes differ (another number of
    detections). Detections are compared in the order of ``expected``:
    ``got``'s rows are first paired with them (:func:`pair_detections`),
    as NMS may list boxes of near-equal scores in either order."""
    if 'dets' in expected and 'dets' in got and \
            expected['dets'].shape == got['dets'].shape:
        orders = pair_detections(expected['dets'], expected['labels'],
                                 got['dets'], got['labels'])
        got = dict(got)
        for name in ('dets', 'labels', 'masks'):
            if name in got:
                got[name] = np.stack(
                    [rows[order] for rows, order in zip(got[name], orders)])
    diffs: Dict[str, float] = {}
    for name, want in expected.items():
        have = got[name]
        if want.shape != have.shape:
            diffs[name] = float('inf')
        elif name in ('labels', 'label_map'):
            diffs[name] = float((want != have).mean()) if want.size else 0.
        elif name == 'dets':
            diffs['boxes'] = _max_abs(want[..., :4], have[..., :4])
            diffs['scores'] = _max_abs(want[..., 4], have[..., 4])
        else:
            scale = max(1., float(np.abs(want).max())) if want.size else 1.
            diffs[name] = _max_abs(want, have) / scale
    return diffs


def pair_detections(want_dets: np.ndarray, want_labels: np.ndarray,
                    got_dets: np.ndarray,
                    got_labels: np.ndarray) -> List[np.ndarray]:
    """For each image of (N, K, 5) detections, the order of ``got``'s rows
    that lines them up with ``want``'s: each row goes to the row of the
    same label nearest in box and score; where that is not one to one, the
    rows stay where they are (and the positional comparison tells)."""
    orders = []
    for wd, wl, gd, gl in zip(want_dets, want_labels, got_dets, got_labels):
        cost = np.abs(wd[:, None, :] - gd[None, :, :]).max(-1)
        cost[wl[:, None] != gl[None, :]] = np.inf
        order = cost.argmin(1) if cost.size else np.arange(len(gd))
        if len(set(order.tolist())) != len(order):
            order = np.arange(len(gd))
        orders.append(order)
    return orders


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max()) if a.size else 0.


def tolerance(name: str) -> float:
    """What :func:`differences` may give for output ``name``."""
    return dict(boxes=BOX_TOLERANCE, labels=0.,
                label_map=LABEL_MAP_TOLERANCE).get(name, TOLERANCE)


def check_graph(session, reference: Callable,
                inputs: Sequence[torch.Tensor]) -> List[Dict[str, float]]:
    """:func:`differences` of the graph from PyTorch (``reference``, as
    :func:`export_model` returns it) on each input batch."""
    names = [o.name for o in session.get_outputs()]
    return [
        differences({
            n: e.numpy()
            for n, e in zip(names, want)
        }, run_session(session, x))
        for x, want in zip(inputs, reference(inputs))
    ]
