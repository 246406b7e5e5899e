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
* the model holds other modules, parameters or buffers than it did (added,
  removed, replaced, swapped in by ``functional_call``: compared by identity
  on each call), or a training flag changed;
* a parameter or buffer was edited in place or given new data (its version
  and data pointer, checked from C++);
* a module inside the model has a forward hook, or a global one is set
  (hooks must see the Python forward; the model's own hooks run around
  the replay);
* autograd is on, the input is not a plain CPU tensor, or the forward is
  traced, exported or compiled, or runs under a dispatch or function mode,
  a functorch transform (``vmap``) or autocast.

A forward that calls something a recording cannot hold (an operator that
returns a Python number, draws random numbers, or writes into its input or
into a tensor the forward did not make) is never replayed; the reason is
logged at debug level. Calls that read only constants (views and packings
of weights) are computed once, when recording. Plain attributes the forward
reads are watched where the caller passes them (the backbone passes
``out_indices``); after editing any other by hand, call
:meth:`ForwardReplay.clear`. Edits through ``.data`` bypass version
counters and are not seen, as they are not by the folded convs' packed
weights (:mod:`.cpu_conv`).
"""
import logging
import operator
import warnings
from collections import OrderedDict
from itertools import chain
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from torch.nn.modules import module as _module
from torch.utils import _python_dispatch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakIdKeyDictionary

from . import native
from .cpu_conv import inference_call

logger = logging.getLogger(__name__)

# how an argument is given, as csrc/replay.cpp reads it: (kind, a, b)
NONE, SLOT, TENSOR, INT, FLOAT, BOOL, INT_LIST, STRING, TENSOR_LIST, \
    EMPTY_LIST, DEVICE, OPTIONAL_TENSOR_LIST, WRAPPED_NUMBER = range(13)
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
_NEVER = -1  # the call count of a signature whose forward cannot be recorded
_TRAINING = operator.attrgetter('training')


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


def _tensors(value) -> list:
    """The tensors in an argument (a tensor, or a list holding some)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for t in value if isinstance(t, torch.Tensor)]
    return []


class _Step:
    """One operator call, in the codes ``OpReplay.add_step`` reads. A tensor
    argument is a slot (>= 0) or constant ``i`` of ``tensors``, written
    -1 - i in lists."""

    def __init__(self, func):
        schema = func._schema
        self.name, self.overload = schema.name, schema.overload_name
        self.spec: List[int] = []
        self.ints: List[int] = []
        self.floats: List[float] = []
        self.strings: List[str] = []
        self.tensors: List[torch.Tensor] = []
        self.out_spec: List[int] = []  # per return: is_list, n, n slots
        self.reads: List[int] = []

    def add(self, kind: int, a: int = 0, b: int = 0) -> None:
        self.spec += [kind, a, b]

    def written(self) -> List[int]:
        """The slots this step writes."""
        slots, i = [], 0
        while i < len(self.out_spec):
            n = self.out_spec[i + 1]
            slots += self.out_spec[i + 2:i + 2 + n]
            i += 2 + n
        return slots


