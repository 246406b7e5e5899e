"""mmdeploy 1.3.1 on torch 2.14 through efficientvit_mm/deploy/
mmdeploy_compat.py: each fix, then mmdeploy's own torch2onnx and
onnxruntime backend on our detector and segmentor."""
import os

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from efficientvit_mm.deploy import mmdeploy_compat
from helpers.deploy import config, random_model

pytest.importorskip('mmdeploy', reason='optional extra: mmdeploy')
ort = pytest.importorskip('onnxruntime', reason='optional extra')

SEG_DEPLOY = Config(
    dict(
        onnx_config=dict(type='onnx', opset_version=mmdeploy_compat.OPSET,
                         input_shape=None,
                         dynamic_axes={'input': {
                             2: 'h',
                             3: 'w'
                         }}), codebase_config=dict(type='mmseg',
                                                   task='Segmentation'),
        backend_config=dict(type='onnxruntime')))


class SizeDependent(nn.Module):
    """mmseg's Upsample (x2) and adaptive average pooling into 3x3 bins:
    two sizes a trace may freeze."""

    def __init__(self):
        super().__init__()
        from mmseg.models.utils import Upsample
        self.up = Upsample(scale_factor=2, mode='bilinear')

    def forward(self, x):
        up = self.up(x)
        return up, nn.functional.adaptive_avg_pool2d(up, 3)


def test_export_follows_input_size_inside_mmdeploy(tmp_path):
    """mmdeploy's export runs (TorchScript exporter: no onnxscript
    needed) and the graph's upsampling and adaptive pooling follow the
    input size, also where mmdeploy's own rewrite of the pooling fails
    (map smaller than the bins) or is wrong (not a multiple of them)."""
    from mmdeploy.apis.onnx import export
    mmdeploy_compat.apply()
    model = SizeDependent().eval()
    before = torch.onnx.export
    export(model, torch.randn(1, 2, 6,
                              6), str(tmp_path / 'm'), backend='onnxruntime',
           context_info=dict(deploy_cfg=SEG_DEPLOY), input_names=['input'],
           output_names=['up', 'pooled'], opset_version=mmdeploy_compat.OPSET,
           dynamic_axes=SEG_DEPLOY.onnx_config.dynamic_axes)
    assert torch.onnx.export is before  # the rewrite lives in mmdeploy only
    session = ort.InferenceSession(
        str(tmp_path / 'm.onnx'), providers=['CPUExecutionProvider'])
    for h, w in ((6, 6), (1, 1), (7, 5), (13, 4)):
        x = torch.randn(1, 2, h, w)
        with torch.no_grad():
            want = model(x)
        got = session.run(None, {'input': x.numpy()})
        for g, e in zip(got, want):
            assert g.shape == tuple(e.shape)
            assert np.abs(g - e.numpy()).max() < 1e-5


def test_cast_long_stand_in_emits_an_int64_cast(tmp_path):
    from torch.onnx import symbolic_opset9
    mmdeploy_compat.apply()
    cast = symbolic_opset9._cast_Long

    class ToLong(torch.autograd.Function):

        @staticmethod
        def forward(ctx, x):
            return x.long()

        @staticmethod
        def symbolic(g, x):
            return cast(g, x, False)

    class Net(nn.Module):

        def forward(self, x):
            return ToLong.apply(x)

    path = str(tmp_path / 'cast.onnx')
    torch.onnx.export(Net(), (torch.randn(4), ), path, dynamo=False,
                      input_names=['x'], opset_version=13)
    x = np.array([1.7, -2.2, 3.0, 0.4], np.float32)
    (got, ) = ort.InferenceSession(path, providers=['CPUExecutionProvider'
                                                    ]).run(None, {'x': x})
    assert got.dtype == np.int64
    assert got.tolist() == torch.from_numpy(x).long().tolist()


