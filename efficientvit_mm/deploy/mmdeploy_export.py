"""Whole detectors and segmentors to ONNX, post-processing included,
through mmdeploy's rewrites (with :mod:`.mmdeploy_compat` applied).

* RetinaNet: ``dets`` (N, K, 5: x1, y1, x2, y2, score) and ``labels``
  (N, K) after NMS, in the coordinates of the network input;
* Mask R-CNN: the same plus ``masks`` (N, K, 28, 28), the mask
  probabilities of each detection's own class inside its box;
* Semantic FPN and UperNet: ``label_map`` (N, 1, H, W), the argmax of the
  logits at the network input's size.

Batch, height and width are dynamic. The post-processing reads the
model's ``test_cfg`` (score threshold, NMS IoU, boxes per image), so the
graph keeps the same detections as mmdet wherever a class of a pyramid
level has fewer than ``nms_pre`` candidates above the score threshold
(mmdeploy takes the top ``nms_pre`` anchors by their best class, mmdet the
top ``nms_pre`` (anchor, class) pairs). :func:`rewritten_outputs` runs the
same rewritten model in PyTorch: the graph's exact reference.
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config

from ..apis import data_samples
from ..errors import UserError
from ..runtime.config import task_of
from .mmdeploy_compat import OPSET, apply

BACKEND = 'onnxruntime'


def has_masks(cfg: Config) -> bool:
    """Whether the detector of ``cfg`` predicts instance masks."""
    roi_head = cfg.model.get('roi_head') or {}
    return roi_head.get('mask_head') is not None


def output_names(cfg: Config) -> List[str]:
    """The graph outputs of the dense model of ``cfg``."""
    if task_of(cfg) == 'segmentation':
        return ['label_map']
    return ['dets', 'labels'] + (['masks'] if has_masks(cfg) else [])


def dynamic_axes(cfg: Config) -> Dict[str, Dict[int, str]]:
    """Batch, height and width of the input; batch and detections (or
    height and width) of the outputs."""
    axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
    for name in output_names(cfg):
        axes[name] = ({
            0: 'batch',
            2: 'height',
            3: 'width'
        } if name == 'label_map' else {
            0: 'batch',
            1: 'num_dets'
        })
    return axes


def post_processing(cfg: Config) -> dict:
    """mmdeploy's NMS settings for the detector of ``cfg``: the model's own
    thresholds. No cut before NMS beyond each level's ``nms_pre``, and a
    class may keep as many boxes as the image (none beyond that can reach
    the image's top ``max_per_img``)."""
    test_cfg = cfg.model.test_cfg
    last = test_cfg.get('rcnn', test_cfg)  # two-stage: the second stage
    keep = last.get('max_per_img', 100)
    return dict(
        score_threshold=last.get('score_thr',
                                 0.05), confidence_threshold=0.005,
        iou_threshold=last.get('nms', {}).get('iou_threshold', 0.5),
        max_output_boxes_per_class=keep, pre_top_k=-1, keep_top_k=keep,
        background_label_id=-1, export_postprocess_mask=False)


def deploy_config(cfg: Config, opset: int = OPSET) -> Config:
    """The mmdeploy deploy config (onnxruntime, dynamic shapes) of the
    detection or segmentation model of ``cfg``."""
    task = task_of(cfg)
    if task == 'segmentation':
        codebase = dict(type='mmseg', task='Segmentation', with_argmax=True)
    elif task == 'detection':
        codebase = dict(type='mmdet', task='ObjectDetection',
                        model_type='end2end',
                        post_processing=post_processing(cfg))
    else:
        raise UserError(f'mmdeploy export covers detection and segmentation '
                        f'configs; this one is {task}')
    return Config(
        dict(
            onnx_config=dict(type='onnx', export_params=True,
                             keep_initializers_as_inputs=False,
                             opset_version=opset, save_file='end2end.onnx',
                             input_names=['input'],
                             output_names=output_names(cfg), input_shape=None,
                             optimize=False, dynamic_axes=dynamic_axes(cfg)),
            codebase_config=codebase, backend_config=dict(type=BACKEND)))


def _import_rewrites(deploy_cfg: Config) -> None:
    """Register mmdeploy's rewrites of the toolbox of ``deploy_cfg``."""
    from mmdeploy.codebase import import_codebase
    from mmdeploy.utils import get_codebase
    apply()
    import_codebase(get_codebase(deploy_cfg))


def export_dense(model: nn.Module, cfg: Config, shape: Sequence[int],
                 path: str, opset: int = OPSET) -> None:
    """Trace the detector or segmentor ``model`` (eval mode, BN folded or
    not) on a (1, 3, H, W) input through mmdeploy and write ``path``
    (which must end in ``.onnx``)."""
    from mmdeploy.apis.onnx import export
    if not path.endswith('.onnx'):
        raise UserError(f'the output file must end in .onnx: {path}')
    deploy_cfg = deploy_config(cfg, opset)
    _import_rewrites(deploy_cfg)
    onnx_cfg = deploy_cfg.onnx_config
    export(
        model.eval(), torch.randn(1, 3, *shape), path[:-len('.onnx')],
        backend=BACKEND, input_metas=dict(
            data_samples=data_samples(task_of(cfg), shape),
            mode='predict'), context_info=dict(deploy_cfg=deploy_cfg),
        input_names=onnx_cfg.input_names, output_names=onnx_cfg.output_names,
        opset_version=opset, dynamic_axes=onnx_cfg.dynamic_axes,
        keep_initializers_as_inputs=False)
    # mmdeploy's export leaves the instance's forward set to the rewritten
    # forward it traced (bound to a rewrite context that has ended): back to
    # the class's forward, so the model still runs in PyTorch
    model.__dict__.pop('forward', None)


def rewritten_outputs(model: nn.Module, cfg: Config,
                      inputs: Sequence[torch.Tensor],
                      opset: int = OPSET) -> List[Tuple[torch.Tensor, ...]]:
    """What the exported graph computes, run in PyTorch: ``model`` under
    mmdeploy's rewrites on each (N, 3, H, W) batch of ``inputs`` (in one
    rewrite context: entering one takes seconds)."""
    from mmdeploy.core import RewriterContext, patch_model
    deploy_cfg = deploy_config(cfg, opset)
    _import_rewrites(deploy_cfg)
    patched = patch_model(model.eval(), cfg=deploy_cfg, backend=BACKEND)
    outputs = []
    with RewriterContext(cfg=deploy_cfg, backend=BACKEND,
                         opset=opset), torch.no_grad():
        for x in inputs:
            samples = data_samples(task_of(cfg), x.shape[2:]) * x.shape[0]
            out = patched(x, samples, mode='predict')
            outputs.append(
                tuple(out) if isinstance(out, (tuple, list)) else (out, ))
    return outputs
