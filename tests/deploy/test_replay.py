"""A deploy forward recorded once per input signature and replayed from C++
(deploy.replay): the same answer as the Python forward, and the Python
forward wherever the recording may be stale or must not be used."""
import copy
import logging
import pickle

import pytest
import torch
import torch.nn as nn

from efficientvit_mm.deploy import native, replay
from efficientvit_mm.deploy.switch import switch_to_deploy
from efficientvit_mm.models import EfficientViT
from efficientvit_mm.testing import randomise

CL = torch.channels_last


@pytest.fixture(scope='module', autouse=True)
def kernels():
    # tools/setup_env.sh builds them: here they must load, not be skipped
    assert native.load(build_missing=False), native._state.get('error')


def _backbone(arch='m0', **kwargs):
    model = randomise(EfficientViT(arch, **kwargs)).eval()
    model.switch_to_deploy()
    return model.to(memory_format=CL)


def _counting(model):
    """Count the calls of ``model``'s Python forward (the replay calls
    ``model._features`` only where it does not replay)."""
    python = model._features
    calls = []

    def features(x):
        calls.append(tuple(x.shape))
        return python(x)

    model._features = features
    return calls


def _python(model, x):
    """``model``'s Python forward (its class's, uncounted)."""
    with torch.no_grad():
        return type(model)._features(model, x)


def _equal(a, b):
    return len(a) == len(b) and all(x.shape == y.shape and torch.equal(x, y)
                                    for x, y in zip(a, b))


@pytest.mark.parametrize(
    'shape,layout',
    [
        ((1, 3, 64, 64), CL),
        ((2, 3, 100, 76), CL),
        ((1, 3, 96, 128), torch.contiguous_format),
        ((1, 3, 40, 40), CL),  # maps smaller than a window
    ])
def test_replay_is_the_python_forward(shape, layout):
    """The first call runs in Python, the second records, and from then on
    the recording runs: the same maps, bit for bit, in the input's
    layout."""
    model = _backbone()
    calls = _counting(model)
    x = torch.randn(shape).contiguous(memory_format=layout)
    want = _python(model, x)
    with torch.no_grad():
        outs = [model(x) for _ in range(4)]
    assert calls == [shape, shape]  # the plain call and the recorded one
    for out in outs:
        assert _equal(out, want)
        assert all(o.is_contiguous(memory_format=layout) for o in out)
    (recording, ) = model._replay.recordings.values()
    assert recording.program.size() > 100


def test_replay_of_every_arch_and_under_two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for arch in ('m1', 'm5'):
            model = _backbone(arch)
            x = torch.randn(2, 3, 80, 112).contiguous(memory_format=CL)
            want = _python(model, x)
            with torch.inference_mode():
                outs = [model(x) for _ in range(3)]
            assert model._replay.recordings
            assert all(_equal(out, want) for out in outs)
    finally:
        torch.set_num_threads(threads)


def test_each_input_signature_has_its_own_recording():
    """Shape, strides (layout) and inference mode key the recordings; a
    shape seen once is never recorded, and few are kept."""
    model = _backbone()
    calls = _counting(model)
    a = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
    b = torch.randn(1, 3, 64, 96).contiguous(memory_format=CL)
    with torch.no_grad():
        for x in (a, b, a.contiguous(), a, b):
            model(x)
    assert len(model._replay.recordings) == 2  # a and b, channels_last
    with torch.inference_mode():
        model(a)
        model(a)
    assert len(model._replay.recordings) == 3
    assert len(calls) == 3 + 2 + 2  # seen once: a NCHW; then 2 per key
    first = set(model._replay.recordings)
    del calls[:]
    with torch.no_grad():  # once full, new signatures stay in Python
        for width in range(32, 32 + 4 * replay.MAX_RECORDINGS, 4):
            x = torch.randn(1, 3, 32, width)
            for _ in range(3):
                model(x)
        model(a)
    assert len(model._replay.recordings) == replay.MAX_RECORDINGS
    assert first < set(model._replay.recordings)
    assert len(calls) == 2 + 3 * (replay.MAX_RECORDINGS - 1)