class _Recorder(TorchDispatchMode):
    """Runs a forward and writes down each operator call, tensors by slot
    (the input is slot 0; each new output gets a slot) or, where no call of
    this forward made them, as constants (weights, packed weights).

    A call that reads only constants (a view or a packing of a weight) is
    not written down: its outputs are constants too, computed once, here.
    A call that writes into a constant, or into the input or a view of it,
    cannot be recorded (the replay would repeat the write on every call)."""

    def __init__(self, x: torch.Tensor):
        super().__init__()
        self.slot_of = WeakIdKeyDictionary()
        self.slot_of[x] = 0
        self.input_slots = {0}  # the input and views of it
        self.slots = 1
        self.steps: List[_Step] = []
        self.error: Optional[str] = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.error is None:
            try:
                step = self._step(func, args, kwargs, out)
            except Unsupported as exc:
                self.error = str(exc)
            except Exception as exc:  # a call of a kind not foreseen here
                self.error = f'{func}: {type(exc).__name__}: {exc}'
            else:
                if step is not None:
                    self.steps.append(step)
        return out

    def _step(self, func, args, kwargs, out) -> Optional[_Step]:
        if not isinstance(func, torch._ops.OpOverload):
            raise Unsupported(f'{func} is not an operator overload')
        if torch.Tag.nondeterministic_seeded in func.tags:
            raise Unsupported(f'{func} draws random numbers')
        schema = func._schema
        values = []
        for i, arg in enumerate(schema.arguments):
            if i < len(args) and not arg.kwarg_only:
                values.append(args[i])
            elif arg.name in kwargs:
                values.append(kwargs[arg.name])
            elif arg.has_default_value():
                values.append(arg.default_value)
            else:
                raise Unsupported(f'{func}: no value for {arg.name}')
        inputs = [t for v in values for t in _tensors(v)]
        writes = any(a.alias_info is not None and a.alias_info.is_write
                     for a in schema.arguments)
        if inputs and not writes and not any(t in self.slot_of
                                             for t in inputs):
            return None  # reads constants only: its outputs are constants
        step = _Step(func)
        aliases_input = set()  # alias sets of arguments that are the input
        for arg, value in zip(schema.arguments, values):
            self._encode(step, func, arg, value)
            if arg.alias_info is not None and any(
                    self.slot_of.get(t) in self.input_slots
                    for t in _tensors(value)):
                aliases_input |= set(arg.alias_info.before_set)
        results = () if not schema.returns else (
            out, ) if len(schema.returns) == 1 else out
        for ret, value in zip(schema.returns, results):
            is_list = isinstance(value, (list, tuple))
            tensors = value if is_list else [value]
            if not all(isinstance(t, torch.Tensor) for t in tensors):
                raise Unsupported(f'{func} returns {type(value).__name__}, '
                                  f'which the replay cannot hand on')
            slots = [self._output_slot(t) for t in tensors]
            if ret.alias_info is not None and (set(ret.alias_info.before_set)
                                               & aliases_input):
                self.input_slots.update(slots)
            step.out_spec += [int(is_list), len(slots)] + slots
        return step

    def _output_slot(self, tensor: torch.Tensor) -> int:
        slot = self.slot_of.get(tensor)
        if slot is None:  # a new tensor (an in-place op returns its input)
            slot = self.slot_of[tensor] = self.slots
            self.slots += 1
        return slot

    def _tensor_ref(self, step: _Step, func, arg, tensor: torch.Tensor) -> int:
        """>= 0: the slot of ``tensor``; < 0: -1 - its constant index."""
        writes = arg.alias_info is not None and arg.alias_info.is_write
        slot = self.slot_of.get(tensor)
        if slot is not None:
            if writes and slot in self.input_slots:
                raise Unsupported(f'{func} writes into the input')
            step.reads.append(slot)
            return slot
        if writes:
            raise Unsupported(f'{func} writes into a tensor this forward '
                              f'did not make')
        if type(tensor) not in (torch.Tensor, nn.Parameter):
            raise Unsupported(f'{func} reads a {type(tensor).__name__}')
        step.tensors.append(tensor)
        return -len(step.tensors)

    def _encode(self, step: _Step, func, arg, value) -> None:
        tensor_arg = str(arg.type) in ('Tensor', 'Optional[Tensor]')
        if value is None:
            step.add(NONE)
        elif isinstance(value, torch.Tensor):
            ref = self._tensor_ref(step, func, arg, value)
            step.add(SLOT, ref) if ref >= 0 else step.add(TENSOR, -1 - ref)
        elif tensor_arg and isinstance(value, (bool, int, float)):
            # a Python number where a tensor goes (x * 2.0): a wrapped one
            number = 2 if isinstance(value, bool) else int(
                isinstance(value, float))
            if number == 1:
                step.floats.append(value)
            else:
                step.ints.append(int(value))
            step.add(WRAPPED_NUMBER,
                     len(step.floats if number == 1 else step.ints) - 1,
                     number)
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
            self._encode_list(step, func, arg, list(value))
        else:
            raise Unsupported(f'{func}: argument {arg.name} is a '
                              f'{type(value).__name__}')

    def _encode_list(self, step: _Step, func, arg, value: list) -> None:
        element = _list_type(arg.type)
        start = len(step.ints)
        if element == 'Tensor' and all(
                isinstance(t, torch.Tensor) for t in value):
            step.ints += [self._tensor_ref(step, func, arg, t) for t in value]
            step.add(TENSOR_LIST, start, len(value))
        elif element == 'Optional[Tensor]' and all(
                t is None or isinstance(t, torch.Tensor) for t in value):
            step.ints += [
                NO_TENSOR if t is None else self._tensor_ref(
                    step, func, arg, t) for t in value
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


def _program(recorder: _Recorder, outputs: List[int]):
    """The recorded steps as an OpReplay, each slot released after the
    last step that reads or writes it (outputs are kept)."""
    last_use = {}
    for i, step in enumerate(recorder.steps):
        for slot in step.reads + step.written():
            last_use[slot] = i
    releases: Dict[int, List[int]] = {}
    for slot, i in last_use.items():
        if slot not in outputs:
            releases.setdefault(i, []).append(slot)
    program = torch.classes.efficientvit_mm.OpReplay()
    for i, step in enumerate(recorder.steps):
        program.add_step(step.name, step.overload, step.spec, step.ints,
                         step.floats, step.strings, step.tensors,
                         step.out_spec, sorted(releases.get(i, [])))
    program.set_outputs(outputs)
    return program


def _record(forward: Callable, x: torch.Tensor):
    """``forward(x)`` and its recording: ``(output, recording, None)``, or
    ``(output, None, why it cannot be recorded)``."""
    recorder = _Recorder(x)
    with recorder:
        out = forward(x)
    leaves, spec = pytree.tree_flatten(out)
    if recorder.error is not None:
        return out, None, recorder.error
    if not all(
            isinstance(t, torch.Tensor) and t in recorder.slot_of
            for t in leaves):
        return out, None, ('it returns something no operator call of it '
                           'made')
    try:
        program = _program(recorder, [recorder.slot_of[t] for t in leaves])
    except RuntimeError as exc:  # OpReplay refused a step
        return out, None, str(exc)
    return out, _Recording(program, spec), None


def _applies(x) -> bool:
    """Whether an inference call on ``x`` may be replayed at all: a plain
    CPU tensor, no autograd, not traced (TorchScript, ONNX), compiled or
    exported, no dispatch or function mode, no functorch transform (vmap),
    no autocast, no global forward hook, and the library built."""
    return (not torch.compiler.is_compiling() and type(x) is torch.Tensor
            and inference_call(x)
            and not _python_dispatch.is_in_torch_dispatch_mode()
            and not torch._C._is_torch_function_mode_enabled()
            and torch._C._functorch.peek_interpreter_stack() is None
            and not torch.is_autocast_enabled('cpu')
            and not (_module._global_forward_hooks
                     or _module._global_forward_pre_hooks)
            and native.available())


class _Recording:
    """One input signature's OpReplay and its output structure."""

    def __init__(self, program, spec):
        self.program, self.spec = program, spec

    def __call__(self, x: torch.Tensor):
        return pytree.tree_unflatten(self.program.run(x), self.spec)


def _bits(t: torch.Tensor) -> torch.Tensor:
    """``t``'s bits, as integers of its element size (NaNs compare)."""
    as_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    kind = as_int.get(t.element_size())
    return t.view(kind) if kind is not None and t.dtype.is_floating_point \
        else t


def _same(a, b) -> bool:
    """Whether two outputs hold the same tensors, bit for bit."""
    a, b = pytree.tree_leaves(a), pytree.tree_leaves(b)
    return len(a) == len(b) and all(
        x.shape == y.shape and x.stride() == y.stride() and x.dtype == y.dtype
        and torch.equal(_bits(x), _bits(y)) for x, y in zip(a, b))


class ForwardReplay:
    """Records and replays one module's forward at CPU inference; see the
    module's docstring for when it does. ``replay(module, forward, x,
    config)`` is ``forward(x)``, where ``forward`` computes ``module``'s
    output (its Python forward) and ``config`` holds the plain attributes
    it reads that may change between calls. Not copied by ``deepcopy`` or
    pickling: a copy records its own. The owner calls :meth:`clear` before
    its parameters are converted or loaded (the recordings hold them)."""

    def __init__(self):
        self.generation = 0
        self.disabled: Optional[str] = None
        self.clear()

    def clear(self) -> None:
        """Forget every recording (after an edit the replay cannot see)."""
        self.generation += 1
        self.recordings: Dict[tuple, _Recording] = {}
        self.seen: 'OrderedDict[tuple, int]' = OrderedDict()  # calls per key
        self.state: Optional[tuple] = None  # what they were made under
        # the module's descendants (not the module: no reference cycle),
        # their hook dicts and the dicts holding their structure
        self.parts: Optional[List[nn.Module]] = None
        self.hook_dicts: List[dict] = []
        self.structure: List[dict] = []

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self.__init__()

    def __deepcopy__(self, memo):
        return ForwardReplay()

    def _state(self, module: nn.Module, config: tuple) -> Optional[tuple]:
        """What ``module``'s Python forward depends on besides the input and
        the contents of its tensors: which modules, parameters and buffers
        it holds, the training flags and ``config``. None where one of its
        descendants has a forward hook (which must see the Python forward;
        the module's own hooks run around the replay)."""
        if self.parts is None:
            self.parts = [m for m in module.modules() if m is not module]
            self.hook_dicts = [
                hooks for m in self.parts
                for hooks in (m._forward_hooks, m._forward_pre_hooks)
            ]
            # the dicts empty now belong to leaves (a ReLU, an Identity)
            # whose forward reads nothing added to them later
            self.structure = [
                d for m in self.parts
                for d in (m._modules, m._parameters, m._buffers) if d
            ]
        if any(self.hook_dicts):
            return None
        held = chain.from_iterable(
            map(dict.values, (module._modules, module._parameters,
                              module._buffers, *self.structure)))
        return (config, module.training, tuple(map(_TRAINING, self.parts)),
                tuple(map(id, held)))

    def __call__(self, module: nn.Module, forward: Callable, x: torch.Tensor,
                 config: tuple = ()):
        if self.disabled is not None or not _applies(x):
            return forward(x)
        state = self._state(module, config)
        if state != self.state:  # other modules, tensors, flags or config
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
            # a parameter or buffer was edited in place: the Python
            # forward's caches refill on the next call, then it records
            self.clear()
            self.state = state
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

    def _record(self, module: nn.Module, forward: Callable, x: torch.Tensor,
                key: tuple):
        generation = self.generation
        watched = list(module.parameters()) + list(module.buffers())
        versions = _versions(watched)  # before: an edit meanwhile shows
        out, recording, why = _record(forward, x)
        if recording is not None:
            recording.program.watch(watched)
            try:
                same = _same(recording(x), out)
            except RuntimeError as exc:  # an operator refused its replay
                recording, why = None, f'{type(exc).__name__}: {exc}'
        if recording is None:
            logger.debug('%s is not replayed for inputs %s: %s',
                         type(module).__name__, key[:3], why)
            self.seen[key] = _NEVER
        elif not same:
            self.disabled = ('its replay did not reproduce the Python '
                             'forward')
            warnings.warn(f'{type(module).__name__}: {self.disabled}; it '
                          f'runs in Python from now on')
        elif generation == self.generation and _versions(watched) == versions:
            self.recordings[key] = recording
        return out


def _versions(tensors: List[torch.Tensor]) -> List[Tuple[int, int]]:
    return [(t.data_ptr(), -1 if t.is_inference() else t._version)
            for t in tensors]
