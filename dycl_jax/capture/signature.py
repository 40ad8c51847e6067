"""Input signatures: the compile-cache key of a region call, and the flat array inputs.

A region's live-in values are split into **array leaves** (jax arrays, and Python scalars that were
read back from tensors when they are passed as dynamic 0-d inputs) and **static parts** (Python
numbers, strings, None, modules and other objects, container structure). The key holds the leaves'
shapes and dtypes and the static parts' values (objects by identity), so a compiled graph is reused
exactly when the trace would be the same.
"""

from __future__ import annotations

import collections
import collections.abc
import copy
import dataclasses
import types
from typing import Any

import jax
import numpy as np
import torch

from dycl_jax.compat import ARRAY_IMPL
from dycl_jax.lower import dtypes
from dycl_jax.portable.keys import named_tuple_type
from dycl_jax.portable.structure import plain_dataclass as plain_dataclass

_ARRAY = jax.Array
_ARRAY_IMPL = ARRAY_IMPL  # exact type of a concrete jax array (faster than isinstance on jax.Array)
_SCALARS = (bool, int, float, str, complex, type(None))
# numpy integers and booleans (``np.lcm(4, 6)``, a shape product): static values like Python
# ints, which the code uses as numbers (``n % k``, sizes); numpy floats stay array leaves.
_NUMPY_STATIC = (np.integer, np.bool_)
_DICT_VIEWS = (collections.abc.ValuesView, collections.abc.ItemsView, collections.abc.KeysView)


def split(
    values: tuple[Any, ...], dynamic: frozenset[int], refs: list[Any] | None = None
) -> tuple[tuple[Any, ...], list[Any]]:
    """(key, leaves) for live-in ``values``; positions in ``dynamic`` pass int/float as arrays."""
    key: list[Any] = []
    leaves: list[Any] = []
    for i, v in enumerate(values):
        if i in dynamic and scalar_input(v):
            key.append(("s", type(v)))
            leaves.append(np.asarray(v, np.int64 if type(v) is int else np.float64))
        else:
            key.append(_key(v, leaves, refs))
    # the same condition as rebuild's: the key records exactly the sharing the trace builds
    if len(leaves) > 1 and _any_nested(values, dynamic):
        same = shared_leaves(leaves)
        if same is not None:
            key.append(("same", same))
    return tuple(key), leaves


def scalar_input(v: Any) -> bool:
    """A host number passed to a region as a 0-d array: a float, or an int int64 holds (a
    larger one, ``n * n`` of big ints, is a static value of the signature instead)."""
    t = type(v)
    return t is float or (t is int and -(2**63) <= v < 2**63)


def shared_leaves(leaves: list[Any]) -> tuple[int, ...] | None:
    """For leaves that are one object met more than once (``hs = [h, h]``, ``[t] * 3``), the
    index of each leaf's first occurrence; None when all are distinct. Part of the key: the
    region is traced with one tensor at every such place, so an in-place write through one
    entry is seen through the others, as in eager PyTorch (see ``rebuild``)."""
    ids = [id(x) for x in leaves]
    if len(set(ids)) == len(ids):
        return None
    first: dict[int, int] = {}
    return tuple(first.setdefault(i, k) for k, i in enumerate(ids))


