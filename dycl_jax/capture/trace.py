"""Capture: a branch-free Python function + an input signature -> a functional core-ATen graph.

``trace(fn, root, param_names, param_values, live_in, dynamic)`` runs ``fn(*live_in)`` under
``make_fx`` on fake tensors (no real compute) with functionalization and the core-ATen
decompositions. The root module's parameters and buffers are lifted as graph inputs (the module is
re-parametrised with the traced inputs), so weights are never baked in as constants; unused ones are
pruned and their names reported.

The region's outputs are a tuple of Python values. Tensors among them become graph outputs; every
other leaf (ints, shapes, modules, dtypes) is a constant of this signature and is returned in the
:class:`OutPlan` so the runtime can rebuild the exact structure without running anything.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import contextvars
import dataclasses
import enum
import functools
import os
import sys
import threading
import traceback
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import numpy as np
import torch
import torch.fx.traceback
from torch import fx
from torch.func import functionalize

from dycl_jax.analysis import facts
from dycl_jax.capture import guards, signature
from dycl_jax.compat import (
    ARRAY_IMPL,
    OpOverload,
    core_aten_decompositions,
    fx_tracing_hidden,
    make_fx,
    mkldnn_disabled,
    reparametrize_module,
    traced_tensor,
    tree_leaves,
)
from dycl_jax.errors import (
    CaptureError,
    DataDependentError,
    FreshObjectError,
    HeldArraysError,
    OpaqueOutputError,
    SourceLocation,
    StateWriteError,
    UnsupportedConstructError,
    UserCodeError,
    location_from_stack_trace,
)
from dycl_jax.lower import dtypes
from dycl_jax.portable import plan
from dycl_jax.portable.keys import named_tuple_type

# PyTorch's CPU kernels for these leave each dimension whose size does not change as it is
# (`scale_factor=1.05` on 8 pixels gives 8); their decompositions resample it with 1/scale:
# lowered as the kernels compute (lower/ops/nn.py).
_KERNELS_KEPT = (
    torch.ops.aten.upsample_nearest2d,
    torch.ops.aten.upsample_linear1d,
    torch.ops.aten.upsample_bilinear2d,
    torch.ops.aten.upsample_trilinear3d,
)
_DECOMPOSITIONS: Any = {
    op: fn
    for op, fn in core_aten_decompositions().items()
    if getattr(op, "overloadpacket", None) not in _KERNELS_KEPT
}


@dataclasses.dataclass(frozen=True)
class OutPlan:
    """How to rebuild a region's output tuple: ('t', i) graph output i; ('c', v) constant v;
    containers, shared containers and live-in containers (``portable.plan``, the grammar)."""

    spec: tuple[Any, ...]
    # The common case, every live-out a tensor in order: nothing to rebuild (derived from spec).
    identity: bool = dataclasses.field(init=False, compare=False)

    def __post_init__(self) -> None:
        identity = all(s[0] == "t" and s[1] == i for i, s in enumerate(self.spec))
        object.__setattr__(self, "identity", identity)

    def build(self, outs: tuple[Any, ...], values: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        """The live-out tuple from the graph's outputs ``outs``; ``values`` are the call's
        live-in values (an output that is one of their lists or dicts is that object)."""
        if self.identity:
            return outs
        return plan.build(self.spec, outs, values)


@dataclasses.dataclass
class Captured:
    gm: fx.GraphModule
    param_names: tuple[str, ...]  # the root parameters/buffers the graph reads, in input order
    plan: OutPlan
    seconds: float
    # PyTorch global modes the capture's result depends on beyond what the code names
    # (``is_grad_enabled``: whether eager would have taken an inference fast path)
    modes: frozenset[str] = frozenset()
    # Live-in values (by position) the graph writes in place, each with the write's line: the
    # runner checks that every one read after the region comes back as a live-out.
    written: tuple[tuple[int, SourceLocation | None], ...] = ()


class _Identities:
    """Which lists and dicts a region's outputs must keep as objects: those of its inputs
    (the same object comes back, so a later ``append`` through either name is seen by both) and
    those met more than once among its outputs (built once)."""

    def __init__(
        self,
        inputs: tuple[Any, ...],
        outputs: tuple[Any, ...],
        tensors: dict[int, tuple[Any, ...]],
        containers: dict[int, tuple[Any, ...]],
    ) -> None:
        # The lists and dicts among the inputs, by id and path, taken before the region ran (a
        # list it stored into an input dict is at no path of that dict when the region is
        # called again)
        self.inputs = containers
        # Tensors among the inputs, by id and path, taken before the region ran, and the graph
        # outputs that are one of them (``y = x``, ``best = cands[k]``, ``x.float()`` of a
        # float tensor: PyTorch hands back the object)
        self.tensors = tensors
        self.args = inputs
        self.passed: dict[int, tuple[Any, ...]] = {}
        counts: dict[int, int] = {}
        self._count(outputs, counts, set())
        self.shared = {k for k, n in counts.items() if n > 1}
        self.seen: dict[int, int] = {}
        self.outputs: dict[int, int] = {}  # tensor id -> its index among the graph outputs
        self.known: set[int] = set()  # plain objects that existed before the region ran

    def _count(self, v: Any, counts: dict[int, int], active: set[int]) -> None:
        t = type(v)
        if t is list or t is dict:
            counts[id(v)] = counts.get(id(v), 0) + 1
            if counts[id(v)] > 1 or id(v) in active:
                return
        if t is list or t is tuple or t is dict:
            active.add(id(v))
            for x in v.values() if t is dict else v:
                self._count(x, counts, active)
            active.discard(id(v))


def _input_paths(
    args: list[Any],
) -> tuple[dict[int, tuple[Any, ...]], dict[int, tuple[Any, ...]]]:
    """(tensors, containers): the tensors and the lists and dicts among a region's live-in
    values, by id, each with its first path (an index, then list / tuple indices and dict
    keys), taken before the region runs."""
    tensors: dict[int, tuple[Any, ...]] = {}
    containers: dict[int, tuple[Any, ...]] = {}

    def walk(v: Any, path: tuple[Any, ...]) -> None:
        t = type(v)
        if isinstance(v, torch.Tensor):
            tensors.setdefault(id(v), path)
        elif t is list or t is tuple:
            if t is list:
                containers.setdefault(id(v), path)
            for j, x in enumerate(v):
                walk(x, (*path, j))
        elif t is dict:
            containers.setdefault(id(v), path)
            for k, x in v.items():
                walk(x, (*path, k))

    for i, a in enumerate(args):
        walk(a, (i,))
    return tensors, containers


def _held(v: Any) -> tuple[int, ...]:
    """What the list or dict ``v`` holds, by identity (a dict's keys and values)."""
    return tuple(id(x) for kv in v.items() for x in kv) if type(v) is dict else tuple(map(id, v))


Snapshot = dict[int, tuple[Any, tuple[int, ...], tuple[Any, ...]]]


def container_snapshot(values: Any) -> Snapshot:
    """Each list and dict among ``values`` (inside tuples, lists and dicts), by id: the object,
    what it holds by identity, and its first path (an index, then indices and keys)."""
    out: Snapshot = {}

    def walk(v: Any, path: tuple[Any, ...]) -> None:
        t = type(v)
        if t is list or t is dict:
            if id(v) in out:
                return
            out[id(v)] = (v, _held(v), path)
        if t is list or t is tuple or t is dict:
            for k, x in v.items() if t is dict else enumerate(v):
                walk(x, (*path, k))

    for i, v in enumerate(values):
        walk(v, (i,))
    return out


def changed_container(before: Snapshot, outs: Any) -> str:
    """Where (``argument 2``, ``argument 0[1]``) a list or dict in ``before`` is that the code
    changed (entries added, removed or replaced) and does not hand back in ``outs``; ''."""
    returned: set[int] = set()

    def reach(v: Any) -> None:
        t = type(v)
        if (t is list or t is tuple or t is dict) and id(v) not in returned:
            returned.add(id(v))
            for x in v.values() if t is dict else v:
                reach(x)

    reach(tuple(outs))
    for i, (v, held, path) in before.items():
        if i not in returned and _held(v) != held:
            first, *rest = path
            return f"argument {first}" + "".join(f"[{k!r}]" for k in rest)
    return ""


def _at(values: tuple[Any, ...], path: tuple[Any, ...]) -> Any:
    """The live-in value at ``path`` now, or None where the region removed it."""
    try:
        return plan.live_in(values, path)
    except (IndexError, KeyError, TypeError):
        return None


def _plan(value: Any, tensors: list[torch.Tensor], ids: _Identities) -> Any:
    if isinstance(value, torch.Tensor):
        again = ids.outputs.get(id(value))
        if again is not None:  # one tensor at two places ([h, h]): one array at both
            return ("t", again)
        ids.outputs[id(value)] = len(tensors)
        tensors.append(value)
        where = ids.tensors.get(id(value))
        # one held in a live-in container counts only if it is still there when the region
        # ends (the output is then rebuilt from that place, after any refill of the container)
        if where is not None and (len(where) == 1 or _at(ids.args, where) is value):
            ids.passed[len(tensors) - 1] = where
        return ("t", len(tensors) - 1)
    t = type(value)
    if t is list or t is dict:
        where = ids.inputs.get(id(value))
        if where is not None:
            if t is list:
                return ("i", where, tuple(_plan(x, tensors, ids) for x in value))
            return ("j", where, tuple((_key(k), _plan(x, tensors, ids)) for k, x in value.items()))
        if id(value) in ids.seen:
            return ("r", ids.seen[id(value)])
        if id(value) in ids.shared:
            k = ids.seen[id(value)] = len(ids.seen)
            if t is list:
                return ("L", k, tuple(_plan(x, tensors, ids) for x in value))
            return ("D", k, tuple((_key(key), _plan(x, tensors, ids)) for key, x in value.items()))
    if t is list or t is tuple:
        return ("l", t, tuple(_plan(x, tensors, ids) for x in value))
    if t is dict:
        return ("d", tuple((_key(k), _plan(x, tensors, ids)) for k, x in value.items()))
    if t is collections.OrderedDict:
        return ("od", tuple((_key(k), _plan(x, tensors, ids)) for k, x in value.items()))
    if named_tuple_type(t):
        # a NamedTuple, or a struct sequence (`m = x.max(-1)`, read as m.values later)
        return ("n", t, tuple(_plan(x, tensors, ids) for x in value))
    if signature.plain_dataclass(value):  # an HF ModelOutput a library call returned
        fields = dataclasses.fields(value)
        return (
            "dc",
            t,
            tuple((f.name, _plan(getattr(value, f.name), tensors, ids)) for f in fields),
        )
    if isinstance(value, torch.SymBool | torch.SymInt | torch.SymFloat):
        # a number read from a tensor inside the region (`h.max().item() > 0.9` in a helper
        # the analysis could not see into): PyTorch runs the region on the host instead
        raise DataDependentError(
            "this code returns a Python number read from a tensor's value where dycl_jax "
            "could not split the program",
            None,
            hint="make the read visible in forward (`ok = bool(helper(...))`)",
        )
    if (guards.plain_object(value) or signature.collection(value)) and id(value) not in ids.known:
        # built by the region's own code (DynamicCache.from_legacy_cache(...), a deque): a
        # constant of the plan would be the object built at capture, shared by every later call
        raise FreshObjectError(
            f"this code builds a {type(value).__name__} object that the region returns",
            None,
        )
    holder = _holds_tensor(value)
    if holder is None and hasattr(type(value), "__next__"):
        holder = "inside an iterator (its items cannot be checked)"
    if holder is not None:
        raise OpaqueOutputError(type(value).__name__, holder)
    return ("c", value)


def _key(k: Any) -> Any:
    """A key of a dict the region returns, kept as a constant of the plan: it must be a Python
    value. One read from a tensor inside the region (``{int(i.item()): ...}`` in a
    comprehension) is a traced value: PyTorch runs the region on the host instead."""
    if _holds_tensor(k) is not None or any(
        isinstance(x, torch.SymBool | torch.SymInt | torch.SymFloat)
        for x in (k if type(k) is tuple else (k,))
    ):
        raise DataDependentError(
            "this code builds a dict whose keys are read from tensor values where dycl_jax "
            "could not split the program",
            None,
            hint="make the read visible in forward (`keys = idx.tolist()` before the dict)",
        )
    return k


_KEY_WRAPPER = type(functools.cmp_to_key(lambda a, b: 0)(None))


def _holds_tensor(
    value: Any,
    depth: int = 0,
    seen: set[int] | None = None,
    wanted: Callable[[torch.Tensor], bool] = lambda t: True,
    limit: int = 4,
) -> str | None:
    """Where a Python object returned by a region holds a tensor (None: it holds none). Such an
    object would be cached as a constant of the signature with capture-time stand-ins inside.
    ``wanted``: which tensors count; ``limit``: how deep to look."""
    seen = set() if seen is None else seen
    if id(value) in seen or depth > limit:
        return None
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        return "itself" if wanted(value) else None
    children: list[tuple[str, Any]] = []
    if isinstance(value, list | tuple | set | frozenset):
        children = [(f"[{i}]", v) for i, v in enumerate(value)]
    elif isinstance(value, dict):
        children = [(f"[{k!r}]", v) for k, v in value.items()]
    elif isinstance(value, types.FunctionType):
        cells = value.__closure__ or ()
        names = value.__code__.co_freevars
        children = [(f"closure variable {n}", _cell(c)) for n, c in zip(names, cells)]
    elif isinstance(value, types.MethodType | types.BuiltinMethodType | types.MethodWrapperType):
        children = [(".__self__", getattr(value, "__self__", None))]  # a tensor's bound method
    elif isinstance(value, functools.partial):
        children = [(".func", value.func), (".args", value.args), (".keywords", value.keywords)]
    elif type(value) is _KEY_WRAPPER:  # functools.cmp_to_key(cmp)(t): the item it compares
        children = [(".obj", getattr(value, "obj", None))]
    elif isinstance(value, BaseException):
        children = [(f".args[{i}]", v) for i, v in enumerate(value.args)]
        children += [(f".{k}", v) for k, v in vars(value).items()]
    elif isinstance(value, torch.nn.Module | type | types.ModuleType):
        return None  # modules' tensors are parameters and buffers (inputs), not outputs
    elif guards.plain_object(value):
        children = [(f".{k}", v) for k, v in guards.fields(value).items()]
    for where, child in children:
        inner = _holds_tensor(child, depth + 1, seen, wanted, limit)
        if inner is not None:
            return where + ("" if inner == "itself" else inner)
    return None


def _cell(c: Any) -> Any:
    try:
        return c.cell_contents
    except ValueError:
        return None


def example_tensor(leaf: Any) -> torch.Tensor:
    """A cheap real tensor with the leaf's shape and dtype (make_fx turns it into a fake)."""
    arr = np.asarray(leaf) if not hasattr(leaf, "dtype") or not hasattr(leaf, "shape") else leaf
    return torch.empty(tuple(arr.shape), dtype=dtypes.to_torch(arr.dtype))


def _user_location(exc: BaseException) -> SourceLocation | None:
    frames = traceback.extract_tb(exc.__traceback__)
    text = "".join(traceback.format_list(frames))
    return location_from_stack_trace(text)


_DATA_DEPENDENT = (
    "data-dependent",
    "Data dependent",
    "DataDependentOutputException",
    "GuardOnDataDependentSymNode",
    "_local_scalar_dense",
    "dynamic output shape",
    "DynamicOutputShapeException",
    "aten.nonzero",
    "aten.item",
    # a fake tensor's data read: torch.tensor([k]) of a host scalar traced as a 0-d input
    "data is not allocated yet",
    # a host scalar traced as a 0-d input used as a size (F.pad(x, (0, k)), interpolate)
    "expected to contain only concrete integers",
    # a tensor element used as a size inside torch's own code (an RNN on a PackedSequence:
    # zeros(layers, batch_sizes[0], hidden)), which eager turns into an int with __index__
    "but got Tensor",
    # .tolist() / .numpy() of a traced tensor inside library code (NoRepeatNGramLogitsProcessor)
    "unallocated storage",
    # a traced 0-d tensor where PyTorch's argument parser needs a Python number (the
    # torch.arange(t.max().ceil()) end): eager reads its value
    "python_arg_parser.cpp",
    # a uint8 mask as an index (`emb[mask.byte()]`, deprecated but accepted by eager, which reads
    # it as a bool mask): fake tensors reject it; a data-dependent shape all the same
    "tensors used as indices must be long, int, byte or bool tensors",
)


def _object_writes_refused(capture: Callable[..., Captured]) -> Callable[..., Captured]:
    """``capture`` (:func:`trace`) refusing, with StateWriteError, a region whose traced code
    changes the state of a plain Python object it was given (``past_key_value.update(k, v, i)``
    appending to a transformers ``DynamicCache``, a helper's counter). That state is put back: a
    compiled region would make the change once, at capture, so PyTorch runs the region instead,
    which makes it on every call, as eager."""

    @functools.wraps(capture)
    def refusing(
        fn: Callable[..., tuple[Any, ...]],
        root: Any,
        names: Any,
        values: Any,
        live_in: Any,
        *rest: Any,
        **options: Any,
    ) -> Captured:
        written: list[str] = []
        changed: list[str] = []
        # (and those the modules hold: transformers' logits processors in a module's list)
        held = [v for m in (root.modules() if root is not None else ()) for v in _module_held(m)]
        reached, objects = (
            _reached_state((*live_in, *held)) if options.get("containers_kept") else ([], [])
        )
        helpers = _helper_objects((*live_in, *held))
        known = {id(o) for o in helpers}
        helpers += [o for o in objects if id(o) not in known]
        try:
            with (
                guards.object_writes(helpers) as written,
                guards.container_writes(reached) as changed,
            ):
                return capture(fn, root, names, values, live_in, *rest, **options)
        finally:
            if written:
                raise StateWriteError(
                    f"changes {', '.join(dict.fromkeys(written))}, state of an object the region "
                    "is given, while traced (a compiled region would not repeat it)",
                    None,
                )
            if changed:
                raise StateWriteError(
                    f"changes {changed[0]} the host holds (through a bound method, a partial, a "
                    "closure or a module attribute), while traced (a compiled region would not "
                    "repeat it)",
                    None,
                )

    return refusing


@_object_writes_refused
def trace(
    fn: Callable[..., tuple[Any, ...]],
    root: torch.nn.Module | None,
    param_names: tuple[str, ...],
    param_values: tuple[torch.Tensor, ...],
    live_in: tuple[Any, ...],
    dynamic: frozenset[int],
    state_from: int | None = None,
    shadows: dict[str, torch.Tensor] | None = None,
    containers_kept: bool = False,
) -> Captured:
    """Capture ``fn`` on ``live_in`` as an ATen graph. ``state_from``: the index of the first
    leaf that is module state (a tensor held in a list or dict on a module): an in-place write
    to it inside the region would be lost, so it is refused. ``shadows``: data-free stand-ins
    (:class:`Shadow`) for the root's other parameters, so that a capture given only some of them
    can neither read another's values or properties nor write into it. ``containers_kept``: a
    list or dict among the live-ins that the code changes and does not hand back is refused (a
    region calling what the analysis cannot name, which may change what it is given)."""
    import time

    start = time.perf_counter()
    _, leaves = signature.split(live_in, dynamic)
    examples = [example_tensor(leaf) for leaf in leaves]
    # per trace: the output plan, and the graph outputs that are inputs returned unchanged
    plan_box: list[tuple[tuple[Any, ...], dict[int, tuple[Any, ...]]]] = []

    def traced(params: list[torch.Tensor], tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        args = signature.rebuild(live_in, dynamic, tensors)
        given, containers = _input_paths(args)
        # the dataclasses rebuilt from their fields for this trace: what the code sets on them
        # would be set on a copy (the caller's object is the one eager changes)
        copies = [o for o in _helper_objects(args) if signature.plain_dataclass(o)]
        before = container_snapshot(args) if containers_kept else {}
        with fx_tracing_hidden(), guards.object_writes(copies) as written:
            if root is not None and (params or shadows):
                swapped = {**(shadows or {}), **dict(zip(param_names, params))}
                with reparametrize_module(root, swapped, strict=False):
                    outs = fn(*args)
            else:
                outs = fn(*args)
        if written:
            raise StateWriteError(
                f"changes {', '.join(dict.fromkeys(written))}, a dataclass the region is given, "
                "while traced (a compiled region would change a copy)",
                None,
            )
        changed = changed_container(before, outs) if before else ""
        if changed:
            raise StateWriteError(
                f"changes a list or dict it is given ({changed}) in a call the analysis cannot "
                "follow (a compiled region would change a copy)",
                None,
            )
        flat: list[torch.Tensor] = []
        plans = []
        ids = _Identities(tuple(args), tuple(outs), given, containers)
        ids.known = known
        for i, o in enumerate(outs):
            try:
                plans.append(_plan(o, flat, ids))
            except OpaqueOutputError as e:
                e.index = i
                raise
        plan_box.append((tuple(plans), ids.passed))
        return flat

    try:
        # mkldnn's fused RNN kernels have no core-ATen decomposition; the generic path has.
        with (
            mkldnn_disabled(),
            _parameters_as_values(),
            _numpy_reads_refused(),
            _held_array_reads_refused(),
            _grad_flag_reads_refused(),
            _memory_reads_refused(),
            _eager_fast_paths_refused(root) as modes,
        ):
            modules = list(root.modules()) if root is not None else []
            known = _objects_before(live_in, modules, fn)
            with (
                guards.number_writes(modules) as writes,
                guards.tensor_writes(modules) as stored,
                guards.registrations() as registered,
            ):
                gm = _make_fx(traced, param_values, examples)
            if _writes_inside(gm):
                gm = _refunctionalized(gm, param_values, examples)
    except (CaptureError, UnboundLocalError):
        raise  # UnboundLocalError: the original reads a local it has not assigned (UNDEFINED)
    except _FastPathRefused as e:
        raise UnsupportedConstructError(
            "nn.TransformerEncoder with src_key_padding_mask: in eval mode without gradients "
            "PyTorch runs it on its nested-tensor fast path, which returns zeros at padded "
            "positions (and slightly different values elsewhere); a compiled region computes "
            "the standard path",
            _user_location(e),
            hint="build the encoder with enable_nested_tensor=False (eager PyTorch then gives "
            "the same values as the converted model)",
        ) from None
    except Exception as e:
        msg = f"{type(e).__name__}: {e}"
        loc = _user_location(e)
        if any(s in msg for s in _DATA_DEPENDENT):
            raise DataDependentError(
                "this code reads a tensor's value (a condition, Python conversion, data-dependent "
                "shape such as nonzero/masked_select/boolean indexing) where dycl_jax could not "
                "split the program",
                loc,
                hint="make the dependence visible in forward() (e.g. `if cond.item():`), or keep "
                "output shapes independent of tensor values",
            ) from e
        if "mutating a non-functional tensor" in msg:
            raise CaptureError(
                "in-place write to a tensor that outlives the call (a module attribute, or an "
                "entry of a list or dict the module holds) inside a compiled region",
                loc,
                hint="store a new tensor instead of writing in place (`self.buf[i] = "
                "self.buf[i] + h`, or clone, write, and assign the clone back)",
            ) from e
        if "jaxlib" in msg or "ArrayImpl" in msg or "numpy.ndarray" in msg or _hold_arrays(live_in):
            raise HeldArraysError(
                "this code reads arrays that earlier host code stored into state dycl_jax did "
                "not recognise as module state (a container reached through a helper object, a "
                "local bound to it, or one made after convert)",
                loc,
                hint="keep the container directly on the module from __init__ (`self.memory = "
                "[]`) and change it through that attribute (`self.memory.append(h)`)",
            ) from e
        shapes = ", ".join(
            f"{tuple(t.shape)}:{str(t.dtype).removeprefix('torch.')}" for t in examples
        )
        raise UserCodeError(
            f"this code fails on inputs [{shapes}]: {msg.splitlines()[0][:500]}",
            loc,
            hint="check the shapes and dtypes passed to the model; if the model runs in PyTorch "
            "on these inputs, this is a dycl_jax limitation: please report it",
        ) from e
    if registered:
        raise StateWriteError(
            f"registers module state while traced ({', '.join(sorted(set(registered)))}); a "
            "compiled region would not register it",
            None,
        )
    if stored:
        raise StateWriteError(
            f"stores tensors into module state ({', '.join(sorted(set(stored)))}) while traced "
            "(a compiled region would not store them)",
            None,
        )
    if writes:
        obj, name, _, filename, line = writes[0]
        raise StateWriteError(
            f"sets {type(obj).__name__}.{name} to a new number while traced (a compiled "
            "region would not repeat it)",
            SourceLocation(filename, line),
        )
    spec = _inputs_passed_through(gm, *plan_box[-1])
    input_writes = _strip_input_writebacks(gm, len(param_values), param_names, state_from)
    starts = signature.leaf_starts(tuple(live_in), dynamic)
    written = tuple(
        (bisect.bisect_right(starts, leaf) - 1, where)
        for leaf, where in sorted(input_writes.items())
    )
    if dynamic:
        _check_scalar_outputs(gm, len(param_values), signature.scalar_leaves(live_in, dynamic))
    used = _prune_params(gm, len(param_values))
    return Captured(
        gm,
        tuple(param_names[i] for i in used),
        OutPlan(spec),
        time.perf_counter() - start,
        frozenset(modes),
        written,
    )


def _module_held(m: torch.nn.Module) -> list[Any]:
    """The values a module keeps in its attributes that are not its parameters, buffers or
    submodules (lists, dicts, plain objects)."""
    skip = ("_parameters", "_buffers", "_modules")
    return [v for k, v in m.__dict__.items() if k not in skip and not isinstance(v, torch.Tensor)]


def _reached_state(values: Any) -> tuple[list[Any], list[Any]]:
    """(containers, objects): the host's lists, dicts, sets and deques, and the plain objects
    reached through callables, that a region's code can reach from ``values`` (its live-ins,
    as the host holds them, and what the modules hold), inside containers and tuples (named
    too) and through callables: a bound method's object (``ap = outs.append``), a
    ``functools.partial``'s function and arguments (a counter object it bumps), a function's
    closure and defaults. (The traced code gets copies of the live-in containers themselves: a
    change to the host's own can only come through such another reference.)"""
    out: list[Any] = []
    objects: list[Any] = []
    seen: set[int] = set()

    def walk(v: Any, depth: int) -> None:
        if depth > 8 or id(v) in seen:
            return
        seen.add(id(v))
        if isinstance(v, facts.CONTAINER_TYPES):
            out.append(v)
            for x in v.values() if isinstance(v, dict) else v:
                walk(x, depth + 1)
        elif isinstance(v, tuple):
            for x in v:
                walk(x, depth + 1)
        elif isinstance(v, functools.partial):
            for x in (v.func, *v.args, *v.keywords.values()):
                walk(x, depth + 1)
        elif isinstance(v, types.MethodType | types.BuiltinMethodType):
            owner = getattr(v, "__self__", None)
            if not isinstance(owner, torch.nn.Module | types.ModuleType):
                walk(owner, depth + 1)
            walk(getattr(v, "__func__", None), depth + 1)
        elif isinstance(v, types.FunctionType):
            for cell in v.__closure__ or ():
                try:
                    walk(cell.cell_contents, depth + 1)
                except ValueError:  # an empty cell
                    pass
            for x in (*(v.__defaults__ or ()), *(v.__kwdefaults__ or {}).values()):
                walk(x, depth + 1)
        elif isinstance(v, torch.nn.Module):
            for x in _module_held(v):  # (a closure over the module: what it holds)
                walk(x, depth + 1)
        elif guards.plain_object(v) and not isinstance(v, types.BuiltinFunctionType):
            objects.append(v)  # (its attributes are state, and so are what they hold)
            for x in guards.fields(v).values():
                walk(x, depth + 1)

    for v in values:
        walk(v, 0)
    return out, objects


def _helper_objects(values: Any) -> list[Any]:
    """Plain Python objects among a region's live-ins (a beam-search helper built in forward),
    inside lists, tuples, dicts and other such objects too: their attributes are state a traced
    method may set."""
    out: list[Any] = []
    seen: set[int] = set()

    def walk(v: Any, depth: int) -> None:
        if id(v) in seen or depth > 3:
            return
        seen.add(id(v))
        if isinstance(v, list | tuple):  # (a list subclass too: LogitsProcessorList)
            for x in v:
                walk(x, depth + 1)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x, depth + 1)
        elif guards.plain_object(v):
            out.append(v)
            for x in guards.fields(v).values():
                walk(x, depth + 1)

    for v in values:
        walk(v, 0)
    return out


def _objects_before(
    live_in: tuple[Any, ...], modules: list[torch.nn.Module], fn: Callable[..., Any]
) -> set[int]:
    """The ids of the plain objects, ``collections`` containers (a deque, a Counter) and enum
    members a region can reach before it runs: through
    its live-ins, the modules' attributes, its function's globals and closure, inside lists,
    tuples, dicts and other objects' attributes. A plain object it returns that is none of these
    was built by its own code (see ``_plan``). Missing one only costs speed: the region then
    runs in PyTorch, which returns the very object."""
    known: set[int] = set()
    seen: set[int] = set()

    def walk(v: Any, depth: int) -> None:
        if depth > 4 or id(v) in seen:
            return
        seen.add(id(v))
        t = type(v)
        if t is list or t is tuple:
            for x in v:
                walk(x, depth + 1)
        elif t is dict:
            for x in v.values():
                walk(x, depth + 1)
        elif isinstance(v, enum.Enum):
            known.add(id(v))
        elif signature.collection(v):
            known.add(id(v))
            for x in v.values() if isinstance(v, dict) else v:
                walk(x, depth + 1)
        elif guards.plain_object(v):
            known.add(id(v))
            for x in guards.fields(v).values():
                walk(x, depth + 1)

    for v in live_in:
        walk(v, 0)
    for m in modules:
        for v in _module_held(m):
            walk(v, 1)
    for v in getattr(fn, "__globals__", {}).values():
        walk(v, 3)
    for c in getattr(fn, "__closure__", None) or ():
        walk(_cell(c), 1)
    return known


def traced_values_left(modules: Iterable[torch.nn.Module]) -> str | None:
    """Where a traced tensor (a fake from a capture that failed part-way) was left in the state
    of ``modules``, reached through their attributes, containers and plain objects (a library
    cache object the traced code appended to): ``"M.cache.layers[0].keys"``; None if nowhere."""
    for m in modules:
        for k, v in m.__dict__.items():
            if k in ("_parameters", "_buffers", "_modules"):
                continue
            inner = _holds_tensor(v, wanted=traced_tensor, limit=5)
            if inner is not None:
                return f"{type(m).__name__}.{k}" + ("" if inner == "itself" else inner)
    return None


def _hold_arrays(values: Any) -> bool:
    """Whether a plain object reachable from ``values`` (through lists, tuples, dicts and other
    objects' attributes, as ``runtime.runner.held_as_torch`` walks them) holds arrays the host
    stored in it (a beam hypothesis' score): traced, the code would meet a numpy or jax array
    where eager has a tensor (its errors read "NumPy arrays", "ndarray", "jax.Array", ...)."""
    seen: set[int] = set()

    def held(x: Any, depth: int, inside: bool) -> bool:
        if depth > 4 or id(x) in seen:
            return False
        seen.add(id(x))
        if isinstance(x, np.ndarray | jax.Array):
            return inside  # (an array among the live-ins themselves is an input)
        t = type(x)
        if t is list or t is tuple:
            return any(held(y, depth + 1, inside) for y in x)
        if t is dict:
            return any(held(y, depth + 1, inside) for y in x.values())
        if guards.plain_object(x) and not isinstance(x, torch.Tensor):
            return any(held(y, depth + 1, True) for y in guards.fields(x).values())
        return False

    return any(held(v, 0, False) for v in values)


_NUMPY_READ = "data-dependent: a traced tensor's values read as a numpy array"
_NUMPY_RANDOM_READ = "data-dependent: numpy's global random state drawn from"
_NUMPY_RANDOM = (
    "rand", "randn", "random", "random_sample", "ranf", "sample", "randint", "random_integers",
    "uniform", "normal", "standard_normal", "choice", "permutation", "shuffle", "binomial",
    "poisson", "exponential", "beta", "gamma", "multinomial", "bytes", "dirichlet", "laplace",
    "logistic", "lognormal", "geometric", "gumbel",
)  # fmt: skip


@contextlib.contextmanager
def _numpy_reads_refused() -> Iterator[None]:
    """During a capture, a tensor's values read as a numpy array (``np.asarray(t)``, scipy or
    numpy given a tensor, ``.numpy()`` in a helper the analysis does not see) are a
    data-dependent read: a traced tensor holds no values (numpy would read whatever its storage
    holds). The region then runs in PyTorch for that signature (see ``RegionRunner``), as eager.
    So does a draw from numpy's global random state, which traced would be one constant."""
    tensor = torch.Tensor
    array, numpy = tensor.__array__, tensor.numpy

    def refused(t: torch.Tensor) -> None:
        if traced_tensor(t):
            raise RuntimeError(_NUMPY_READ)

    def as_array(self: torch.Tensor, *args: Any, **kw: Any) -> Any:
        refused(self)
        return array(self, *args, **kw)

    def as_numpy(self: torch.Tensor, *args: Any, **kw: Any) -> Any:
        refused(self)
        return numpy(self, *args, **kw)

    # numpy's global random draws: traced, one draw would become a constant of the graph
    rng = {name: getattr(np.random, name) for name in _NUMPY_RANDOM if hasattr(np.random, name)}

    def drawn(*args: Any, **kw: Any) -> Any:
        raise RuntimeError(_NUMPY_RANDOM_READ)

    tensor.__array__ = as_array  # type: ignore[method-assign]
    tensor.numpy = as_numpy  # type: ignore[method-assign,assignment]
    for name in rng:
        setattr(np.random, name, drawn)
    try:
        yield
    finally:
        tensor.__array__ = array  # type: ignore[method-assign]
        tensor.numpy = numpy  # type: ignore[method-assign]
        for name, f in rng.items():
            setattr(np.random, name, f)


_HELD_ARRAY_READ = "a jaxlib ArrayImpl's values read while traced"
# (numpy reads a CPU array through the buffer protocol, which cannot be intercepted)
_VALUE_READS = (
    "__array__", "__dlpack__", "__float__", "__int__", "__index__", "__bool__", "tolist", "item"
)  # fmt: skip


@contextlib.contextmanager
def _held_array_reads_refused() -> Iterator[None]:
    """During a capture (on this thread), a jax array's values read (``torch.as_tensor(a)``
    goes through ``__dlpack__``; ``float(a)``, ``a.item()``, ``a.tolist()``) raise: such an array is
    one the host stored in a helper object or list (a cache's keys) and not an input of the
    region, so its values would be baked in. The region then runs in PyTorch (HeldArraysError).
    Guards compare such arrays by shape and dtype only (``guards._snapshot``), which is exact
    because of this."""
    cls = ARRAY_IMPL
    saved = {n: cls.__dict__[n] for n in _VALUE_READS if n in cls.__dict__}
    me = threading.get_ident()

    def refused(name: str) -> Callable[..., Any]:
        original = saved[name]

        def read(self: Any, *args: Any, **kw: Any) -> Any:
            if threading.get_ident() == me:
                raise RuntimeError(_HELD_ARRAY_READ)
            return original(self, *args, **kw)

        return read

    for name in saved:
        setattr(cls, name, refused(name))
    try:
        yield
    finally:
        for name, f in saved.items():
            setattr(cls, name, f)


class _FastPathRefused(Exception):
    """Raised inside a capture where eager PyTorch would take an inference fast path."""


_GRAD_FLAG_READ = "data-dependent: a traced tensor's requires_grad read by the model's code"
# PyTorch's and dycl_jax's own code: their reads of the flag are not the model's
_LIBRARY_DIRS = tuple(
    os.path.dirname(os.path.abspath(f)) + os.sep
    for f in (torch.__file__ or "", os.path.dirname(os.path.abspath(__file__)))
)


@contextlib.contextmanager
def _grad_flag_reads_refused() -> Iterator[None]:
    """During a capture, the model's own code reading ``t.requires_grad`` of a traced tensor is
    a data-dependent read: traced, parameters and values computed under ``enable_grad`` are
    stand-ins without autograd, so the flag would read False where eager reads True. The region
    then runs in PyTorch for that signature (under ``no_grad``, as the converted model is
    called). PyTorch's own reads (its fast-path checks, the tracer) are left as they are."""
    base = torch._C.TensorBase.__dict__["requires_grad"]

    def get(t: torch.Tensor) -> bool:
        caller = sys._getframe(1).f_code.co_filename
        if not caller.startswith(_LIBRARY_DIRS) and traced_tensor(t):
            raise RuntimeError(_GRAD_FLAG_READ)
        return bool(base.__get__(t))

    def put(t: torch.Tensor, value: bool) -> None:
        base.__set__(t, value)

    torch.Tensor.requires_grad = property(get, put)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        del torch.Tensor.requires_grad


_MEMORY_READ = "data-dependent: a traced tensor's memory read by the model's code ({})"
# What a tensor's memory is, which a compiled region does not have (its arrays are values):
# fairseq's MultiheadAttention picks self- or cross-attention by `query.data_ptr() ==
# key.data_ptr()`; traced, every tensor's address reads 0 and no tensor is a view.
_MEMORY_METHODS = ("data_ptr", "storage_offset", "_is_view", "untyped_storage", "storage")


@contextlib.contextmanager
def _memory_reads_refused() -> Iterator[None]:
    """During a capture, the model's own code reading a traced tensor's memory (its address,
    storage, offset, whether it is a view, its ``_base``) is a data-dependent read: the region
    then runs in PyTorch for that signature, where the tensors have memory. PyTorch's own reads
    are left as they are."""
    saved = {name: torch.Tensor.__dict__.get(name) for name in (*_MEMORY_METHODS, "_base")}

    def refusing(name: str, base: Any) -> Any:
        def read(t: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_code.co_filename
            if not caller.startswith(_LIBRARY_DIRS) and traced_tensor(t):
                raise RuntimeError(_MEMORY_READ.format(name))
            return base(t, *args, **kwargs)

        return read

    for name in _MEMORY_METHODS:
        base = getattr(torch.Tensor, name)
        setattr(torch.Tensor, name, refusing(name, base))
    base_attr = torch._C.TensorBase.__dict__["_base"]
    torch.Tensor._base = property(  # type: ignore[method-assign,assignment]
        refusing("_base", base_attr.__get__)
    )
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, old)


@contextlib.contextmanager
def _parameters_as_values() -> Iterator[None]:
    """During a capture, ``nn.Parameter(t)`` made by the code (A-ViT's halting scores) is ``t``:
    a Parameter of traced data would become a graph constant holding no values. In eval mode
    without gradients the two compute the same."""
    param = torch.nn.Parameter
    original = param.__new__

    def new(cls: type, data: Any = None, requires_grad: bool = True) -> Any:
        if cls is param and isinstance(data, torch.Tensor):
            return data
        return original(cls, data, requires_grad)

    param.__new__ = new  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        param.__new__ = original  # type: ignore[method-assign]


@contextlib.contextmanager
def _eager_fast_paths_refused(root: torch.nn.Module | None) -> Iterator[set[str]]:
    """During a capture, refuse modules whose eager forward takes a value-changing fast path
    that tracing cannot take: ``nn.TransformerEncoder`` turns padded inputs into nested tensors
    (zeros at padded positions) when not training, without gradients, with a padding mask.
    Traced, its fast-path check sees fake tensors and takes the standard path. Yields the global
    modes the decision read (the capture is valid while they hold)."""
    encoder = torch.nn.TransformerEncoder
    original = encoder.forward
    # parameters requiring grad (read before tracing re-parametrises them): with grad enabled,
    # eager takes the standard path for those
    needs_grad = {
        id(m)
        for m in (root.modules() if root is not None else ())
        if isinstance(m, encoder) and any(p.requires_grad for p in m.parameters())
    }

    read: set[str] = set()

    def forward(
        self: Any,
        src: Any,
        mask: Any = None,
        src_key_padding_mask: Any = None,
        *args: Any,
        **kw: Any,
    ) -> Any:
        if src_key_padding_mask is not None:
            read.add("is_grad_enabled")
        fast = (
            src_key_padding_mask is not None
            and mask is None
            and getattr(self, "use_nested_tensor", False)
            and not self.layers[0].training
            and src.dim() == 3
            and torch.backends.mha.get_fastpath_enabled()
            and not torch.is_autocast_enabled()
            and (not torch.is_grad_enabled() or id(self) not in needs_grad)
        )
        if fast:
            raise _FastPathRefused
        return original(self, src, mask, src_key_padding_mask, *args, **kw)

    encoder.forward = forward  # type: ignore[method-assign]
    try:
        yield read
    finally:
        encoder.forward = original  # type: ignore[method-assign]


def _writes_inside(gm: fx.GraphModule) -> bool:
    """Whether the graph still writes in place into a tensor it made (not an input): what
    PyTorch's composite kernels do below the functionalization the capture runs
    (``pad_sequence`` fills ``full(...)`` through ``select(...).copy_``, circular padding a
    ``new_empty``)."""
    for node in gm.graph.nodes:
        if node.op != "call_function" or not isinstance(node.target, OpOverload):
            continue
        if node.target._schema.is_mutable and node.args:
            first = node.args[0]
            if not (isinstance(first, fx.Node) and first.op == "placeholder"):
                return True
    return False


def _refunctionalized(
    gm: fx.GraphModule, params: tuple[torch.Tensor, ...], examples: list[torch.Tensor]
) -> fx.GraphModule:
    """``gm`` traced again through functionalization, now at the level of its ATen ops, so the
    writes ``_writes_inside`` found become scatters; each node keeps its user stack trace."""

    def again(p: list[torch.Tensor], xs: list[torch.Tensor]) -> Any:
        with fx.traceback.preserve_node_meta():
            return fx.Interpreter(gm).run(p, xs)

    return _make_fx(again, params, examples)


def _make_fx(
    traced: Callable[..., Any], params: tuple[torch.Tensor, ...], examples: list[torch.Tensor]
) -> fx.GraphModule:
    return make_fx(
        functionalize(traced),
        decomposition_table=_DECOMPOSITIONS,
        tracing_mode="fake",
        record_stack_traces=True,
        allow_non_fake_inputs=True,
    )(list(params), examples)


def _check_scalar_outputs(gm: fx.GraphModule, n_params: int, scalar_leaves: set[int]) -> None:
    """Python scalars read from tensors are traced as 0-d inputs so new values do not recompile.
    An output computed from such scalars alone would come back as an array where PyTorch has a
    Python number: then the region must specialise on the scalar instead (DataDependentError
    makes the runner retrace it that way)."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    scalar = {p for i, p in enumerate(placeholders[n_params:]) if i in scalar_leaves}
    other = set(placeholders) - scalar
    output = next(n for n in gm.graph.nodes if n.op == "output")
    for out in tree_leaves(output.args[0]):
        if not isinstance(out, fx.Node):
            continue
        seen: set[fx.Node] = set()
        todo = [out]
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(n.all_input_nodes)
        if seen & scalar and not seen & other:
            raise DataDependentError("region output computed from host scalars only")


def _inputs_passed_through(
    gm: fx.GraphModule, spec: tuple[Any, ...], passed: dict[int, tuple[Any, ...]]
) -> tuple[Any, ...]:
    """``spec`` with each graph output that is an input returned unchanged (the output node is
    its placeholder, never written in place) replaced by ``("a", path)``: the live-in value
    itself, so ``y is x`` holds after ``y = x.float()`` as in eager PyTorch."""
    if not passed:
        return spec
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    outs = out_node.args[0]
    written = {
        n.args[0]
        for n in gm.graph.nodes
        if n.op == "call_function" and n.target is torch.ops.aten.copy_.default
    }
    same = {
        j: path
        for j, path in passed.items()
        if j < len(outs)
        and isinstance(outs[j], fx.Node)
        and outs[j].op == "placeholder"
        and outs[j] not in written
    }
    if not same:
        return spec

    def swap(s: Any) -> Any:
        if type(s) is not tuple or not s or type(s[0]) is not str:
            return tuple(swap(x) for x in s) if type(s) is tuple else s
        if s[0] == "t":
            return ("a", same[s[1]]) if s[1] in same else s
        if s[0] in ("l", "n", "i", "L"):
            return (s[0], s[1], tuple(swap(x) for x in s[2]))
        if s[0] in ("j", "D", "dc"):
            return (s[0], s[1], tuple((k, swap(x)) for k, x in s[2]))
        if s[0] == "d":
            return ("d", tuple((k, swap(x)) for k, x in s[1]))
        return s

    return tuple(swap(x) for x in spec)


_RUNNING_STATS = frozenset({"running_mean", "running_var", "num_batches_tracked"})


def _strip_input_writebacks(
    gm: fx.GraphModule, n_params: int, names: tuple[str, ...], state_from: int | None = None
) -> dict[int, SourceLocation | None]:
    """Functionalization writes mutated inputs back with copy_; outputs carry the values where
    the analysis saw the write (not for parameters and module state: refused). Returns the
    written leaves (index among the live-in leaves) with the line each write was computed at."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    written: dict[int, SourceLocation | None] = {}
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target is torch.ops.aten.copy_.default:
            dst = node.args[0]
            if dst in placeholders:
                idx = placeholders.index(dst)
                if state_from is not None and idx >= n_params + state_from:
                    src = node.args[1] if isinstance(node.args[1], fx.Node) else node
                    raise CaptureError(
                        "in-place write to a tensor held in module state (a list or dict on a "
                        "module, kept between calls)",
                        location_from_stack_trace(src.meta.get("stack_trace")),
                        hint="store a new tensor instead (`self.buf[i] = self.buf[i] + h`, "
                        "`cache[:, pos] = k` on a clone then `self.cache['k'] = new`)",
                    )
                if idx < n_params:
                    # The write-back node itself is made after the region returns; the value it
                    # writes was computed at the user's line.
                    src = node.args[1] if isinstance(node.args[1], fx.Node) else node
                    stats = names[idx].rsplit(".", 1)[-1] in _RUNNING_STATS
                    raise CaptureError(
                        f"in-place write to module state {names[idx]!r} inside forward"
                        + (
                            " (a batch norm in training mode updates its running statistics: "
                            "dycl_jax compiles inference)"
                            if stats
                            else ""
                        ),
                        location_from_stack_trace(src.meta.get("stack_trace")),
                        hint="call model.eval() before calling the converted model"
                        if stats
                        else "module-state updates in forward are not supported; keep eval-mode "
                        "state fixed or return the new value",
                    )
                src = node.args[1] if isinstance(node.args[1], fx.Node) else node
                written.setdefault(
                    idx - n_params, location_from_stack_trace(src.meta.get("stack_trace"))
                )
                node.replace_all_uses_with(node.args[1])
                gm.graph.erase_node(node)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return written


class ShadowRead(Exception):
    """A capture touched a parameter it was not given (see :class:`Shadow`)."""


_TOUCHED: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "dycl_shadow_touched", default=None
)


