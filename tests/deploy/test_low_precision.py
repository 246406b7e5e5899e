"""bf16 deploy mode and static INT8 quantisation."""
import copy

import numpy as np
import pytest
import torch

from efficientvit_mm.apis import tensor_model
from efficientvit_mm.benchmarking import prepare
from efficientvit_mm.deploy import onnx, switch_to_deploy
from efficientvit_mm.deploy.precision import bf16_parts, to_bf16
from efficientvit_mm.engine import DeployModelHook
from efficientvit_mm.models import EfficientViT
from efficientvit_mm.runtime import load_config
from efficientvit_mm.testing import randomise
from helpers import ROOT


def _relative(a, b):
    return float((a - b).abs().max() / b.abs().max())


def test_bf16_backbone_runs_in_bf16_and_answers_in_fp32():
    model = switch_to_deploy(randomise(EfficientViT('m0')))
    x = torch.randn(2, 3, 96,
                    128).contiguous(memory_format=torch.channels_last)
    fast = to_bf16(copy.deepcopy(model))
    to_bf16(fast)  # a second call changes nothing
    assert bf16_parts(model) == ['']
    assert all(p.dtype == torch.bfloat16 for p in fast.parameters())
    with torch.inference_mode():
        ref, out = model(x), fast(x)
    for r, o in zip(ref, out):
        assert o.dtype == torch.float32 and o.shape == r.shape
        assert _relative(o, r) < 3e-2


def test_bf16_classifier_keeps_head_outputs_fp32():
    cfg = load_config(f'{ROOT}/configs/efficientvit_m0_in1k.py')
    net = randomise(tensor_model(cfg, (112, 112)))
    assert bf16_parts(net.model) == ['backbone', 'neck', 'head']
    x = torch.randn(2, 3, 112, 112)
    fast = prepare(net, 'bf16', x, channels_last=True)
    deploy = prepare(net, 'deploy', x, channels_last=True)
    with torch.inference_mode():
        ref = deploy(x.contiguous(memory_format=torch.channels_last))
        out = fast(x.contiguous(memory_format=torch.channels_last))
    assert out.dtype == torch.float32
    assert _relative(out, ref) < 3e-2


def test_deploy_hook_folds_and_casts_before_testing():

    class Runner:
        model = switch_to_deploy(randomise(EfficientViT('m0'))).train()
        logger = type('Log', (), {'info': staticmethod(lambda msg: None)})

    DeployModelHook('bf16').before_test(Runner)
    assert not Runner.model.training
    assert next(Runner.model.parameters()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match='precision must be one of'):
        DeployModelHook('fp8')


