"""Guards: the Python attributes of the model's own modules a capture read as constants.

Tracing a region reads plain Python attributes of modules (``self.threshold``,
``self.temperature``, ``self.steps``) as constants: the captured graph bakes their values in. If
the user changes one after ``convert`` (a threshold sweep), the compiled graph is stale. So, as
TorchDynamo does, every capture records which such attributes it read and their values; the
runtime checks them before reusing the graph and recaptures when one changed.

Recorded: public attributes of modules in the converted model, read by the capturing thread:
Python scalars, strings, None, numpy scalars and lists / tuples / dicts / sets / deques of those
(subclasses such as a NamedTuple included) by value; plain tensors (not parameters or buffers) by
identity and in-place version; submodules by identity (swapped after convert); plain objects such
as a config (``__slots__`` ones too) by class and fields (and identity when a field has no
value to compare); a ``torch.device`` by value; anything else by identity. And the module-level
globals a region names, by value. Checking costs about one ``getattr`` per guard per
call, for regions that read any. Attributes of torch built-in modules (``LeakyReLU.negative_slope``,
``LayerNorm.eps``: many per model) are checked only after some module attribute was set, like
submodules.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import contextvars
import dataclasses
import functools
import inspect
import sys
import threading
import types
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import jax
import numpy as np
import torch

from dycl_jax import compat
from dycl_jax.analysis.facts import CONTAINER_TYPES
from dycl_jax.origin import foreign, user_class, user_module
from dycl_jax.portable import plan
from dycl_jax.portable.structure import plain_dataclass

_SCALARS = (bool, int, float, str, complex, type(None))
_MISSING = object()
_ABSENT = ("absent",)  # a guard's state for an attribute the capture found missing
# How deep guards compare containers and plain objects by value (a helper object's list of
# per-layer lists is three levels below the module attribute; a nested config's list of per-exit
# temperatures, `self.cfg.model.decoder.exit.temps`, five).
_DEPTH = 6


def _snapshot(v: Any, depth: int = 0, keep: list[Any] | None = None) -> Any:
    """A comparable copy of what a capture may have baked in from ``v``, or _MISSING when ``v``
    is not something to guard on by value (modules are guarded by identity). Below the top level
    a tensor compares by identity and in-place version (``keep`` collects it, so its id stays
    its own while the guard lives) and a plain object (a config's ``sub`` section) by identity
    and fields."""
    t = type(v)
    if t in _SCALARS:
        return (t, _exact(v))
    if isinstance(v, np.generic):
        return (t, _exact(v.item()))
    if t is np.ndarray and v.dtype != object:
        # torch.from_numpy(self.prior) shares the array's memory: by contents, so an edit in
        # place is seen as well as a new array (a copy of the bytes per check)
        return ("nd", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, torch.device):  # a new object on each `self.device` read: by value
        return ("device", str(v))
    if depth >= 1 and isinstance(v, torch.nn.Module):
        # a module kept in a plain dict or list (`self.extra = {"proj": nn.Linear(...)}`):
        # by identity, so an entry replaced after convert is traced again
        if keep is not None:
            keep.append(v)
        return ("m", id(v))
    if depth >= 1 and isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter):
        if keep is not None:
            keep.append(v)
        return ("t", id(v), compat.tensor_versions([v]))
    if depth >= 1 and isinstance(v, jax.Array):
        # an array the host stored in a helper's list (a cache's keys): a capture reads only its
        # shape and dtype (its values read while tracing run the region in PyTorch instead, see
        # capture.trace._held_array_reads_refused), so a cache grown by a step is compared by them
        return ("ja", v.shape, v.dtype.name)
    if depth < _DEPTH and isinstance(v, tuple | list | collections.deque):  # a NamedTuple too
        items = tuple(_snapshot(x, depth + 1, keep) for x in v)
        return _MISSING if _MISSING in items else (t, items)
    if depth < _DEPTH and isinstance(v, set | frozenset):  # `if i in self.skip_layers`
        members = frozenset(_snapshot(x, depth + 1, keep) for x in v)
        return _MISSING if _MISSING in members else (t, members)
    if depth < _DEPTH and isinstance(v, dict):
        items = tuple((k, _snapshot(x, depth + 1, keep)) for k, x in v.items())
        return _MISSING if any(x is _MISSING for _, x in items) else (t, items)
    if 1 <= depth < _DEPTH + 1 and plain_object(v):
        return ("obj", _object_state(v, depth, keep))
    return _MISSING


def plain_object(v: Any) -> bool:
    """An object keeping its state in attributes, in a ``__dict__`` or in ``__slots__`` (a
    config, a ``@dataclass(slots=True)``, a beam hypothesis): not a class, module, function or
    nn.Module."""
    if isinstance(
        v,
        type
        | types.ModuleType
        | types.FunctionType
        | types.MethodType
        | torch.nn.Module
        | torch.Tensor
        | jax.Array  # (a jax tracer too: it declares slots)
        | np.ndarray,
    ):
        return False
    if hasattr(v, "__dict__"):
        return True
    return bool(_slot_names(type(v))) and user_class(type(v))


_SLOTS: weakref.WeakKeyDictionary[type, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _slot_names(cls: type) -> tuple[str, ...]:
    """The attribute names the ``__slots__`` of ``cls`` and its bases declare (private ones
    mangled as Python does)."""
    known = _SLOTS.get(cls)
    if known is None:
        known = _SLOTS[cls] = _declared_slots(cls)
    return known


def _declared_slots(cls: type) -> tuple[str, ...]:
    out: list[str] = []
    for c in cls.__mro__:
        slots = vars(c).get("__slots__", ())
        for n in (slots,) if isinstance(slots, str) else slots:
            if n in ("__dict__", "__weakref__"):
                continue
            if n.startswith("__") and not n.endswith("__"):
                n = f"_{c.__name__.lstrip('_')}{n}"
            out.append(n)
    return tuple(out)


def fields(v: Any) -> dict[str, Any]:
    """The attributes a plain object holds: its ``__dict__`` and its set slots."""
    out = dict(vars(v)) if hasattr(v, "__dict__") else {}
    for n in _slot_names(type(v)):
        with contextlib.suppress(AttributeError):  # a slot not set yet
            out[n] = object.__getattribute__(v, n)
    return out


def set_field(v: Any, name: str, x: Any) -> None:
    """``v.name = x`` bypassing the class's ``__setattr__`` (a frozen dataclass's too)."""
    if hasattr(v, "__dict__") and name not in _slot_names(type(v)):
        v.__dict__[name] = x
    else:
        object.__setattr__(v, name, x)


def replace_fields(v: Any, new: dict[str, Any]) -> None:
    """``v`` holding exactly the attributes ``new`` (the same object)."""
    slots = _slot_names(type(v))
    if hasattr(v, "__dict__"):
        v.__dict__.clear()
        v.__dict__.update((k, x) for k, x in new.items() if k not in slots)
    for n in slots:
        if n in new:
            object.__setattr__(v, n, new[n])
        else:
            with contextlib.suppress(AttributeError):
                object.__delattr__(v, n)


def _object_state(v: Any, depth: int, keep: list[Any] | None) -> tuple[Any, ...]:
    """A plain object by its class and fields, by value (tensors and nested objects below): a
    new but equal object each call (a property building a config) is the same state. With a
    field that has no value snapshot, by identity as well."""
    items = []
    complete = True
    for k, x in sorted(fields(v).items()):
        snap = _snapshot(x, depth + 1, keep)
        if snap is _MISSING:
            complete = False
        else:
            items.append((k, snap))
    return (type(v), None if complete else id(v), tuple(items))


def _exact(v: Any) -> Any:
    """A number as compared by a guard: floats by their bits (-0.0 is not 0.0, and a NaN
    equals itself), anything else as it is."""
    if type(v) is float:
        return v.hex()
    if type(v) is complex:
        return (v.real.hex(), v.imag.hex())
    return v


def _changed(old: Any, new: Any) -> bool:
    return old is _MISSING or type(old) is not type(new) or _exact(old) != _exact(new)


def _state(v: Any, keep: list[Any] | None = None) -> Any:
    """How a guard on ``v`` compares: by value (snapshot), by identity plus in-place version for
    a tensor, by identity for a module, by identity plus fields for a plain object (a config
    object read as ``self.cfg.scale``, a helper holding tensors); anything else by identity."""
    snap = _snapshot(v, 0, keep)
    if snap is not _MISSING:
        return ("value", snap)
    if isinstance(v, torch.Tensor):
        return ("tensor", id(v), compat.tensor_versions([v]))
    if isinstance(v, torch.nn.Module):
        return ("module", id(v))
    if isinstance(v, types.MethodType):  # a new bound-method object on every access
        if plain_object(v.__self__):  # a helper's method: its fields change without a hook
            return ("bound", id(v.__func__), _object_state(v.__self__, 0, keep))
        return ("method", id(v.__func__), id(v.__self__))
    if isinstance(v, functools.partial):  # its arguments, which may be edited in place
        return (
            "partial",
            _state(v.func, keep),
            tuple(_state(a, keep) for a in v.args),
            tuple((k, _state(a, keep)) for k, a in sorted(v.keywords.items())),
        )
    if callable(v) and isinstance(v, types.FunctionType | types.BuiltinFunctionType):
        return ("function", id(v))
    if plain_object(v):
        return ("object", _object_state(v, 0, keep))
    # anything else (a class, a range, a C object): by identity, so at least a replaced value
    # is traced again
    return ("identity", id(v))


@dataclasses.dataclass(frozen=True)
class Guard:
    """``getattr(obj, name)`` (or ``obj[name]`` for a namespace dict) compares as ``state``."""

    obj: Any
    name: str
    state: Any
    value: Any  # kept alive so identity states stay meaningful
    item: bool = False
    # An attribute of a torch built-in module (LeakyReLU.negative_slope, LayerNorm.eps): written
    # only through nn.Module.__setattr__, which moves the structure epoch for those modules.
    builtin: bool = False
    keep: tuple[Any, ...] = ()  # tensors the state names by id, kept alive with it

    def __post_init__(self) -> None:
        # The very same object means the same state: an immutable value, a module or function
        # (compared by identity anyway). Not a list, dict or object, whose contents may change.
        v = self.value
        same = (
            type(v) in _SCALARS
            or (isinstance(v, tuple) and all(type(x) in _SCALARS for x in v))
            or self.state[0] in ("module", "function")
        )
        object.__setattr__(self, "_identity", same)

    def holds(self) -> bool:
        try:
            now = self.obj[self.name] if self.item else getattr(self.obj, self.name)
        except (AttributeError, KeyError):
            return self.state is _ABSENT
        if now is self.value and self._identity:  # type: ignore[attr-defined]
            return True  # the common case: the very same immutable value, module or function
        return _state(now) == self.state

    @property
    def structural(self) -> bool:
        """A submodule or method read: it can only change through ``nn.Module.__setattr__``, so
        checking it can wait until :func:`structure_epoch` moves."""
        return self.builtin or (
            not self.item
            and (
                self.state[0] in ("module", "method")
                # a method on a class: see check_watched_methods
                or (self.state[0] == "function" and (id(self.obj), self.name) in _WATCHED_KEYS)
            )
        )

    def __str__(self) -> str:
        owner = "global" if self.item else type(self.obj).__name__
        if self.state is _ABSENT:
            return f"{owner}.{self.name} (was not set)"
        return f"{owner}.{self.name} (was {self.value!r:.60})"


def _guard_on(
    obj: Any, name: str, value: Any, item: bool = False, builtin: bool = False
) -> list[Guard]:
    """A guard on ``obj.name`` (``obj[name]`` with ``item``) holding ``value`` now."""
    keep: list[Any] = []
    state = _state(value, keep)
    return [Guard(obj, name, state, value, item=item, builtin=builtin, keep=tuple(keep))]


class GuardSet:
    """A compiled entry's guards: value guards checked on every use, structural ones only when a
    module attribute has been set since they last held (one integer compare otherwise)."""

    __slots__ = ("epoch", "structural", "values")

    def __init__(self, guards: Iterable[Guard]) -> None:
        gs = list(guards)
        self.values = tuple(g for g in gs if not g.structural)
        self.structural = tuple(g for g in gs if g.structural)
        self.epoch = _EPOCH[0]

    def __bool__(self) -> bool:
        return bool(self.values or self.structural)

    def __iter__(self) -> Iterator[Guard]:
        return iter((*self.values, *self.structural))

    def holds(self) -> bool:
        for g in self.values:
            if not g.holds():
                return False
        if self.epoch != _EPOCH[0]:
            for g in self.structural:
                if not g.holds():
                    return False
            self.epoch = _EPOCH[0]
        return True


# Bumped whenever a module, parameter, buffer, function or method is set on (or deleted from) any
# nn.Module: structural guards are rechecked only then.
_EPOCH = [0]
_STRUCTURAL_TYPES = (torch.nn.Module, torch.nn.Parameter, types.FunctionType, types.MethodType)
_installed = [False]


# Per model: (class, name) -> the function it held when a guard was made on it. Replacing a
# method on a class goes through no hook, so every call of the converted model compares these
# (a getattr each) and moves the epoch when one changed; the guards themselves are structural.
_WATCHED_METHODS: weakref.WeakKeyDictionary[Any, dict[tuple[int, str], tuple[type, str, Any]]] = (
    weakref.WeakKeyDictionary()
)
_WATCHED_KEYS: set[tuple[int, str]] = set()


def watch_method(root: Any, c: type, name: str) -> None:
    """Compare ``c.name`` on every call of ``root``'s converted model (see
    check_watched_methods)."""
    _WATCHED_METHODS.setdefault(root, {}).setdefault((id(c), name), (c, name, getattr(c, name)))
    _WATCHED_KEYS.add((id(c), name))


def check_watched_methods(root: Any) -> None:
    """Move the structure epoch if a method of ``root``'s classes guarded by identity was
    replaced on its class."""
    watched = _WATCHED_METHODS.get(root) if root is not None else None
    for key, (c, name, f) in (watched or {}).items():
        if getattr(c, name, None) is not f:
            watched[key] = (c, name, getattr(c, name, None))  # type: ignore[index]
            _EPOCH[0] += 1


def structure_epoch() -> int:
    """Bumped on every structural write to any module (see install_structure_watch)."""
    return _EPOCH[0]


# Set while a region is traced: (module, attribute, old value, file, line) for each number a
# module attribute is set to there (``self.nfe += 1`` in a submodule a traced helper calls). The
# write would happen only while tracing, never when the compiled region runs.
_NUMBER_WRITES: contextvars.ContextVar[list[tuple[Any, str, Any, str, int]] | None] = (
    contextvars.ContextVar("dycl_number_writes", default=None)
)

_NUMBERS = (int, float, bool)
_WATCHED: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "dycl_watched_modules", default=frozenset()
)


@contextlib.contextmanager
def number_writes(
    modules: Iterable[torch.nn.Module],
) -> Iterator[list[tuple[Any, str, Any, str, int]]]:
    """Record the attributes of ``modules`` set to new Python numbers inside the block; undone
    at its end (they were made by tracing, not by a run of the model). Modules made inside the
    block (by the code, or by tracing itself) are not watched."""
    writes: list[tuple[Any, str, Any, str, int]] = []
    modules = list(modules)
    _WATCHED.set(frozenset(id(m) for m in modules))
    before = [(m, {k: v for k, v in m.__dict__.items() if type(v) in _NUMBERS}) for m in modules]
    token = _NUMBER_WRITES.set(writes)
    try:
        yield writes
    finally:
        _NUMBER_WRITES.reset(token)
        seen = {(id(obj), name) for obj, name, *_ in writes}
        for m, numbers in before:  # set around Module.__setattr__ (`object.__setattr__`)
            for k, v in list(m.__dict__.items()):
                old = numbers.get(k, _MISSING)
                if type(v) in _NUMBERS and (id(m), k) not in seen:
                    if _changed(old, v):
                        code = getattr(type(m).forward, "__code__", None)
                        where = (code.co_filename, code.co_firstlineno) if code else ("", 0)
                        writes.append((m, k, old, *where))
        for obj, name, old, _, _ in reversed(writes):
            if old is _MISSING:
                obj.__dict__.pop(name, None)
            else:
                obj.__dict__[name] = old


@contextlib.contextmanager
def tensor_writes(objects: Iterable[Any]) -> Iterator[list[str]]:
    """Find tensors made while tracing (fake tensors) that the block left in the attributes of
    ``objects`` (modules, helper objects: ``self.state["hidden"] = (h,)`` in a submodule traced
    into a region, which a compiled region would never store); put the values from before back,
    and yield a description of each (``RNNDecoder.state``)."""
    saved = [(m, dict(m.__dict__), _shallow_containers(m.__dict__)) for m in objects]
    known: set[int] = set()
    for _, before, containers in saved:
        for v in (*before.values(), *containers.values()):
            _tensor_ids(v, known)
    found: list[str] = []
    try:
        yield found
    finally:
        for m, before, containers in saved:
            d = m.__dict__
            if isinstance(m, torch.nn.RNNBase):
                # An RNN's list of its parameters (and weak references to them), refreshed from
                # the traced ones on each call: a cache PyTorch derives, not state. Put back.
                for k in _RNN_CACHES:
                    if k in before:
                        d[k] = before[k]
            for k, v in list(d.items()):
                if k in ("_parameters", "_modules"):
                    continue
                if _new_tensor(v, known):
                    found.append(f"{type(m).__name__}.{k}")
                    if id(v) in containers:  # the same list / dict: its old entries back
                        plan.refill(v, containers[id(v)])
                    elif k in before:
                        d[k] = before[k]
                    else:
                        del d[k]


_RNN_CACHES = ("_flat_weights", "_flat_weight_refs")


@contextlib.contextmanager
def object_writes(objects: Iterable[Any]) -> Iterator[list[str]]:
    """Plain Python objects among a region's live-ins (a transformers ``DynamicCache``, a beam
    hypothesis list's owner, a counter object) whose state the traced code changed: an attribute
    set (``self.seen_tokens += n``) or a container it holds, directly or inside another, changed
    (``self.key_cache.append``, ``self.per_layer[i].append``, a deque, a Counter). A compiled
    region would change them once, at capture, and never again. Everything is put back as it was
    before the capture, and each change is described (``DynamicCache.key_cache``) in the yielded
    list, after the block."""
    saved = []
    for o in objects:
        state = fields(o)
        saved.append((o, state, {k: containers_in(v) for k, v in state.items()}))
    found: list[str] = []
    try:
        yield found
    finally:
        for o, before, held in saved:
            now = fields(o)
            changed = {
                k
                for k in (*before, *now)
                if _rebound(before.get(k, _MISSING), now.get(k, _MISSING))
            }
            changed |= {
                k for k, cs in held.items() if any(entries_of(c)[0] != e[0] for c, e in cs.values())
            }
            if changed:
                found.extend(f"{type(o).__name__}.{k}" for k in sorted(changed))
                for cs in held.values():
                    for c, entries in cs.values():
                        _restore(c, entries)
                replace_fields(o, before)


@contextlib.contextmanager
def container_writes(containers: Iterable[Any]) -> Iterator[list[str]]:
    """Lists, dicts, sets and deques of the host (reached through a bound method, a
    ``functools.partial``, a closure or a module's attributes) that the traced code changed:
    each is put back as it was, and described (``a list of 2``) in the yielded list after the
    block."""
    saved = [(c, entries_of(c)) for c in containers]
    found: list[str] = []
    try:
        yield found
    finally:
        for c, entries in saved:
            if entries_of(c)[0] != entries[0]:
                found.append(f"a {type(c).__name__} of {len(entries[1])}")
                _restore(c, entries)


def _rebound(before: Any, now: Any) -> bool:
    """Whether an attribute now holds another object (an equal number counts as the same)."""
    if before is now:
        return False
    if type(before) in (int, float, bool, str, complex) and type(before) is type(now):
        return bool(_exact(before) != _exact(now))
    return True


def containers_in(v: Any, depth: int = 0, out: dict[int, Any] | None = None) -> dict[int, Any]:
    """The mutable containers (list, dict and its subclasses, set, deque) ``v`` is or holds
    through other containers and tuples, three levels deep: id -> (container, its entries)."""
    out = {} if out is None else out
    if depth > 3 or id(v) in out:
        return out
    items: Iterable[Any]
    if isinstance(v, CONTAINER_TYPES):
        out[id(v)] = (v, entries_of(v))
        items = v.values() if isinstance(v, dict) else v
    elif type(v) is tuple:
        items = v
    else:
        return out
    for x in items:
        containers_in(x, depth + 1, out)
    return out


def entries_of(c: Any) -> Any:
    """What a container holds, by identity (a dict: keys and values, in order)."""
    if isinstance(c, dict):
        return tuple((k, id(x)) for k, x in c.items()), dict(c)
    if isinstance(c, set):
        return frozenset(map(id, c)), set(c)
    return tuple(map(id, c)), list(c)


def _restore(c: Any, entries: Any) -> None:
    """``c`` holding what ``entries`` (``_entries_of``) recorded, the object itself kept."""
    _, items = entries
    if entries_of(c)[0] == entries[0]:
        return
    c.clear()
    if isinstance(c, dict):
        dict.update(c, items)  # (Counter.update would count the pairs as elements)
    elif isinstance(c, set):
        c.update(items)
    else:
        c.extend(items)


def _shallow_containers(d: dict[str, Any]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for v in d.values():
        if type(v) is list:
            out[id(v)] = list(v)
        elif type(v) is dict:
            out[id(v)] = dict(v)
    return out


def _tensor_ids(v: Any, out: set[int], depth: int = 0) -> None:
    if isinstance(v, torch.Tensor):
        out.add(id(v))
    elif depth <= 3 and type(v) in (list, tuple):
        for x in v:
            _tensor_ids(x, out, depth + 1)
    elif depth <= 3 and type(v) is dict:
        for x in v.values():
            _tensor_ids(x, out, depth + 1)


def _new_tensor(v: Any, known: set[int], depth: int = 0) -> bool:
    """Whether ``v`` is or holds (in lists, tuples, dicts) a tensor not in ``known``."""
    if isinstance(v, torch.Tensor):
        return id(v) not in known
    if depth > 3:
        return False
    if type(v) in (list, tuple):
        return any(_new_tensor(x, known, depth + 1) for x in v)
    if type(v) is dict:
        return any(_new_tensor(x, known, depth + 1) for x in v.values())
    return False


def install_structure_watch() -> None:
    """Wrap ``nn.Module.__setattr__`` / ``__delattr__`` once per process to bump the epoch (an
    isinstance check per module attribute write)."""
    if _installed[0]:
        return
    _installed[0] = True
    setattr_ = torch.nn.Module.__setattr__
    delattr_ = torch.nn.Module.__delattr__

    def watched_setattr(self: torch.nn.Module, name: str, value: Any) -> None:
        # Plain tensors are state a forward may write every call; only registered buffers count.
        # Any public attribute of a torch built-in module is configuration (guards on it are
        # structural).
        d = self.__dict__
        rec = _NUMBER_WRITES.get()
        if rec is not None and type(value) in (int, float, bool) and id(self) in _WATCHED.get():
            old = d.get(name, _MISSING)
            if _changed(old, value):
                caller = sys._getframe(1)
                rec.append((self, name, old, caller.f_code.co_filename, caller.f_lineno))
        if (
            isinstance(value, _STRUCTURAL_TYPES)
            # None replacing a submodule / parameter / buffer (not a recurrent state reset)
            or (value is None and _holds_structure(d, name))
            or (isinstance(value, torch.Tensor) and name in d.get("_buffers", ()))
            or (_is_torch_builtin(self) and not name.startswith("_"))
        ):
            _EPOCH[0] += 1
        setattr_(self, name, value)

    def watched_delattr(self: torch.nn.Module, name: str) -> None:
        _EPOCH[0] += 1
        delattr_(self, name)

    torch.nn.Module.__setattr__ = watched_setattr  # type: ignore[method-assign]
    torch.nn.Module.__delattr__ = watched_delattr  # type: ignore[method-assign]
    apply_ = torch.nn.Module._apply

    def watched_apply(self: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        _EPOCH[0] += 1  # .double(), .half(), .to(...): every tensor's data replaced
        rec = _REGISTERED.get()
        if rec is not None and id(self) in _WATCHED.get():  # a submodule cast in forward
            rec.append(f"{type(self).__name__}.to(...)")
        return apply_(self, *args, **kwargs)

    torch.nn.Module._apply = watched_apply  # type: ignore[method-assign]

    for name in ("register_buffer", "register_parameter", "register_module", "add_module"):
        # (around __setattr__: HF's rotary embeddings grow their cos/sin caches in forward)
        setattr(torch.nn.Module, name, _moving_epoch(getattr(torch.nn.Module, name)))
    for cls in _CONTAINERS:  # edits that write _modules directly (insert, clear, ...)
        for name in ("insert", "clear", "pop", "__delitem__", "extend", "append", "update"):
            if name in vars(cls):
                setattr(cls, name, _moving_container(vars(cls)[name]))

    from torch.nn.modules import module as torch_module

    for owner, name in (
        (torch.nn.Module, "register_forward_hook"),
        (torch.nn.Module, "register_forward_pre_hook"),
        (torch_module, "register_module_forward_hook"),
        (torch_module, "register_module_forward_pre_hook"),
    ):
        setattr(owner, name, _counting_hooks(getattr(owner, name)))


def hook_epoch() -> int:
    """Bumped whenever a forward hook or pre-hook is registered anywhere (see
    install_structure_watch): a converted model checks its modules again then."""
    return _HOOK_EPOCH[0]


_HOOK_EPOCH = [0]


def _moving_container(edit: Any) -> Any:
    @functools.wraps(edit)
    def edited(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return edit(self, *args, **kwargs)
        finally:
            _EPOCH[0] += 1

    return edited


def _moving_epoch(register: Any) -> Any:
    @functools.wraps(register)
    def registered(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        _EPOCH[0] += 1
        rec = _REGISTERED.get()
        if rec is not None and id(self) in _WATCHED.get():  # (not make_fx's own GraphModule)
            rec.append(f"{type(self).__name__}.{register.__name__}({name!r})")
        return register(self, name, *args, **kwargs)

    return registered


# Set while a region is traced: the buffers, parameters and submodules registered there (HF's
# rotary embeddings re-register a longer cos/sin cache in forward), and modules cast there.
# Tracing would register a traced value, and the capture's re-parametrisation puts the old
# tensor back when it ends.
_REGISTERED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "dycl_registered", default=None
)


@contextlib.contextmanager
def registrations() -> Iterator[list[str]]:
    """Record what ``register_buffer`` / ``register_parameter`` / ``register_module`` calls
    the block makes (see _REGISTERED)."""
    found: list[str] = []
    token = _REGISTERED.set(found)
    try:
        yield found
    finally:
        _REGISTERED.reset(token)


def _counting_hooks(register: Any) -> Any:
    @functools.wraps(register)
    def registered(*args: Any, **kwargs: Any) -> Any:
        _HOOK_EPOCH[0] += 1
        return register(*args, **kwargs)

    return registered


def _code_names(fn: Any) -> set[str]:
    """Every global and attribute name ``fn``'s code (nested code included) refers to."""
    names: set[str] = set()
    code = getattr(fn, "__code__", None)
    todo = [code] if code is not None else []
    while todo:
        c = todo.pop()
        names.update(c.co_names)
        todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return names


class _Modes:
    """PyTorch's global modes as attributes, for guards: code calling ``torch.is_grad_enabled()``
    bakes its current answer into a capture."""

    @property
    def is_grad_enabled(self) -> bool:
        return torch.is_grad_enabled()

    @property
    def is_inference_mode_enabled(self) -> bool:
        return torch.is_inference_mode_enabled()

    @property
    def is_autocast_enabled(self) -> bool:
        return torch.is_autocast_enabled()


_MODES = _Modes()
_MODE_NAMES = frozenset(n for n in vars(_Modes) if n.startswith("is_"))


def mode_guards(modes: frozenset[str]) -> list[Guard]:
    """Guards on PyTorch global modes (``is_grad_enabled``) a capture's result depends on."""
    return [
        Guard(_MODES, m, ("value", (bool, getattr(_MODES, m))), getattr(_MODES, m))
        for m in sorted(modes)
    ]


def global_guards(
    fn: Any,
    read: Iterable[Guard] = (),
    values: tuple[Any, ...] = (),
    programs: frozenset[Any] = frozenset(),
) -> list[Guard]:
    """Guards on the module-level globals a region function names (a threshold constant, a
    config dict or object, a mask tensor): what they hold is baked into a capture like an
    attribute. A user class named there is guarded on the class attributes the code names.
    So are the globals of the user's code the capture may have run inside the region: the
    methods of the modules it ``read`` attributes of (``forward`` among them: every module called
    has its ``forward`` read) and of the plain objects among ``values`` (``self.helper`` reading
    ``SCALE``), and the user's functions any of these call, except those with host programs of
    their own (the code objects in ``programs``: their regions guard what they read, and their
    host code reads globals live)."""
    out = []
    for mode in sorted(_code_names(fn) & _MODE_NAMES):
        v = getattr(_MODES, mode)
        out.append(Guard(_MODES, mode, ("value", (bool, v)), v))
    todo = [fn, *_reached_methods(read, fn, values)]
    done: set[int] = set()
    guarded: set[tuple[int, str]] = set()
    while todo:
        f = todo.pop()
        if id(f) in done or (f is not fn and getattr(f, "__code__", None) in programs):
            continue
        done.add(id(f))
        ns = getattr(f, "__globals__", {})
        names = _code_names(f)
        for name in sorted(names):
            try:
                v = ns[name]  # a loader.Namespace reads the user's module globals live
            except KeyError:
                continue
            if (id(ns), name) in guarded:
                continue
            keys = _constant_keys(f, name) if f is not fn and type(v) is dict else None
            if keys is not None:
                # a callee reading STATS["scale"] of a dict forward also counts calls in: the
                # entries it reads, not the whole dict (which changes every call)
                for k in keys:
                    if k in v:
                        out.extend(_guard_on(v, k, v[k], item=True))
                    else:
                        out.append(Guard(v, k, _ABSENT, _MISSING, item=True))
                continue
            guarded.add((id(ns), name))
            if isinstance(v, type):
                if user_class(v):
                    out.extend(_class_guards(v, names))
                continue
            if isinstance(v, types.ModuleType):
                if user_module(v):  # helpers.act_fn: the user's module attributes the code names
                    for attr in sorted(names & set(vars(v))):
                        x = vars(v)[attr]
                        if not isinstance(x, types.ModuleType | type):
                            out.extend(_guard_on(v, attr, x))
                        if isinstance(x, types.FunctionType) and not foreign(x):
                            todo.append(x)  # gmod.helper reading gmod.SCALE
                continue
            # a function a region calls (traced into it) is guarded by identity: rebinding the
            # global (act = torch.sigmoid) recaptures; the user's own is followed for its globals
            out.extend(_guard_on(ns, name, v, item=True))
            if isinstance(v, types.FunctionType) and not foreign(v):
                todo.append(v)
    return out


@functools.lru_cache(maxsize=1024)
def _subscripts(code: types.CodeType) -> dict[str, tuple[Any, ...] | None]:
    """Per global name a function's source loads: the constant keys it subscripts the name
    with, or None where it uses the name any other way (passes it, iterates it, reads an
    attribute, a computed key)."""
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(code)))
    except (OSError, TypeError, SyntaxError):
        return {}
    parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    out: dict[str, list[Any] | None] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)):
            continue
        parent = parents.get(id(node))
        keys = out.setdefault(node.id, [])
        if (
            keys is not None
            and isinstance(parent, ast.Subscript)
            and parent.value is node
            and isinstance(parent.ctx, ast.Load)
            and isinstance(parent.slice, ast.Constant)
        ):
            keys.append(parent.slice.value)
        else:
            out[node.id] = None
    return {k: None if v is None else tuple(dict.fromkeys(v)) for k, v in out.items()}


