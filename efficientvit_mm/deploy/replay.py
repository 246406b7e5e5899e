"""A deploy forward's operator calls, recorded once per input shape and
replayed from C++ at CPU inference.

EfficientViT is a small network of small layers: M0 makes about 800
operator calls per forward, and in eager PyTorch the Python around them
(module calls, attribute reads, the runner's choices) costs about as much
as the gap to onnxruntime. The operators a deploy forward calls, and their
arguments, depend only on the input's shape: :class:`ForwardReplay` records
them once (through a dispatch mode, on the second call with a given input
signature) and from then on calls the same sequence from C++
(``torch.classes.efficientvit_mm.OpReplay``, ``csrc/replay.cpp``), the new
input in place of the old. The kernels are the same, so the results are the
same; the first replay is checked against the recorded call.

A recording is used only while it is known to match what the Python forward
would do, so it is dropped and the forward runs in Python whenever:

* the input's shape, strides, dtype or inference mode differ (each such
  signature has a recording of its own; the first :data:`MAX_RECORDINGS`
  seen twice are recorded, others stay in Python);
* a parameter or buffer was replaced, registered or moved, or edited in
  place (its data pointer and version are watched, from C++);
* a module is added or replaced, or the training flags change;
* a forward hook is registered on any module of the model, or globally
  (hooks must see the Python forward);
* autograd is on, the input is not a plain CPU tensor, or the forward is
  traced, exported or compiled, or runs under a dispatch or function mode.

A forward that calls something a recording cannot hold (an operator that
returns a Python number, draws random numbers or writes into a tensor it did
not create) is never replayed; the reason is logged once at debug level.
Plain attributes the forward reads are watched where the caller passes them
(the backbone passes ``out_indices``); after editing any other by hand, call
:meth:`ForwardReplay.clear`. Edits through ``.data`` bypass version
counters and are not seen, as they are not by the folded convs' packed
weights (:mod:`.cpu_conv`).
"""
import logging
import operator
import warnings
import weakref
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn
from torch.nn.modules import module as _module
from torch.utils import _python_dispatch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakIdKeyDictionary

from . import native

logger = logging.getLogger(__name__)

# argument kinds, as csrc/replay.cpp reads them
NONE, SLOT, TENSOR, INT, FLOAT, BOOL, INT_LIST, STRING, TENSOR_LIST, \
    EMPTY_LIST, DEVICE, OPTIONAL_TENSOR_LIST = range(12)
NO_TENSOR = -2**62  # a None in an OPTIONAL_TENSOR_LIST
# c10's enum values, which TorchScript's serialisation also fixes
_ENUMS = {
    torch.uint8: 0,
    torch.int8: 1,
    torch.int16: 2,
    torch.int32: 3,
    torch.int64: 4,
    torch.float16: 5,
    torch.float32: 6,
    torch.float64: 7,
    torch.bool: 11,
    torch.bfloat16: 15,
    torch.contiguous_format: 0,
    torch.preserve_format: 1,
    torch.channels_last: 2,
    torch.channels_last_3d: 3,
    torch.strided: 0,
}
# input signatures recorded per model (the first ones seen twice), and
# signatures whose calls are counted
MAX_RECORDINGS = 4
MAX_SEEN = 64

_NEVER = -1  # seen count of a signature whose forward cannot be recorded
_TRAINING = operator.attrgetter('training')
# bumped whenever a watched module (one of a replayed model) registers a
# parameter, buffer or submodule
_epoch = [0]
_watched: 'weakref.WeakSet[nn.Module]' = weakref.WeakSet()


def _bump(module, *args) -> None:
    if module in _watched:
        _epoch[0] += 1


def _watch_registrations() -> bool:
    """Count every parameter, buffer and submodule registration of a watched
    module from now on (hooks set once per process: True the first time): a
    recording made before one may be stale."""
    if _epoch[0]:
        return False
    _epoch[0] = 1
    _module.register_module_parameter_registration_hook(_bump)
    _module.register_module_buffer_registration_hook(_bump)
    _module.register_module_module_registration_hook(_bump)
    return True


class Unsupported(Exception):
    """The forward called something a recording cannot hold."""


