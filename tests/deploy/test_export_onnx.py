"""ONNX export of the backbone and the classifier: one graph gives
PyTorch's answer at every input size, and tools/export_onnx.py checks it
and refuses bad input in one line."""
import os

import numpy as np
import pytest
import torch

from efficientvit_mm.apis import build_model
from efficientvit_mm.deploy import onnx
from efficientvit_mm.runtime import load_config
from efficientvit_mm.testing import randomise
from helpers import ROOT, run_tool, tool_exit_status

ort = pytest.importorskip('onnxruntime', reason='optional extra: onnxruntime')
pytest.importorskip('onnx', reason='optional extra: onnx')

# exported at 128: every stage map smaller than a window (32, odd 33x47),
# the export size, odd sizes above it where stage 1 attends in windows, and
# a tall, thin one
SIZES = [(32, 32), (33, 47), (128, 128), (161, 225), (449, 65)]


def _model(config):
    cfg = load_config(os.path.join(ROOT, 'configs', config))
    return cfg, randomise(build_model(cfg)).eval()


@pytest.mark.parametrize('config,part', [
    ('efficientvit_m0_in1k.py', 'model'),
    ('retinanet_efficientvit_m0_coco.py', 'backbone'),
])
def test_graph_is_exact_below_at_and_above_the_export_size(
        tmp_path, config, part):
    cfg, model = _model(config)
    path = str(tmp_path / 'model.onnx')
    reference = onnx.export_model(model, cfg, (128, 128), path, part)
    session = onnx.ort_session(path)
    inputs = [torch.randn(2, 3, *size) for size in SIZES]
    for size, diffs in zip(SIZES, onnx.check_graph(session, reference,
                                                   inputs)):
        assert diffs and max(diffs.values()) <= 1e-4, (size, diffs)
    # the graph answers what the model as built answers (not only folded)
    x = inputs[3]
    got = session.run(None, {'input': x.numpy()})
    with torch.no_grad():
        want = (model(x, mode='tensor'), ) if part == 'model' else tuple(
            model.backbone(x))
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape)
        assert np.abs(g -
                      w.numpy()).max() <= 1e-4 * max(1., float(w.abs().max()))


def test_tool_checks_three_sizes_and_times(tmp_path):
    cfg, model = _model('efficientvit_m0_in1k.py')
    ckpt = str(tmp_path / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    proc = run_tool([
        'tools/export_onnx.py', 'configs/efficientvit_m0_in1k.py', ckpt,
        str(tmp_path / 'm.onnx'), '--shape', '96', '--no-verify'
    ])
    out = proc.stdout
    assert 'classifier, logits' in out and 'check passed' in out
    for size in ('49x49', '96x96', '121x121'):
        assert f'at 2x3x{size}: logits' in out
    assert 'PyTorch deploy' in out and 'ms | onnxruntime' in out


def test_bad_input_is_one_line(tmp_path, monkeypatch, capsys):
    """Each refusal is one short error and a non-zero exit status (the
    tools run in this process, as their ``__main__`` runs them)."""
    monkeypatch.chdir(ROOT)

    def fails(args):
        assert tool_exit_status(args[0], args[1:]) not in (0, None)
        err = capsys.readouterr().err
        assert 'Traceback' not in err
        return err

    config = 'configs/efficientvit_m0_in1k.py'
    torch.save({'state_dict': {
        'layer.weight': torch.zeros(1)
    }}, str(tmp_path / 'bad.pth'))
    out = str(tmp_path / 'x.onnx')
    assert 'does not fit this config' in fails(
        ['export_onnx', config,
         str(tmp_path / 'bad.pth'), out])
    assert 'does not exist' in fails(
        ['export_onnx', 'configs/nope.py', 'x.pth', out])
    assert '--shape' in fails(
        ['export_onnx', config, 'x.pth', out, '--shape', '0'])
    assert 'no such ONNX file' in fails([
        'infer_onnx',
        str(tmp_path / 'none.onnx'), config,
        os.path.join(ROOT, 'README.md'), '--out-dir',
        str(tmp_path / 'vis')
    ])
    # two images of one name would be drawn to one file: refused up front
    for folder in ('a', 'b'):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 'img.jpg').write_bytes(b'x')
    assert 'would both be drawn to' in fails([
        'infer_onnx',
        os.path.join(ROOT, 'README.md'), config,
        str(tmp_path / 'a' / 'img.jpg'),
        str(tmp_path / 'b' / 'img.jpg'), '--out-dir',
        str(tmp_path / 'vis')
    ])
    assert not (tmp_path / 'vis').exists()