def _constant_keys(f: Any, name: str) -> tuple[Any, ...] | None:
    """The constant keys ``f`` reads global ``name`` at, if that is all it does with it."""
    code = getattr(f, "__code__", None)
    if code is None:
        return None
    return _subscripts(code).get(name)


def _reached_methods(
    read: Iterable[Guard], fn: Any, values: tuple[Any, ...]
) -> list[types.FunctionType]:
    """The user's methods a region running ``fn`` may have called: those of the classes of the
    modules whose attributes it ``read`` (or read as submodules) and of the plain objects and
    modules among ``values``, by name from ``fn`` and ``forward``, and those they name in turn.
    Installed packages' code is left out (its globals are its own business, and guarding them
    costs every call)."""
    objects = [*values]
    for g in read:
        objects.append(g.obj)
        if g.state[0] == "module":
            objects.append(g.value)
    classes = _user_classes(v for v in objects if isinstance(v, torch.nn.Module) or plain_object(v))
    out = []
    for name in _method_closure(classes.values(), _code_names(fn) | {"forward"}):
        for c in classes.values():
            f = vars(c).get(name)
            f = getattr(f, "__func__", f)
            if isinstance(f, types.FunctionType) and not foreign(f):
                out.append(f)
    return out


def _user_classes(objects: Iterable[Any]) -> dict[int, type]:
    """The user's classes (by id) in the method resolution orders of ``objects``' types."""
    return {id(c): c for v in objects for c in type(v).__mro__ if user_class(c)}