def _replaying(model, x):
    """Run ``model`` until it replays ``x``; its output."""
    with torch.no_grad():
        for _ in range(3):
            out = model(x)
    return out


@pytest.mark.parametrize('edit', [
    'in_place', 'new_parameter', 'load_state_dict', 'attention_bias',
    'out_indices', 'new_module'
])
def test_an_edit_after_recording_is_seen(edit):
    """Weights edited in place, replaced or loaded, and the config the
    forward reads, all reach the next call: it records again."""
    model = _backbone()
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
    _replaying(model, x)
    conv = model.stages[1].blocks[0].pre.ffn.pw1.conv
    with torch.no_grad():
        if edit == 'in_place':
            conv.weight.mul_(2.)
        elif edit == 'new_parameter':
            conv.weight = nn.Parameter(conv.weight * 2.)
        elif edit == 'load_state_dict':
            other = randomise(EfficientViT('m0'), seed=5).eval()
            other.switch_to_deploy()
            model.load_state_dict(other.state_dict())
        elif edit == 'attention_bias':
            model.stages[0].blocks[0].attn.attention_biases.add_(1.)
        elif edit == 'out_indices':
            model.out_indices = [2]
        elif edit == 'new_module':
            model.stages[2].blocks[0] = nn.Identity()
    calls = _counting(model)
    want = _python(model, x)
    got = _replaying(model, x)
    assert _equal(got, want)
    assert len(calls) == 2  # stale: a plain call, then a new recording
    assert _equal(_replaying(model, x), want)


