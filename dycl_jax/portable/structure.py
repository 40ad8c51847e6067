"""Nested Python structures of arrays (lists, tuples, named tuples, dicts, dataclasses): mapping
over their leaves, and the converted model's outputs as jax arrays."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from dycl_jax.compat import ARRAY_IMPL
from dycl_jax.portable.hostlib import UNDEFINED


def map_structure(fn: Callable[[Any], Any], value: Any, objects: bool = True) -> Any:
    """Apply ``fn`` to every leaf of nested lists, tuples (named too) and dicts, and of
    dataclasses rebuilt from their fields (``objects=False``: a dataclass is a leaf, itself)."""
    t = type(value)
    if t is list or t is tuple:
        return t(map_structure(fn, v, objects) for v in value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return t(*(map_structure(fn, v, objects) for v in value))
    if isinstance(value, tuple) and hasattr(t, "n_sequence_fields"):
        # a struct sequence (torch.return_types.topk: .values / .indices)
        return t(tuple(map_structure(fn, v, objects) for v in value))
    if t is dict:
        return {k: map_structure(fn, v, objects) for k, v in value.items()}
    if objects and plain_dataclass(value):  # dataclasses, HF ModelOutput
        return dataclasses.replace(
            value,
            **{
                f.name: map_structure(fn, getattr(value, f.name), objects)
                for f in dataclasses.fields(value)
            },
        )
    return fn(value)


def plain_dataclass(v: Any) -> bool:
    """A dataclass instance whose fields are all set by ``__init__`` and are all of its state
    (rebuildable by ``dataclasses.replace``, a copy). transformers' ``DynamicCache`` is a
    dataclass with no fields whose ``__init__`` makes the lists it keeps: replace would give an
    empty new cache, so such an object is a leaf, passed by identity like any other object."""
    if not dataclasses.is_dataclass(v) or isinstance(v, type):
        return False
    fields = dataclasses.fields(v)
    if not all(f.init for f in fields):
        return False
    own = getattr(v, "__dict__", None)
    return own is None or own.keys() <= {f.name for f in fields}


def outputs(value: Any) -> Any:
    """The converted model's result: host numpy arrays become jax arrays, like every tensor."""
    if type(value) is ARRAY_IMPL:  # a single array result
        return value
    host: list[np.ndarray] = []

    def leaf(v: Any) -> None:
        if isinstance(v, np.ndarray):
            host.append(v)
        elif v is UNDEFINED:  # `return x, i` after a loop that never ran: as Python raises
            UNDEFINED._unbound()

    map_structure(leaf, value)
    if not host:
        return value
    # One jitted identity moves them all: 6 us for one array against jnp.asarray's 16 us.
    moved = iter(_to_device(*host))
    return map_structure(lambda v: next(moved) if isinstance(v, np.ndarray) else v, value)


_to_device = jax.jit(lambda *arrays: arrays)