# Modules whose code reaches their children through ``_modules`` (iteration, indexing), which
# no attribute read records; other modules' submodules are read as attributes (guarded).
_CONTAINERS = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)


class _ModuleTree:
    """A model's containers as a guard reads them (``structure``): which module object sits
    under each name of each ``nn.Sequential`` / ``ModuleList`` / ``ModuleDict``, with its
    type. A parameter-free layer swapped into a container (``seq[1] = nn.Tanh()``) or appended
    to it changes no attribute any capture read; this sees it. Computed once per structure
    epoch (every such change moves it)."""

    __slots__ = ("_at", "_modules", "_structure", "root")

    def __init__(self, root: torch.nn.Module) -> None:
        self.root = root
        self._at = -1
        self._structure = ""
        self._modules: tuple[Any, ...] = ()

    @property
    def structure(self) -> str:
        if self._at != _EPOCH[0]:
            parts = []
            mods = tuple(self.root.modules())
            for m in mods:
                if isinstance(m, _CONTAINERS):
                    parts.append(f"{id(m)}(")
                    for k, c in m._modules.items():
                        parts.append(f"{k}={id(c)}:{type(c).__qualname__},")
                    parts.append(")")
            self._structure = "".join(parts)
            self._modules = mods  # alive while their ids are in the text
            self._at = _EPOCH[0]
        return self._structure