def _list_type(schema_type) -> str:
    """'Tensor', 'int' or another element type name, for a list argument;
    '' for a non-list one."""
    kind = str(schema_type)
    if kind.startswith('Optional['):
        kind = kind[len('Optional['):-1]
    if not kind.startswith('List['):
        return ''
    return kind[len('List['):-1]


class _Step:
    """One operator call, in the codes ``OpReplay.add_step`` reads."""

    def __init__(self, func):
        schema = func._schema
        self.name, self.overload = schema.name, schema.overload_name
        self.spec: List[int] = []
        self.ints: List[int] = []
        self.floats: List[float] = []
        self.strings: List[str] = []
        self.tensors: List[torch.Tensor] = []
        self.out_spec: List[int] = []
        self.reads: List[int] = []

    def add(self, kind: int, a: int = 0, b: int = 0) -> None:
        self.spec += [kind, a, b]


class _Recorder(TorchDispatchMode):
    """Runs a forward and writes down each operator call, tensors by slot
    (the input is slot 0; each output gets a new slot) or, where no call
    of this forward made them, as constants (weights, packed weights)."""

    def __init__(self, x: torch.Tensor):
        super().__init__()
        self.slot_of = WeakIdKeyDictionary()
        self.slot_of[x] = 0
        self.slots = 1
        self.steps: List[_Step] = []
        self.error: Optional[str] = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.error is None:
            try:
                self.steps.append(self._step(func, args, kwargs, out))
            except Unsupported as exc:
                self.error = str(exc)
        return out

    def _step(self, func, args, kwargs, out) -> _Step:
        if not isinstance(func, torch._ops.OpOverload):
            raise Unsupported(f'{func} is not an operator overload')
        if torch.Tag.nondeterministic_seeded in func.tags:
            raise Unsupported(f'{func} draws random numbers')
        step = _Step(func)
        schema = func._schema
        for i, arg in enumerate(schema.arguments):
            if i < len(args) and not arg.kwarg_only:
                value = args[i]
            elif arg.name in kwargs:
                value = kwargs[arg.name]
            elif arg.has_default_value():
                value = arg.default_value
            else:
                raise Unsupported(f'{func}: no value for {arg.name}')
            writes = arg.alias_info is not None and arg.alias_info.is_write
            self._encode(step, func, arg, value, writes)
        results = out if len(schema.returns) != 1 else (out, )
        for ret, value in zip(schema.returns, results):
            if isinstance(value, torch.Tensor):
                step.out_spec += [0, 1, self._output_slot(value)]
            elif isinstance(value, (list, tuple)) and all(
                    isinstance(t, torch.Tensor) for t in value):
                step.out_spec += [1, len(value)
                                  ] + [self._output_slot(t) for t in value]
            else:
                raise Unsupported(f'{func} returns {type(value).__name__}, '
                                  f'which the replay cannot hand on')
        return step

    def _output_slot(self, tensor: torch.Tensor) -> int:
        slot = self.slot_of.get(tensor)
        if slot is None:  # a new tensor (an in-place op returns its input)
            slot = self.slot_of[tensor] = self.slots
            self.slots += 1
        return slot

    def _tensor_ref(self, step: _Step, func, tensor: torch.Tensor,
                    writes: bool) -> int:
        """>= 0: the slot of ``tensor``; < 0: -1 - its constant index."""
        slot = self.slot_of.get(tensor)
        if slot is not None:
            step.reads.append(slot)
            return slot
        if writes:
            raise Unsupported(f'{func} writes into a tensor this forward '
                              f'did not make')
        if type(tensor) not in (torch.Tensor, nn.Parameter):
            raise Unsupported(f'{func} reads a {type(tensor).__name__}')
        step.tensors.append(tensor)
        return -len(step.tensors)

    def _encode(self, step: _Step, func, arg, value, writes: bool) -> None:
        if value is None:
            step.add(NONE)
        elif isinstance(value, torch.Tensor):
            ref = self._tensor_ref(step, func, value, writes)
            step.add(SLOT, ref) if ref >= 0 else step.add(TENSOR, -1 - ref)
        elif isinstance(value, bool):
            step.ints.append(int(value))
            step.add(BOOL, len(step.ints) - 1)
        elif isinstance(value, int) and str(arg.type) != 'float':
            step.ints.append(value)
            step.add(INT, len(step.ints) - 1)
        elif isinstance(value, (int, float)):
            step.floats.append(float(value))
            step.add(FLOAT, len(step.floats) - 1)
        elif isinstance(value, str):
            step.strings.append(value)
            step.add(STRING, len(step.strings) - 1)
        elif isinstance(value, torch.device):
            step.strings.append(str(value))
            step.add(DEVICE, len(step.strings) - 1)
        elif isinstance(value, (torch.dtype, torch.memory_format,
                                torch.layout)) and value in _ENUMS:
            step.ints.append(_ENUMS[value])
            step.add(INT, len(step.ints) - 1)
        elif isinstance(value, (list, tuple)):
            self._encode_list(step, func, arg, list(value), writes)
        else:
            raise Unsupported(f'{func}: argument {arg.name} is a '
                              f'{type(value).__name__}')

    def _encode_list(self, step: _Step, func, arg, value: list,
                     writes: bool) -> None:
        element = _list_type(arg.type)
        start = len(step.ints)
        if element == 'Tensor' and all(
                isinstance(t, torch.Tensor) for t in value):
            step.ints += [
                self._tensor_ref(step, func, t, writes) for t in value
            ]
            step.add(TENSOR_LIST, start, len(value))
        elif element == 'Optional[Tensor]' and all(
                t is None or isinstance(t, torch.Tensor) for t in value):
            step.ints += [
                NO_TENSOR if t is None else self._tensor_ref(
                    step, func, t, writes) for t in value
            ]
            step.add(OPTIONAL_TENSOR_LIST, start, len(value))
        elif element in ('int', 'SymInt') and all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            step.ints += value
            step.add(INT_LIST, start, len(value))
        elif not value and element:
            step.add(EMPTY_LIST)
        else:
            raise Unsupported(f'{func}: argument {arg.name} is a list of '
                              f'{element or "values"} it cannot hold')