def test_deploy_hook_folds_a_model_with_a_part_named_module():
    """Only a model wrapper (DDP) is unwrapped, not any ``.module``."""

    class Foldable(torch.nn.Module):
        folded = False

        def switch_to_deploy(self):
            self.folded = True

    class Model(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.module, self.head = Foldable(), Foldable()

    class Runner:
        model = Model()
        logger = type('Log', (), {'info': staticmethod(lambda msg: None)})

    DeployModelHook('fp32').before_test(Runner)
    assert Runner.model.module.folded and Runner.model.head.folded


@pytest.mark.parametrize('activations', ['uint8', 'int8'])
def test_int8_classifier_is_qdq_and_close(tmp_path, activations):
    """QDQ with 8-bit activations of the asked type around the convs; the
    conv reading the image, attention's activation x activation MatMuls
    and the small classifier Gemm stay fp32; logits follow fp32's."""
    ort = pytest.importorskip('onnxruntime')  # noqa: F841
    import onnx as onnx_pkg

    from efficientvit_mm.deploy.quantize import quantize_int8
    cfg = load_config(f'{ROOT}/configs/efficientvit_m0_in1k.py')
    model = randomise(tensor_model(cfg, (64, 64)).model)
    module, names, axes = onnx.exportable(model, 'classification')
    fp32, int8 = str(tmp_path / 'fp32.onnx'), str(tmp_path / 'int8.onnx')
    onnx.export(module, names, axes, (64, 64), fp32)
    gen = torch.Generator().manual_seed(0)
    data = [torch.randn(4, 3, 64, 64, generator=gen).numpy() for _ in range(3)]
    quantize_int8(fp32, int8, data, activations=activations)
    graph = onnx_pkg.load(int8).graph
    made_by = {o: n for n in graph.node for o in n.output}

    def dequantized(name):
        return getattr(made_by.get(name), 'op_type', '') == 'DequantizeLinear'

    convs = [n for n in graph.node if n.op_type == 'Conv']
    assert convs[0].input[0] == 'input' and not dequantized(convs[0].input[1])
    assert all(
        dequantized(n.input[0]) and dequantized(n.input[1]) for n in convs[1:])
    matmuls = [n for n in graph.node if n.op_type in ('MatMul', 'Gemm')]
    assert matmuls and not any(
        dequantized(i) for n in matmuls for i in n.input)

    # a quantised conv's ReLU is folded into its output's quantisation, not
    # requantised after it (conv -> Q -> DQ -> ReLU -> Q)
    def source(name, hops):
        for _ in range(hops):
            name = made_by[name].input[0] if name in made_by else ''
        return getattr(made_by.get(name), 'op_type', '')

    relus = [n for n in graph.node if n.op_type == 'Relu']
    assert not any(source(n.input[0], 2) == 'Conv' for n in relus)
    activation_types = {
        n.input[2]
        for n in graph.node
        if n.op_type == 'QuantizeLinear' and len(n.input) > 2
    }
    zero_points = {
        i.data_type
        for i in graph.initializer if i.name in activation_types
    }
    expected = {
        'uint8': onnx_pkg.TensorProto.UINT8,
        'int8': onnx_pkg.TensorProto.INT8
    }[activations]
    assert zero_points == {expected}
    x = data[0]
    ref = onnx.ort_session(fp32).run(None, {'input': x})[0]
    out = onnx.ort_session(int8).run(None, {'input': x})[0]
    assert out.shape == ref.shape
    # INT8 logits follow fp32 ones (random weights: loose bound)
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.9


def test_int8_activations_follow_the_cpu():
    """Unsigned activations where x86 has VNNI (onnxruntime's fast u8 x s8
    kernels), signed elsewhere (no saturation); a bad type is refused."""
    from efficientvit_mm.deploy.quantize import activation_type, quantize_int8
    from efficientvit_mm.errors import UserError
    assert activation_type({'avx512f', 'avx512_vnni'}) == 'uint8'
    assert activation_type({'avx2', 'avx_vnni'}) == 'uint8'
    assert activation_type({'avx2', 'avx512f'}) == 'int8'
    assert activation_type(set()) == 'int8'
    with pytest.raises(UserError, match="'uint8' or 'int8'"):
        quantize_int8('a.onnx', 'b.onnx', [], activations='fp8')


def test_int8_keeps_large_fully_connected_layers_quantised():
    """A MatMul or Gemm with a large weight (RoI heads' FCs) is quantised;
    one with a small weight or none (attention) is not."""
    import onnx as onnx_pkg
    from onnx import TensorProto, helper

    from efficientvit_mm.deploy.quantize import MIN_INT8_WEIGHT, fp32_nodes
    big = helper.make_tensor('big', TensorProto.FLOAT, [MIN_INT8_WEIGHT, 1],
                             np.zeros(MIN_INT8_WEIGHT, np.float32))
    small = helper.make_tensor('small', TensorProto.FLOAT, [4, 4],
                               np.zeros(16, np.float32))
    nodes = [
        helper.make_node('MatMul', ['x', 'big'], ['y'], name='fc'),
        helper.make_node('Gemm', ['a', 'small'], ['b'], name='se'),
        helper.make_node('MatMul', ['a', 'b'], ['c'], name='attention'),
    ]
    graph = helper.make_graph(nodes, 'g', [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
        for n in ('x', 'a')
    ], [helper.make_tensor_value_info('c', TensorProto.FLOAT, None)],
                              initializer=[big, small])
    assert fp32_nodes(onnx_pkg.ModelProto(graph=graph)) == ['se', 'attention']


def test_precision_check_reports_each_runtime_beside_fp32(tmp_path):
    """benchmarks/low_precision_accuracy.py's engine on a tiny crops set:
    top-1 and latency of fp32, bf16 and INT8 (calibrated on train crops),
    and the gaps to fp32."""
    pytest.importorskip('onnxruntime')
    from efficientvit_mm.apis import build_model
    from efficientvit_mm.datasets import export_crops
    from efficientvit_mm.deploy.precision_check import (compare, format_report,
                                                        gaps)
    root = str(tmp_path / 'crops')
    export_crops(root, dict(train=2, val=2), seed=0, image_size=128,
                 num_objects=(2, 3), size_range=(0.2, 0.35))
    cfg = load_config(f'{ROOT}/configs/demo/efficientvit_m0_shapes_cls.py',
                      {'data_root': root})
    model = randomise(build_model(cfg))
    report = compare(cfg, model, num_images=4, calib_images=4, repeats=1)
    assert report['num_images'] == 4
    assert set(report['metrics']) == {'fp32', 'bf16', 'int8'}
    assert all('accuracy/top1' in m for m in report['metrics'].values())
    assert set(gaps(report)) == {'bf16', 'int8'}
    assert all(ms > 0 for ms in report['latency_ms'].values())
    assert len(format_report(report).splitlines()) == 3


@pytest.mark.parametrize('detector', ['retinanet', 'mask_rcnn'])
def test_int8_detector_quantises_convs_and_keeps_nms_fp32(
        tmp_path, tiny_coco, detector):
    """A whole detector graph (NMS included) in static INT8: QDQ around the
    convs and matmuls, calibrated on train images, NMS (Mask R-CNN: both
    stages') on fp32 boxes; its predictor gives detections inside the
    image, and Mask R-CNN a mask for each."""
    pytest.importorskip('mmdeploy')
    import onnx as onnx_pkg
    from mmengine.dataset import pseudo_collate

    from efficientvit_mm.deploy.precision_check import int8_runtime
    from efficientvit_mm.deploy.verify import val_dataset
    from helpers.deploy import TINY_MASK_RCNN, config, random_model
    if detector == 'retinanet':
        cfg = config('demo/retinanet_efficientvit_m0_shapes.py',
                     {'data_root': f'{tiny_coco}/'})
        model = switch_to_deploy(random_model(cfg, score_bias=-4.))
    else:
        cfg = config('custom/mask_rcnn_efficientvit_m4_custom_coco.py',
                     dict(TINY_MASK_RCNN, data_root=f'{tiny_coco}/'))
        model = switch_to_deploy(random_model(cfg, spread_rcnn_scores=True))
    predictor = int8_runtime(cfg, model, str(tmp_path), calib_images=4)
    graph = onnx_pkg.load(str(tmp_path / 'int8.onnx')).graph
    dequantised = {
        n.output[0]
        for n in graph.node if n.op_type == 'DequantizeLinear'
    }
    nms = [n for n in graph.node if n.op_type == 'NonMaxSuppression']
    assert len(dequantised) > 20
    assert len(nms) == (1 if detector == 'retinanet' else 2)
    for node in nms:
        assert not set(node.input) & dequantised  # boxes and scores fp32
    sample = predictor(pseudo_collate([val_dataset(cfg)[0]]))[0]
    found = sample.pred_instances
    h, w = sample.ori_shape
    assert len(found) > 0 and found.bboxes.min() >= 0
    assert float(found.bboxes[:, 2].max()) <= w
    assert float(found.bboxes[:, 3].max()) <= h
    if detector == 'mask_rcnn':
        assert found.masks.shape == (len(found), h, w)
        assert found.masks.any()
        for mask, box in zip(found.masks, found.bboxes):  # inside its box
            ys, xs = torch.nonzero(mask, as_tuple=True)
            if len(xs):
                assert xs.min() >= box[0] - 1 and xs.max() <= box[2] + 1
                assert ys.min() >= box[1] - 1 and ys.max() <= box[3] + 1


def test_calibration_images_that_are_missing_say_so(tmp_path):
    """A missing train set is one UserError naming the split and the way
    out, not the dataset's FileNotFoundError."""
    from efficientvit_mm.deploy.quantize import config_images
    from efficientvit_mm.errors import UserError
    from helpers.deploy import config
    cfg = config('demo/retinanet_efficientvit_m0_shapes.py',
                 {'data_root': f'{tmp_path}/nowhere/'})
    with pytest.raises(
            UserError, match=r'the train_dataloader \(INT8 '
            r'calibration\) of this config cannot be read .*'
            r'--runtimes fp32 bf16'):
        config_images(cfg)