def test_detections_are_compared_as_sets_not_lists():
    """NMS may list boxes of near-equal scores in either order: rows are
    paired by label, box and score before comparing; another label, or a
    box without a counterpart, still counts."""
    dets = np.array(
        [[[0, 0, 10, 10, .9], [5, 5, 20, 20, .90001], [1, 1, 2, 2, .5]]],
        np.float32)
    labels = np.array([[1, 2, 1]])
    want = dict(dets=dets, labels=labels)
    swapped = dict(dets=dets[:, [1, 0, 2]], labels=labels[:, [1, 0, 2]])
    found = onnx.differences(want, swapped)
    assert found['boxes'] == 0 and found['labels'] == 0
    relabelled = dict(dets=swapped['dets'], labels=np.array([[1, 1, 1]]))
    assert onnx.differences(want, relabelled)['labels'] > 0
    moved = swapped['dets'].copy()
    moved[0, 2, :4] += 7
    assert onnx.differences(want, dict(dets=moved,
                                       labels=swapped['labels']))['boxes'] >= 7


def _identity_graph(path, output):
    """A tiny ONNX file: its (1, 3, 8, 8) 'input' passed on as ``output``."""
    import onnx as onnx_lib
    from onnx import TensorProto, helper

    def info(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                             [1, 3, 8, 8])

    graph = helper.make_graph(
        [helper.make_node('Identity', ['input'], [output])], 'g',
        [info('input')], [info(output)])
    onnx_lib.save(
        helper.make_model(graph, ir_version=8,
                          opset_imports=[helper.make_opsetid('', 17)]),
        str(path))
    return str(path)


def test_predictor_refuses_what_is_not_a_whole_model(tmp_path):
    """A backbone graph, a file that is not ONNX and an input the graph
    cannot take are each one clear error, not an onnxruntime traceback or
    a KeyError on the first image."""
    from efficientvit_mm.deploy.onnx_predictor import OnnxPredictor
    from efficientvit_mm.errors import UserError
    cfg = load_config(os.path.join(ROOT, 'configs', 'efficientvit_m0_in1k.py'))
    backbone = _identity_graph(tmp_path / 'backbone.onnx', 'stage0')
    with pytest.raises(UserError, match=r"no output \['logits'\]"):
        OnnxPredictor(backbone, cfg)
    text = tmp_path / 'text.onnx'
    text.write_text('not a graph')
    with pytest.raises(UserError, match='onnxruntime cannot load'):
        OnnxPredictor(str(text), cfg)
    predictor = OnnxPredictor(
        _identity_graph(tmp_path / 'm.onnx', 'logits'), cfg)
    assert predictor.run(torch.ones(1, 3, 8, 8))['logits'].sum() == 192
    with pytest.raises(UserError, match=r'input of shape \(1, 3, 4, 4\)'):
        predictor.run(torch.ones(1, 3, 4, 4))


def test_checks_run_on_the_first_images_and_refuse_none():
    """verify() and the precision check count their images alike; an
    empty val set (or asking for none) is a clear error, not an
    IndexError when the first image is timed."""
    from efficientvit_mm.deploy.verify import images_to_check
    from efficientvit_mm.errors import UserError
    assert images_to_check(range(5), None) == 5
    assert images_to_check(range(5), 3) == 3
    assert images_to_check(range(5), 9) == 5
    with pytest.raises(UserError, match='holds 0'):
        images_to_check([], None)
    with pytest.raises(UserError, match='0 asked for'):
        images_to_check(range(5), 0)


def test_a_model_without_a_deploy_mode_exports_as_it_is(tmp_path):
    """Another backbone (a tiny mmpretrain ResNet) has nothing for
    switch_to_deploy to fold: it is exported unfolded, and exact."""
    from helpers.tiny_models import build_tiny, write_tiny_config
    cfg = load_config(write_tiny_config(tmp_path, 'resnet'))
    model = randomise(build_tiny('resnet'))
    path = str(tmp_path / 'resnet.onnx')
    reference = onnx.export_model(model, cfg, (32, 32), path)
    x = torch.randn(2, 3, 40, 48)
    want = reference([x])[0][0].numpy()
    got = onnx.ort_session(path).run(None, {'input': x.numpy()})[0]
    assert np.abs(got - want).max() <= 1e-4 * max(1., np.abs(want).max())