_TREES: weakref.WeakKeyDictionary[Any, _ModuleTree] = weakref.WeakKeyDictionary()


def structure_guard(root: torch.nn.Module | None) -> list[Guard]:
    """A guard on ``root``'s submodule structure (see _ModuleTree), checked when the structure
    epoch moves."""
    if root is None:
        return []
    tree = _TREES.get(root)
    if tree is None:
        tree = _TREES[root] = _ModuleTree(root)
    now = tree.structure
    return [Guard(tree, "structure", ("value", (str, now)), now, builtin=True, keep=tree._modules)]


def brings_modules(g: Guard) -> bool:
    """A failed guard ``g`` means other modules (with their own parameters) may run now."""
    return g.state[0] == "module" or isinstance(g.obj, _ModuleTree)


def object_guards(values: tuple[Any, ...], fn: Any) -> list[Guard]:
    """Guards on the fields of plain objects a region receives (the ``self`` of a helper
    object's method, ``self.pol.decide(h)``): fields its code names, read as constants while
    tracing (module attributes are recorded as they are read; plain objects' are not)."""
    names = _code_names(fn)
    out: list[Guard] = []
    seen: set[int] = set()
    for v in values:
        if not plain_object(v) or id(v) in seen or plain_dataclass(v):
            continue  # (a plain dataclass is rebuilt from its fields: they are in the key)
        seen.add(id(v))
        reached = _method_closure([type(v)], names)  # (`self.threshold(l)` reads self.base)
        # a class answering any name (`__getattr__` delegating to a wrapped dict or object, as
        # mmcv's Config does) may read any field for a name the code spells
        every = _delegates(type(v))
        for k, x in fields(v).items():
            if every or k in reached:
                out.extend(_guard_on(v, k, x))
        if every and isinstance(v, dict):  # an AttrDict: `cfg.scale` reads an entry
            for k, x in dict.items(v):
                out.extend(_guard_on(v, k, x, item=True))
    return out