def _record(forward: Callable, x: torch.Tensor):
    """``forward(x)`` and its recording: (output, OpReplay, output spec),
    or (output, None, why not)."""
    recorder = _Recorder(x)
    with recorder:
        out = forward(x)
    leaves, spec = pytree.tree_flatten(out)
    error = recorder.error
    if error is None and not all(
            isinstance(t, torch.Tensor) and t in recorder.slot_of
            for t in leaves):
        error = 'the forward returns something no operator of it made'
    if error is not None:
        return out, None, error
    outputs = [recorder.slot_of[t] for t in leaves]
    last_read = {}
    for i, step in enumerate(recorder.steps):
        for slot in step.reads + _written(step):
            last_read[slot] = i
    releases: Dict[int, List[int]] = {}
    for slot, i in last_read.items():
        if slot not in outputs:
            releases.setdefault(i, []).append(slot)
    program = torch.classes.efficientvit_mm.OpReplay()
    for i, step in enumerate(recorder.steps):
        program.add_step(step.name, step.overload, step.spec, step.ints,
                         step.floats, step.strings, step.tensors,
                         step.out_spec, sorted(releases.get(i, [])))
    program.set_outputs(outputs)
    return out, program, spec


def _written(step: _Step) -> List[int]:
    """The slots a step writes (per return: is_list, n, n slots)."""
    slots, i = [], 0
    while i < len(step.out_spec):
        n = step.out_spec[i + 1]
        slots += step.out_spec[i + 2:i + 2 + n]
        i += 2 + n
    return slots


def _applies(x) -> bool:
    """Whether an inference call on ``x`` may be replayed at all: a plain
    CPU tensor, no autograd, not traced (TorchScript, ONNX), compiled or
    exported, no dispatch or function mode, no global forward hook, and
    the library built."""
    return (not torch.compiler.is_compiling() and type(x) is torch.Tensor
            and x.is_cpu and not torch.is_grad_enabled()
            and not torch._C._get_tracing_state()
            and not _python_dispatch.is_in_torch_dispatch_mode()
            and not torch._C._is_torch_function_mode_enabled()
            and not (_module._global_forward_hooks
                     or _module._global_forward_pre_hooks)
            and native.available())