class Shadow(torch.Tensor):
    """A data-free stand-in (a meta tensor) for a parameter a capture was not given: any use of
    it, an op or a metadata read (``.device``, ``.shape``, ``.is_meta``), is recorded and
    raises, so the runner traces again with every parameter. A capture never sees a value or
    a property that the real parameter would not have."""

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        box = _TOUCHED.get()
        if box is not None:
            box.append(True)
        raise ShadowRead(getattr(func, "__name__", str(func)))


def shadow_of(t: torch.Tensor) -> Shadow:
    return torch.Tensor._make_subclass(Shadow, torch.empty_like(t, device="meta"), False)  # type: ignore[no-any-return]


@contextlib.contextmanager
def watching_shadows() -> Iterator[list[bool]]:
    """Collect (as a non-empty list) whether a shadow was touched inside the block."""
    box: list[bool] = []
    token = _TOUCHED.set(box)
    try:
        yield box
    finally:
        _TOUCHED.reset(token)


def reads_tensors(gm: fx.GraphModule, tensors: tuple[torch.Tensor, ...]) -> bool:
    """Whether ``gm`` holds one of ``tensors`` (by storage) or a meta tensor (a shadow) as a
    constant, or computes anything on the meta device: a parameter the capture was not given as
    an input was read while tracing."""
    storages = {t.untyped_storage().data_ptr() for t in tensors if t.numel()}
    for node in gm.graph.nodes:
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor) and val.device.type == "meta":
            return True  # computed from a shadow (or moved to its device: `.to(w.device)`)
        if node.op == "get_attr":
            value = getattr(gm, node.target, None)  # type: ignore[arg-type]
            if isinstance(value, torch.Tensor) and (
                value.device.type == "meta"
                or (value.numel() and value.untyped_storage().data_ptr() in storages)
            ):
                return True
    return False


def _prune_params(gm: fx.GraphModule, n_params: int) -> list[int]:
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    used = []
    for i, node in enumerate(placeholders[:n_params]):
        if node.users:
            used.append(i)
        else:
            gm.graph.erase_node(node)
    gm.recompile()
    return used