def _delegates(c: type) -> bool:
    """Whether ``c`` defines its own ``__getattr__`` / ``__getattribute__``."""
    return any(
        "__getattr__" in vars(b) or "__getattribute__" in vars(b)
        for b in c.__mro__
        if b is not object
    )


def _code_of(f: Any) -> types.FunctionType | None:
    """The function a class attribute runs when read or called: a method, a property's getter,
    a ``functools.cached_property``'s function."""
    f = getattr(f, "__func__", f)  # classmethod / staticmethod
    if isinstance(f, property):
        f = f.fget
    elif isinstance(f, functools.cached_property):
        f = f.func
    return f if isinstance(f, types.FunctionType) else None


def _method_closure(classes: Iterable[type], names: set[str]) -> set[str]:
    """``names`` with every name the methods of ``classes`` they reach name in turn."""
    classes = list(classes)
    reached = set(names)
    todo = list(names)
    while todo:
        name = todo.pop()
        for c in classes:
            f = _code_of(inspect.getattr_static(c, name, None))
            if f is not None:
                for n in _code_names(f) - reached:
                    reached.add(n)
                    todo.append(n)
    return reached


def class_guards(root: torch.nn.Module | None, fn: Any) -> list[Guard]:
    """Guards on the class attributes of the model's own module classes (``LIMIT = 0.5`` in a
    class body, read as ``type(self).LIMIT`` or in a classmethod as ``cls.LIMIT``) that the
    region's code or the classes' methods name: a write to the class is seen by no module's
    ``__setattr__``, so these are checked on every call (instance reads are guarded anyway)."""
    if root is None:
        return []
    names = _code_names(fn)
    own = set(names)  # methods the region itself calls: replaced on the class, not followed
    classes = {
        k: c for k, c in _user_classes(root.modules()).items() if issubclass(c, torch.nn.Module)
    }
    for c in classes.values():
        for k, f in vars(c).items():
            f = getattr(f, "__func__", f)  # classmethod / staticmethod
            if k != "__init__" and isinstance(f, types.FunctionType):
                names |= _code_names(f)
    out: list[Guard] = []
    for c in classes.values():
        out.extend(_class_guards(c, names))
    # methods the region may run, by identity on each module's own class, so one replaced on
    # (or added to) a class after convert is traced again: those it names, those they name in
    # turn (`self.mid(h)` calling `self.inner`), and every module class's forward
    reached = _method_closure(classes.values(), own | {"forward"})
    leaves = {id(type(m)): type(m) for m in root.modules() if user_class(type(m))}
    for c in leaves.values():
        for k in sorted(reached):
            f = getattr(c, k, None)
            if isinstance(f, types.FunctionType) and not k.startswith("__"):
                out.append(Guard(c, k, ("function", id(f)), f))
                watch_method(root, c, k)
    return out