def test_hooks_and_training_see_the_python_forward():
    model = _backbone()
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
    want = _replaying(model, x)
    calls = _counting(model)
    seen = []
    handle = model.stages[1].register_forward_hook(
        lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        assert _equal(model(x), want)
    assert len(seen) == 1 and len(calls) == 1
    handle.remove()
    handle = nn.modules.module.register_module_forward_hook(
        lambda m, i, o: seen.append(type(m)))
    with torch.no_grad():
        model(x)
    handle.remove()
    assert len(calls) == 2 and EfficientViT in seen
    model.train()
    with torch.no_grad():
        model(x)
    assert len(calls) == 3
    model.eval()
    with torch.no_grad():
        _replaying(model, x)
    assert len(calls) == 5  # eval again: a plain call, a recording, a replay


def test_autograd_tracing_and_modes_run_the_python_forward():
    model = _backbone()
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
    _replaying(model, x)
    calls = _counting(model)
    model(x)  # autograd on
    with torch.no_grad():
        torch.jit.trace(model, x, check_trace=False)
        from torch.utils.flop_counter import FlopCounterMode
        with FlopCounterMode(display=False) as counter:
            model(x)
    assert counter.get_total_flops() > 0
    assert len(calls) == 3
    with torch.no_grad():
        model(x)
    assert len(calls) == 3  # replayed again


def test_without_kernels_nothing_is_replayed(monkeypatch):
    monkeypatch.setattr(native, 'available', lambda: False)
    model = _backbone()
    calls = _counting(model)
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
    _replaying(model, x)
    assert len(calls) == 3 and not model._replay.recordings


class _Toy(nn.Module):
    """A forward of assorted operators, replayed through ForwardReplay."""

    def __init__(self, step=None):
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.step = step
        self.replay = replay.ForwardReplay()
        self.calls = 0

    def _python(self, x):
        self.calls += 1
        a, b = x.split([3, 5], dim=1)
        y = torch.cat([b, a, self.linear.weight[:1].expand(x.shape[0], 8)],
                      dim=1)
        y = y[:, :8].contiguous().to(torch.float64).relu_()
        y = y.float() * 2.0 + 1 + self.linear(x).permute(1, 0).t()
        torch._foreach_add_([y], 0.5)  # an operator without returns
        if self.step is not None:
            y = self.step(y)
        return {'y': y, 'parts': [a.clone(), y.sum(1)]}

    def forward(self, x):
        return self.replay(self, self._python, x)


def test_assorted_operators_and_outputs_replay():
    toy = _Toy().eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        want = toy._python(x)
        outs = [toy(x) for _ in range(4)]
    assert toy.calls == 3  # want, the plain call, the recording
    for out in outs:
        assert out.keys() == want.keys()
        assert torch.equal(out['y'], want['y'])
        assert all(map(torch.equal, out['parts'], want['parts']))


@pytest.mark.parametrize(
    'step,why',
    [
        (lambda y: y * float(y.sum()), 'returns float'),
        (lambda y: y + torch.rand_like(y), 'draws random numbers'),
        (lambda y: _Toy.cache.add_(y[0]) + y, 'writes into a tensor'),
        # a tensor made in the forward, then written: a fresh one each call
        (lambda y: y - torch.tensor([-1e9]).clamp_(min=y.max()),
         'writes into a tensor'),
    ])
def test_a_forward_that_cannot_be_recorded_runs_in_python(step, why, caplog):
    _Toy.cache = torch.zeros(8)
    toy = _Toy(step).eval()
    with caplog.at_level(logging.DEBUG, logger=replay.__name__):
        with torch.no_grad():
            for i in range(4):
                x = torch.randn(4, 8,
                                generator=torch.Generator().manual_seed(i % 2))
                _Toy.cache.zero_()
                torch.manual_seed(i)
                got = toy(x)
                _Toy.cache.zero_()
                torch.manual_seed(i)
                assert torch.equal(got['y'], toy._python(x)['y'])
    assert toy.calls == 8
    assert any(why in r.getMessage() for r in caplog.records)


def test_a_forward_that_writes_into_its_input_runs_in_python(caplog):
    """The recorded call wrote into the input once, as Python does; the
    replay would write into it again."""
    toy = _Toy(None).eval()
    toy._python = lambda x: (x.sub_(1.), )
    x = torch.zeros(2, 3)
    with caplog.at_level(logging.DEBUG, logger=replay.__name__):
        with torch.no_grad():
            for i in range(1, 4):
                toy(x)
                assert torch.equal(x, torch.full((2, 3), -float(i)))
    assert any('writes into the input' in r.getMessage()
               for r in caplog.records)


def test_a_recording_that_differs_is_dropped_loudly(monkeypatch):
    monkeypatch.setattr(replay, '_same', lambda a, b: False)
    model = _backbone()
    calls = _counting(model)
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
    want = _python(model, x)
    with pytest.warns(UserWarning, match='did not reproduce'):
        outs = [_replaying(model, x), _replaying(model, x)]
    assert all(_equal(out, want) for out in outs)
    assert len(calls) == 6 and model._replay.disabled


def test_nan_outputs_replay():
    """A NaN in the recorded output is the same NaN in its replay."""
    toy = _Toy(lambda y: y * float('nan')).eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        outs = [toy(x)['y'] for _ in range(4)]
    assert toy.calls == 2 and not toy.replay.disabled
    assert all(out.isnan().all() for out in outs)


@pytest.mark.parametrize('edit', ['insert', 'pop', 'del', 'dict'])
def test_modules_added_or_removed_in_place_are_seen(edit):
    """ModuleList's insert, pop and del, and writes into ``_modules``,
    register nothing: the model's structure is compared on each call."""
    model = _backbone()
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
    _replaying(model, x)
    blocks = model.stages[1].blocks
    if edit == 'insert':
        blocks.insert(0, nn.ReLU())
    elif edit == 'pop':
        blocks.pop(-1)
    elif edit == 'del':
        del blocks[-1]
    else:
        blocks._modules['0'] = nn.Identity()
    seen = []
    blocks[0].register_forward_hook(lambda m, i, o: seen.append(1))
    want = _python(model, x)
    assert len(seen) == 1
    got = _replaying(model, x)
    assert _equal(got, want) and len(seen) == 4  # hooked: Python forward


def test_functional_call_gets_its_own_weights():
    model = _backbone()
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
    own = _replaying(model, x)
    other = {
        name: t * 2. if t.is_floating_point() else t
        for name, t in model.state_dict().items()
    }
    with torch.no_grad():
        for _ in range(3):
            got = torch.func.functional_call(model, other, (x, ))
            assert not _equal(got, own)
    assert _equal(_replaying(model, x), own)


def test_conversions_and_loads_with_swapped_tensors():
    """With PyTorch's swap-on-conversion, ``.to()`` and ``load_state_dict``
    swap the parameters' tensors, which the recordings would hold."""
    swap = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        model = _backbone()
        x = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
        _replaying(model, x)
        model.load_state_dict(model.state_dict())
        _replaying(model, x)
        model.double()
        got = _replaying(model, x.double())
        assert _equal(got, _python(model, x.double()))
    finally:
        torch.__future__.set_swap_module_params_on_conversion(swap)


def test_a_replayed_model_is_freed_without_the_cycle_collector():
    import gc
    import weakref
    model = _backbone()
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
    _replaying(model, x)
    alive = weakref.ref(model)
    gc.disable()
    try:
        del model
        assert alive() is None
    finally:
        gc.enable()


def test_hooks_on_the_model_itself_run_around_the_replay():
    model = _backbone()
    calls = _counting(model)
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(1))
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
    _replaying(model, x)
    assert len(seen) == 3 and len(calls) == 2  # the third call replayed