def _key(v: Any, leaves: list[Any], refs: list[Any] | None = None) -> Any:
    """The key of one value; objects keyed by identity are appended to ``refs`` (the compiled
    entry keeps them alive, so their ids are not reused while the entry exists)."""
    t = type(v)
    if t is _ARRAY_IMPL:  # the hot path: checked by exact type, isinstance on jax.Array is slow
        leaves.append(v)
        return (v.shape, v.dtype)
    if t is np.ndarray:  # a torch input as a numpy view, or a host-run op's result
        leaves.append(v)
        return (v.shape, v.dtype)
    if t in _SCALARS or isinstance(v, _NUMPY_STATIC):
        return (t, v)
    if isinstance(v, torch.nn.Module):  # common and never a pytree: by identity, early
        if refs is not None:
            refs.append(v)
        return ("o", id(v))
    if isinstance(v, _ARRAY):
        leaves.append(v)
        return (v.shape, v.dtype)
    if t is list or t is tuple:
        return (t, tuple(_key(x, leaves, refs) for x in v))
    if t is dict:
        return (t, tuple((k, _key(x, leaves, refs)) for k, x in v.items()))
    if named_tuple_type(t):
        # a NamedTuple, or a struct sequence (torch.return_types.topk from a host-run op)
        return (t, tuple(_key(x, leaves, refs) for x in v))
    if plain_dataclass(v):  # a dataclass / HF ModelOutput built on the host from tensors
        fields = dataclasses.fields(v)
        return (t, tuple((f.name, _key(getattr(v, f.name), leaves, refs)) for f in fields))
    if collection(v):  # OrderedDict, defaultdict, Counter, deque: by contents, like dict/list
        items = v.items() if isinstance(v, dict) else enumerate(v)
        extra = v.maxlen if isinstance(v, collections.deque) else None
        return (t, extra, tuple((k, _key(x, leaves, refs)) for k, x in items))
    if (t is set or t is frozenset) and all(type(x) in _SCALARS for x in v):
        return (t, frozenset(v))  # read by the region (len, `in`) as Python values
    if isinstance(v, _DICT_VIEWS):  # d.values() made on the host: its items (as a list)
        return (t, tuple(_key(x, leaves, refs) for x in v))
    if isinstance(v, np.ndarray | np.generic):
        # Host arrays (results of ops run in PyTorch on the host) go to jit as they are: cheaper
        # than making a jax array first (measured 5 us vs 17 us).
        leaves.append(v)
        return (np.shape(v), np.result_type(v))
    if isinstance(v, torch.dtype | torch.device | torch.Size):
        return (t, v)
    if _state_tensor(v):
        # a torch tensor held in module state passed to the region (self.buf = [zeros, ...]):
        # a value like any array, never a constant baked in while its object is unchanged
        leaf = dtypes.tensor_to_numpy(v)
        leaves.append(leaf)
        return (leaf.shape, leaf.dtype)
    if t is types.FunctionType and v.__closure__:
        # A closure (a lambda or def made in forward) reads its cells when the region runs:
        # Python values there are part of the key, so a counter it closes over is not baked in,
        # and arrays there are leaves (ToMe's merge, DEQ's `lambda z: self.f(z, x)`). Keyed by
        # its code: the same lambda made again on the next call reuses the compile.
        cells = tuple(_cell_key(c, leaves, refs) for c in v.__closure__)
        if refs is not None:
            refs.append(v)
        return ("f", id(v.__code__), cells, _cell_key_value(v.__defaults__, refs))
    # Functions, other objects and parameters (read as constants while the object is
    # unchanged): keyed by identity.
    if refs is not None:
        refs.append(v)
    return ("o", id(v))


def _cell_key(cell: Any, leaves: list[Any], refs: list[Any] | None) -> Any:
    try:
        x = cell.cell_contents
    except ValueError:  # an empty cell
        return ("empty",)
    if _cell_array(x):
        leaves.append(x)
        return ("a", x.shape, x.dtype)
    return _cell_key_value(x, refs)


def _cell_array(x: Any) -> bool:
    return type(x) is _ARRAY_IMPL or isinstance(x, _ARRAY | np.ndarray)


def _rebuilt_closure(f: types.FunctionType, it: Any) -> types.FunctionType:
    """``f`` with the arrays its cells hold replaced, in order, by the next of ``it``."""
    cells = []
    changed = False
    for cell in f.__closure__ or ():
        try:
            x = cell.cell_contents
        except ValueError:
            cells.append(cell)
            continue
        if _cell_array(x):
            cells.append(types.CellType(next(it)))
            changed = True
        else:
            cells.append(cell)
    if not changed:
        return f
    g = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, tuple(cells))
    g.__kwdefaults__ = f.__kwdefaults__
    g.__qualname__ = f.__qualname__
    return g


def _cell_key_value(x: Any, refs: list[Any] | None) -> Any:
    t = type(x)
    if t in _SCALARS:
        return (t, x)
    if (t is tuple or t is list) and all(type(e) in _SCALARS for e in x):
        return (t, tuple(x))
    if refs is not None:
        refs.append(x)
    return ("o", id(x))


def scalar_leaves(values: tuple[Any, ...], dynamic: frozenset[int]) -> set[int]:
    """Indices, among the leaves of ``split``, of the host scalars passed as 0-d arrays."""
    starts = leaf_starts(values, dynamic)
    return {starts[i] for i, v in enumerate(values) if i in dynamic and scalar_input(v)}