def _class_guards(c: type, names: set[str]) -> list[Guard]:
    out = []
    for k, v in vars(c).items():
        if k in names and not k.startswith("__"):
            snap = _snapshot(v)
            if snap is not _MISSING:
                out.append(Guard(c, k, ("value", snap), v))
    return out


def _holds_structure(d: dict[str, Any], name: str) -> bool:
    """A module's ``name`` (its ``__dict__`` is ``d``) holds a submodule, parameter, buffer,
    function or method now."""
    tables = ("_modules", "_parameters", "_buffers")  # (facts.registered, from the dict)
    return any(name in d.get(t, ()) for t in tables) or isinstance(d.get(name), _STRUCTURAL_TYPES)


def _is_torch_builtin(m: Any) -> bool:
    return type(m).__module__.startswith("torch.")


def _is_registered(module: Any, name: str) -> bool:
    """Parameters, buffers and submodules registered on ``module``: parameters and buffers are
    graph inputs (reloaded when written), not constants."""
    d = object.__getattribute__(module, "__dict__")
    return name in d.get("_parameters", {}) or name in d.get("_buffers", {})


_lock = threading.Lock()


@contextlib.contextmanager
def record(
    root: torch.nn.Module | None, seen: list[tuple[Any, str]] | None = None
) -> Iterator[list[Guard]]:
    """Record the guardable attribute reads of ``root``'s user modules in this thread; ``seen``,
    when given, also gets each Python attribute read as ``(module, name)``."""
    install_structure_watch()
    found: list[Guard] = []
    if root is None:
        yield found
        return
    watched = {id(m) for m in root.modules()}
    first: set[tuple[int, str]] = set()
    me = threading.get_ident()
    base = object.__getattribute__

    def hook(obj: Any, name: str) -> Any:
        try:
            value = base(obj, name)
        except AttributeError:
            if id(obj) not in watched or name.startswith("_"):
                raise
            # submodules, parameters and buffers live in nn.Module's own dicts
            try:
                value = type(obj).__getattr__(obj, name)
            except AttributeError:
                # `hasattr(self, "bias_shift")`: the attribute's absence is baked in too
                if threading.get_ident() == me and (id(obj), name) not in first:
                    first.add((id(obj), name))
                    found.append(Guard(obj, name, _ABSENT, _MISSING))
                raise
        if (
            id(obj) in watched
            and not name.startswith("_")  # torch's own bookkeeping (hooks, flags)
            and threading.get_ident() == me
            and (id(obj), name) not in first
        ):
            first.add((id(obj), name))
            if not _is_registered(obj, name):
                if seen is not None:
                    seen.append((obj, name))
                found.extend(_guard_on(obj, name, value, builtin=_is_torch_builtin(obj)))
        return value

    with _lock:
        had = "__getattribute__" in torch.nn.Module.__dict__
        old = torch.nn.Module.__dict__.get("__getattribute__")
        torch.nn.Module.__getattribute__ = hook  # type: ignore[method-assign,assignment]
        try:
            yield found
        finally:
            if had:
                torch.nn.Module.__getattribute__ = old  # type: ignore[method-assign,assignment]
            else:
                del torch.nn.Module.__getattribute__