class _Recording:
    """One input signature's OpReplay and its output structure."""

    def __init__(self, program, spec):
        self.program, self.spec = program, spec

    def __call__(self, x: torch.Tensor):
        return pytree.tree_unflatten(self.program.run(x), self.spec)


class ForwardReplay:
    """Records and replays one module's forward at CPU inference; see the
    module's docstring for when it does. ``replay(module, forward, x,
    config)`` is ``forward(x)``, where ``forward`` computes ``module``'s
    output (its Python forward) and ``config`` holds the plain attributes
    it reads that may change between calls. Not copied by ``deepcopy`` or
    pickling: a copy records its own."""

    def __init__(self):
        self.clear()
        self.disabled: Optional[str] = None

    def clear(self) -> None:
        """Forget every recording (after an edit the replay cannot see)."""
        self.recordings: Dict[tuple, _Recording] = {}
        self.seen: 'OrderedDict[tuple, int]' = OrderedDict()  # calls per key
        self.state: Optional[tuple] = None  # what they were made under
        self.modules: List[nn.Module] = []
        self.hooks: List[dict] = []

    def __getstate__(self):
        return dict(disabled=self.disabled)

    def __setstate__(self, state):
        self.clear()
        self.disabled = state.get('disabled')

    def __deepcopy__(self, memo):
        fresh = ForwardReplay()
        fresh.disabled = self.disabled
        return fresh

    def _state(self, module: nn.Module, config: tuple) -> Optional[tuple]:
        """What the module's Python forward depends on besides its tensors
        and the input: None where it has forward hooks."""
        if not self.modules:  # the hooks of a module live in these dicts
            self.modules = list(module.modules())
            _watched.update(self.modules)
            self.hooks = [
                hooks for m in self.modules
                for hooks in (m._forward_hooks, m._forward_pre_hooks)
            ]
        if any(self.hooks):
            return None
        return (_epoch[0], tuple(map(_TRAINING, self.modules)), config)

    def __call__(self, module: nn.Module, forward: Callable, x: torch.Tensor,
                 config: tuple = ()):
        if self.disabled is not None or not _applies(x):
            return forward(x)
        state = self._state(module, config)
        if state != self.state:  # a new module, training flag or config
            self.clear()
            state = self.state = self._state(module, config)
        if state is None:  # hooks must see the Python forward
            return forward(x)
        key = (tuple(x.shape), x.stride(), x.dtype,
               torch.is_inference_mode_enabled())
        recording = self.recordings.get(key)
        if recording is not None:
            if recording.program.current():
                return recording(x)
            # a parameter or buffer moved or was edited: the Python
            # forward's caches refill on the next call, then it records
            self.recordings.clear()
            self.seen.clear()
        seen = self.seen.pop(key, 0)
        seen = self.seen[key] = seen + 1 if seen != _NEVER else seen
        while len(self.seen) > MAX_SEEN:
            self.seen.popitem(last=False)
        # the first call fills the forward's caches; once full, other
        # signatures stay in Python (evicting one would record again and
        # again where shapes take turns)
        if seen != 2 or len(self.recordings) >= MAX_RECORDINGS:
            return forward(x)
        return self._record(module, forward, x, key)

    def _record(self, module, forward, x, key):
        if _watch_registrations():  # from now on: the state moves with them
            self.state = self._state(module, self.state[2])
        out, program, spec = _record(forward, x)
        if program is None:
            logger.debug('%s is not replayed for inputs %s: %s',
                         type(module).__name__, key[:3], spec)
            self.seen[key] = _NEVER
            return out
        program.watch(list(module.parameters()) + list(module.buffers()))
        recording = _Recording(program, spec)
        if not _same(recording(x), out):
            self.disabled = ('its replay did not reproduce the Python '
                             'forward')
            warnings.warn(f'{type(module).__name__}: {self.disabled}; it '
                          f'runs in Python from now on')
        else:
            self.recordings[key] = recording
        return out


def _same(a, b) -> bool:
    a, b = pytree.tree_leaves(a), pytree.tree_leaves(b)
    return len(a) == len(b) and all(
        x.shape == y.shape and x.stride() == y.stride() and torch.equal(x, y)
        for x, y in zip(a, b))