def test_rewriter_leaves_the_fx_wrap_registry_as_it_was():
    from mmdeploy.core import RewriterContext
    from torch.fx._symbolic_trace import _wrapped_fns_to_patch as registry
    mmdeploy_compat.apply()
    before = dict(registry) if isinstance(registry, dict) else list(registry)
    with RewriterContext(cfg=SEG_DEPLOY, backend='onnxruntime'):
        # what torch.fx.wrap('len') at the top of a module imported
        # meanwhile (timm's) does
        registry[(id(globals()), 'len')] = globals()
    after = dict(registry) if isinstance(registry, dict) else list(registry)
    assert after == before


def _predict(model, cfg, image):
    """Our PyTorch prediction of one image file."""
    from mmengine.dataset import pseudo_collate

    from efficientvit_mm.deploy.onnx_predictor import image_pipeline
    batch = pseudo_collate([image_pipeline(cfg)(dict(img_path=image))])
    with torch.no_grad():
        return model.test_step(batch)[0]


@pytest.mark.parametrize('name', ['detection', 'instances', 'segmentation'])
def test_mmdeploy_torch2onnx_and_its_onnxruntime_backend(
        tmp_path, tiny_coco, name):
    """mmdeploy's own pipeline (torch2onnx, then inference_model with its
    onnxruntime wrapper) predicts what PyTorch predicts."""
    from mmdeploy.apis import inference_model, torch2onnx

    from efficientvit_mm.deploy.mmdeploy_export import deploy_config
    from efficientvit_mm.deploy.verify import match_detections
    if name == 'detection':
        cfg = config('demo/retinanet_efficientvit_m0_shapes.py',
                     {'data_root': f'{tiny_coco}/'})
        model = random_model(cfg, str(tmp_path / 'm.pth'), score_bias=-7.)
    elif name == 'instances':  # Mask R-CNN, through our two-stage rewrites
        from helpers.deploy import TINY_MASK_RCNN
        cfg = config('custom/mask_rcnn_efficientvit_m4_custom_coco.py',
                     dict(TINY_MASK_RCNN, data_root=f'{tiny_coco}/'))
        model = random_model(cfg, str(tmp_path / 'm.pth'),
                             spread_rcnn_scores=True)
    else:
        cfg = config('demo/fpn_efficientvit_m0_shapes_seg.py')
        model = random_model(cfg, str(tmp_path / 'm.pth'))
    image = os.path.join(tiny_coco, 'val',
                         sorted(os.listdir(f'{tiny_coco}/val'))[0])
    mmdeploy_compat.apply()
    dcfg = deploy_config(cfg)
    torch2onnx(image, str(tmp_path), 'end2end.onnx', dcfg, cfg,
               str(tmp_path / 'm.pth'), 'cpu')
    (got, ) = inference_model(cfg, dcfg, [str(tmp_path / 'end2end.onnx')],
                              image, 'cpu')
    want = _predict(model, cfg, image)
    if name != 'segmentation':
        assert len(want.pred_instances) > 0
        # mmdet drops boxes of no width or height (cut by the image
        # border) before NMS, mmdeploy's graph keeps them: left out here
        boxes = got.pred_instances.bboxes
        got.pred_instances = got.pred_instances[(boxes[:, 2] > boxes[:, 0])
                                                & (boxes[:, 3] > boxes[:, 1])]
        for a, b in ((want, got), (got, want)):
            stats = match_detections(a.pred_instances, b.pred_instances, 0.3)
            assert stats['unmatched'] == 0 and stats['box_px'] < 1., stats
            assert stats['mask_iou'] >= 0.9, stats  # (1. without masks)
        # the same scores (random weights give near-duplicate boxes, so a
        # box's best match may be its neighbour: scores compared sorted)
        scores = [
            s.pred_instances.scores[s.pred_instances.scores >= 0.3]
            for s in (want, got)
        ]
        assert len(scores[0]) == len(scores[1])
        assert (scores[0].sort()[0] - scores[1].sort()[0]).abs().max() < 1e-3
    else:
        alike = (got.pred_sem_seg.data == want.pred_sem_seg.data).float()
        assert alike.mean() > 0.999
