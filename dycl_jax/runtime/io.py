"""Conversions at the boundaries: user inputs to arrays, outputs to jax arrays, and jax <-> torch
for ops run in PyTorch on the host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
import torch

from dycl_jax.capture.guards import plain_object
from dycl_jax.compat import ARRAY_IMPL
from dycl_jax.errors import DtypeError, InputError
from dycl_jax.lower import dtypes
from dycl_jax.portable.structure import map_structure as map_structure
from dycl_jax.portable.structure import outputs as _outputs


def _input_leaf(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        # A numpy view: jit copies it to the device at the region call, which is cheaper than
        # making a jax array first (measured 5 us vs 17 us).
        try:
            return dtypes.tensor_to_numpy(value)
        except DtypeError as e:  # a dtype numpy cannot hold (float8, quantized, ...)
            raise InputError(
                f"an input tensor of dtype {value.dtype} is not supported: {e}"
            ) from None
    if isinstance(value, np.ndarray | np.generic):
        if value.dtype == object:
            raise InputError(f"numpy array of dtype object cannot be an input ({value!r:.60})")
    return value


def inputs(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """The converted model's arguments: torch tensors become numpy views (same dtype); numpy and
    jax arrays and every other value pass as they are, inside any containers. Regions take numpy
    and jax arrays alike; the model's outputs are all jax arrays (:func:`outputs`). One tensor
    met more than once (``cm(x, x)``, ``[x, x]``; across calls sharing ``memo``) becomes one
    array, so ``key is query`` holds as in eager.
    """
    memo = {} if memo is None else memo

    def leaf(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            a = memo.get(id(v))
            if a is None:
                a = memo[id(v)] = _input_leaf(v)
            return a
        return _input_leaf(v)

    copied: dict[int, Any] = {}  # one list or dict met twice (`cm(x, acc, acc)`): one copy

    def structure(v: Any) -> Any:
        t = type(v)
        if t is list or t is dict:
            c = copied.get(id(v))
            if c is None:
                if t is list:
                    c = copied[id(v)] = []
                    c.extend(structure(x) for x in v)
                else:
                    c = copied[id(v)] = {}
                    c.update((k, structure(x)) for k, x in v.items())
            return c
        if t is tuple:
            return tuple(structure(x) for x in v)
        if isinstance(v, tuple) and (hasattr(v, "_fields") or hasattr(t, "n_sequence_fields")):
            return map_structure(structure, v, objects=False)
        return leaf(v)

    # (a dataclass is the caller's object itself: what the model sets on it, the caller sees)
    if type(value) is tuple:  # the positional arguments: tensors, the common case, directly
        return tuple(leaf(v) if type(v) is torch.Tensor else structure(v) for v in value)
    if type(value) is dict and not value:
        return value
    return structure(value)


def to_torch(value: Any) -> Any:
    """jax arrays become torch tensors (host copies), inside any containers."""
    return map_structure(
        lambda v: dtypes.numpy_to_tensor(v) if isinstance(v, jax.Array | np.ndarray) else v,
        value,
    )


def to_torch_owned(value: Any, objects: bool = True) -> Any:
    """:func:`to_torch` for code that runs in PyTorch and may write its inputs: each tensor owns
    its storage (``out=`` and ``resize_`` can grow it), one array met twice is one tensor.
    ``objects=False``: dataclasses are passed themselves (the caller converts what they hold in
    place, see ``runtime.runner.held_as_torch``), so what the code sets on them is kept."""
    memo: dict[int, torch.Tensor] = {}

    def one(v: Any) -> Any:
        if not isinstance(v, jax.Array | np.ndarray):
            return v
        if id(v) not in memo:
            memo[id(v)] = dtypes.numpy_to_tensor(v).clone()
        return memo[id(v)]

    return map_structure(one, value, objects)


def from_torch(value: Any) -> Any:
    """torch tensors become numpy arrays (host results stay on the host until a region takes
    them; the model's outputs become jax arrays in :func:`outputs`), inside any containers."""
    return map_structure(
        lambda v: dtypes.tensor_to_numpy(v) if isinstance(v, torch.Tensor) else v, value
    )


def outputs(value: Any) -> Any:
    """The converted model's result as jax arrays, like every tensor: host numpy arrays and
    any torch tensor host code made itself (a helper run on the host, ``torch.zeros(n, 4)``)."""
    if type(value) is ARRAY_IMPL:  # a single array result
        return value
    return _outputs(from_torch(value))


_PLAIN_ARGS = (ARRAY_IMPL, np.ndarray, torch.Tensor, int, float, bool, str, type(None))


def argument_arrays(args: tuple[Any, ...], kwargs: dict[str, Any]) -> set[int] | None:
    """The ids of the numpy arrays the caller's own objects among the arguments hold before a
    call (see :func:`settle_arguments`); None for a call given tensors and numbers only."""
    if all(type(v) in _PLAIN_ARGS for v in args) and all(
        type(v) in _PLAIN_ARGS for v in kwargs.values()
    ):
        return None
    found: set[int] = set()
    for _, _, x in _places((*args, *kwargs.values())):
        found.update(id(y) for y in (x if type(x) is tuple else (x,)))
    return found


# (the caller's container, the call's copy of it, what the copy held, copy entry id -> (that
# entry, the caller's entry it was made from))
ArgumentCopy = tuple[Any, Any, tuple[Any, ...], dict[int, tuple[Any, Any]]]


def argument_copies(originals: tuple[Any, ...], copies: tuple[Any, ...]) -> list[ArgumentCopy]:
    """The lists and dicts among a call's arguments (``originals``) that :func:`inputs` copied
    into ``copies`` (the same structure), paired, with what each copy holds: what the program
    changes in a copy (through a function it is given, a callback) is written back into the
    caller's container after the call (:func:`write_back`), as eager's change would be seen."""
    out: list[ArgumentCopy] = []

    def walk(o: Any, c: Any) -> None:
        t = type(o)
        if o is c or t is not type(c):
            return
        if t is list or t is tuple:
            pairs = list(zip(o, c))
        elif t is dict:
            pairs = [(o[k], c[k]) for k in o if k in c]
        else:
            return
        if t is not tuple:
            held = tuple(c.items()) if t is dict else tuple(c)
            out.append((o, c, tuple(map(id, held)), {id(y): (y, x) for x, y in pairs}))
        for x, y in pairs:
            walk(x, y)

    for o, c in zip(originals, copies):
        walk(o, c)
    return out


def write_back(copies: list[ArgumentCopy]) -> None:
    """Each caller's list or dict whose copy the call changed made to hold what the copy holds:
    the caller's own entries where the copy still holds what was made from them, the call's
    values (jax arrays, like outputs) elsewhere."""
    for o, c, held, made in copies:
        now = tuple(c.items()) if type(c) is dict else tuple(c)
        if tuple(map(id, now)) == held:
            continue
        if type(o) is dict:
            o.clear()
            o.update({k: _given_back(v, made) for k, v in c.items()})
        else:
            o[:] = [_given_back(y, made) for y in c]


def returned_arguments(result: Any, out: Any, copies: list[ArgumentCopy]) -> Any:
    """``out`` (the outputs made from the program's ``result``) with each list or dict argument
    copy the program returned given back as the caller's own container (written back already):
    ``return acc`` hands back the very list the caller passed, as eager does."""
    if not copies:
        return out
    mine = {id(c): o for o, c, _, _ in copies}

    def walk(r: Any, o: Any) -> Any:
        own = mine.get(id(r))
        if own is not None:
            return own
        t = type(r)
        if t is not type(o):
            return o
        if t is list or t is tuple:
            if len(r) != len(o):
                return o
            items = [walk(a, b) for a, b in zip(r, o)]
            return o if all(a is b for a, b in zip(items, o)) else t(items)
        if t is dict:
            new = {k: walk(r[k], x) if k in r else x for k, x in o.items()}
            return o if all(new[k] is x for k, x in o.items()) else new
        return o

    return walk(result, out)


def _given_back(y: Any, made: dict[int, tuple[Any, Any]]) -> Any:
    """The caller's entry ``y`` was made from (see :func:`argument_copies`), else ``y`` as an
    output."""
    was = made.get(id(y))
    return was[1] if was is not None and was[0] is y else outputs(y)


def settle_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], before: set[int] | None
) -> None:
    """Host arrays that the call stored on the caller's own objects (a nested program's
    ``tree.state = (c, h)`` on the nodes of a tree the model was given) become jax arrays, as
    the call's outputs are: numpy arrays are the host's internal form. Arrays the objects held
    before the call (``before``) are the user's and stay as they are."""
    if before is None:
        return

    def new(y: Any) -> bool:
        return isinstance(y, np.ndarray) and id(y) not in before

    for holder, key, x in list(_places((*args, *kwargs.values()))):
        if type(x) is tuple:
            if any(new(y) for y in x):
                holder[key] = tuple(outputs(y) if new(y) else y for y in x)
        elif new(x):
            holder[key] = outputs(x)


def _places(values: tuple[Any, ...]) -> Iterator[tuple[Any, Any, Any]]:
    """(holder, key, x) for each numpy array, or tuple holding one, ``x`` reached from
    ``values`` through lists, dicts and plain objects' attributes: ``holder[key]`` is where it
    is (a list, a dict, an object's ``__dict__``)."""
    seen: set[int] = set()
    budget = 10_000  # objects visited at most (a huge object graph is left as it is)
    stack = list(values)
    while stack and budget > 0:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        budget -= 1
        t = type(v)
        if t is tuple:
            stack.extend(v)
            continue
        if t is list or t is dict:
            holder: Any = v
        elif _plain_object(v):
            holder = v.__dict__
        else:
            continue
        for k, x in list(holder.items() if type(holder) is dict else enumerate(holder)):
            if isinstance(x, np.ndarray) or (
                type(x) is tuple and any(isinstance(y, np.ndarray) for y in x)
            ):
                yield holder, k, x
            else:
                stack.append(x)


def _plain_object(v: Any) -> bool:
    """A plain object keeping its state in a ``__dict__`` (``guards.plain_object``; not a
    callable one)."""
    return plain_object(v) and hasattr(v, "__dict__") and not callable(v)