def test_autocast_runs_the_python_forward():
    toy = _Toy().eval()
    x = torch.randn(4, 8)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        for _ in range(3):
            toy(x)
    assert toy.calls == 3 and not toy.replay.recordings


def test_copies_record_their_own():
    model = _backbone()
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=CL)
    want = _replaying(model, x)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert not twin._replay.recordings
        with torch.no_grad():
            twin.stages[0].blocks[0].pre.ffn.pw1.conv.weight.mul_(2.)
        assert not _equal(_replaying(twin, x), want)
        assert twin._replay.recordings
    assert _equal(_replaying(model, x), want)


def test_whole_detector_replays_its_backbone():
    """A folded RetinaNet gives the same boxes with its backbone replayed:
    mmdet's NCHW inputs, whatever their size."""
    from helpers.deploy import config, random_model
    model = random_model(config('demo/retinanet_efficientvit_m0_shapes.py'))
    switch_to_deploy(model)
    x = torch.randn(1, 3, 96, 128)
    backbone = model.backbone
    with torch.no_grad():
        backbone._replay.disabled = 'off'
        want = model(x, mode='tensor')
        backbone._replay.disabled = None
        outs = [model(x, mode='tensor') for _ in range(3)]
    assert backbone._replay.recordings
    for out in outs:
        assert all(_equal(a, b) for a, b in zip(out, want))


def test_op_replay_refuses_a_malformed_step():
    """OpReplay is reachable as torch.classes.efficientvit_mm.OpReplay: a
    step naming slots or constants it does not have is an error, not a
    read out of bounds."""
    program = torch.classes.efficientvit_mm.OpReplay()
    relu = ('aten::relu', '')
    cases = [
        ([replay.SLOT, 5, 0], [0, 1, 1], [], 'reads slot 5'),
        ([replay.SLOT, 0, 0], [0, 1, -3], [], 'negative output slot'),
        ([replay.SLOT, 0, 0], [0, 2, 1, 2], [], 'bad output spec'),
        ([replay.SLOT, 0, 0], [0, 1, 1], [9], 'releases slot 9'),
        ([replay.TENSOR, 4, 0], [0, 1, 1], [], 'range'),
    ]
    for spec, out_spec, release, error in cases:
        with pytest.raises(RuntimeError, match=error):
            program.add_step(*relu, spec, [], [], [], [], out_spec, release)
    program.add_step(*relu, [replay.SLOT, 0, 0], [], [], [], [], [0, 1, 1],
                     [0])
    with pytest.raises(RuntimeError, match='never written'):
        program.set_outputs([2])
    program.set_outputs([1])
    x = torch.randn(3)
    assert torch.equal(program.run(x)[0], x.relu())