def leaf_starts(values: tuple[Any, ...], dynamic: frozenset[int]) -> list[int]:
    """For each of ``values``, the index of its first leaf among the leaves of ``split``."""
    out: list[int] = []
    leaves: list[Any] = []
    for i, v in enumerate(values):
        out.append(len(leaves))
        if i in dynamic and scalar_input(v):
            leaves.append(v)
        else:
            _key(v, leaves)
    return out


def rebuild(values: tuple[Any, ...], dynamic: frozenset[int], tensors: list[Any]) -> list[Any]:
    """``values`` with every leaf replaced, in order, by the next of ``tensors``. A list, dict
    or array met more than once (``pair = (a, a)``, ``[h, h]``) is rebuilt once: a write
    through one path is seen through the other, as in Python."""
    it = iter(tensors)
    out = []
    memo: dict[int, Any] = {}
    # Arrays met again are shared only where split keyed them so (a value that may hold several
    # arrays is among the values): two names bound to one array stay two inputs, as before.
    arrays: dict[int, Any] | None = {} if _any_nested(values, dynamic) else None
    for i, v in enumerate(values):
        if i in dynamic and scalar_input(v):
            out.append(next(it))
        else:
            out.append(_rebuild(v, it, memo, arrays))
    return out


def _any_nested(values: tuple[Any, ...], dynamic: frozenset[int]) -> bool:
    """Whether a value that may hold several arrays (a list, dict, tuple, object) is among
    ``values``: the condition under which ``split`` records shared leaves."""
    for i, v in enumerate(values):
        t = type(v)
        if i in dynamic and scalar_input(v):
            continue
        if t is not _ARRAY_IMPL and t is not np.ndarray and t not in _SCALARS:
            return True
    return False


def _rebuild(v: Any, it: Any, memo: dict[int, Any], arrays: dict[int, Any] | None) -> Any:
    if isinstance(v, _NUMPY_STATIC):
        return v
    if type(v) is _ARRAY_IMPL or isinstance(v, _ARRAY | np.ndarray | np.generic):
        # every occurrence has its leaf; one array met again is the first one's tensor where
        # the key records which are the same (see shared_leaves)
        t = next(it)
        return t if arrays is None else arrays.setdefault(id(v), t)
    if _state_tensor(v):
        return next(it)
    t = type(v)
    if t is list or t is dict:
        # every occurrence consumes its own leaves (split keyed each); the first object stands
        new = (
            [_rebuild(x, it, memo, arrays) for x in v]
            if t is list
            else {k: _rebuild(x, it, memo, arrays) for k, x in v.items()}
        )
        return memo.setdefault(id(v), new)
    if t is tuple:
        return t(_rebuild(x, it, memo, arrays) for x in v)
    if isinstance(v, tuple) and hasattr(t, "_fields"):
        return t(*(_rebuild(x, it, memo, arrays) for x in v))
    if isinstance(v, tuple) and hasattr(t, "n_sequence_fields"):
        return t(tuple(_rebuild(x, it, memo, arrays) for x in v))
    if plain_dataclass(v):
        return dataclasses.replace(
            v,
            **{
                f.name: _rebuild(getattr(v, f.name), it, memo, arrays)
                for f in dataclasses.fields(v)
            },
        )
    if collection(v):
        made: Any
        if isinstance(v, dict):
            made = copy.copy(v)  # keeps a defaultdict's factory
            made.clear()
            # dict's own update: Counter.update would count the pairs as elements
            dict.update(made, ((k, _rebuild(x, it, memo, arrays)) for k, x in v.items()))
        else:
            made = collections.deque((_rebuild(x, it, memo, arrays) for x in v), maxlen=v.maxlen)
        return memo.setdefault(id(v), made)
    if t is set and all(type(x) in _SCALARS for x in v):
        return memo.setdefault(id(v), set(v))
    if isinstance(v, _DICT_VIEWS):
        return [_rebuild(x, it, memo, arrays) for x in v]
    if t is types.FunctionType and v.__closure__:
        return _rebuilt_closure(v, it)
    return v


def collection(v: Any) -> bool:
    """A dict subclass or deque from ``collections`` (not a user's class built on dict)."""
    return isinstance(v, dict | collections.deque) and type(v).__module__ == "collections"


def _state_tensor(v: Any) -> bool:
    """A plain torch tensor among the values (not a parameter: those are the model's)."""
    return isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter)
