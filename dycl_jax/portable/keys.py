"""Signature keys of a saved artifact's region calls, computed without torch.

The converter keys a region call by its live-in values (``capture.signature``); objects there are
keyed by identity, which means nothing in another process. The saved form replaces identities by
what the artifact can name: a module of the saved tree by its path. Grammar (nested tuples, JSON
lists on disk)::

    ("a", shape, dtype)        an array leaf (jax or numpy array, numpy scalar)
    ("s", "int" | "float")     a host scalar passed as a 0-d array (a dynamic live-in)
    ("v", type, value)         a Python bool / int / float / str / None (non-finite floats by repr)
    ("list" | "tuple", items)  ("dict", ((key, item), ...))
    ("named", name, items)     a NamedTuple or struct sequence (``x.topk(k)``) by its type name
    ("m", path)                a module of the saved tree
    ("u",)                     UNDEFINED (a local the original has not assigned on this path)

The saver translates the converter's keys into this grammar (``dycl_jax.save``); :func:`split`
computes it from values at a loaded model's region call. Both must agree exactly.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from dycl_jax.compat import ARRAY_IMPL
from dycl_jax.errors import ArtifactError
from dycl_jax.portable.hostlib import UNDEFINED

_ARRAY_IMPL = ARRAY_IMPL
_VALUES = (bool, int, str, type(None))


def split(values: tuple[Any, ...], dynamic: frozenset[int]) -> tuple[tuple[Any, ...], list[Any]]:
    """(key, array leaves) of a region call's live-in ``values``."""
    key: list[Any] = []
    leaves: list[Any] = []
    for i, v in enumerate(values):
        t = type(v)
        if i in dynamic and (t is int or t is float):
            key.append(("s", t.__name__))
            leaves.append(np.asarray(v, np.int64 if t is int else np.float64))
        else:
            key.append(_key(v, leaves))
    return tuple(key), leaves


def value_key(t: type, v: Any) -> tuple[Any, ...]:
    """The key of a Python scalar value."""
    if t is float and not math.isfinite(v):
        return ("v", "float", repr(v))
    return ("v", t.__name__, v)


def array_key(shape: tuple[int, ...], dtype: Any) -> tuple[Any, ...]:
    return ("a", tuple(int(d) for d in shape), np.dtype(dtype).name)


def _key(v: Any, leaves: list[Any]) -> Any:
    t = type(v)
    if t is _ARRAY_IMPL or t is np.ndarray:
        leaves.append(v)
        return ("a", v.shape, v.dtype.name)
    if t in _VALUES or t is float:
        return value_key(t, v)
    if v is UNDEFINED:
        return ("u",)
    path = getattr(v, "_dycl_path", None)  # a module of the saved tree (portable.skeleton)
    if type(path) is str:
        return ("m", path)
    if t is list or t is tuple:
        return (t.__name__, tuple(_key(x, leaves) for x in v))
    if t is dict:
        return ("dict", tuple((k, _key(x, leaves)) for k, x in v.items()))
    if named_tuple_type(t):
        return ("named", t.__name__, tuple(_key(x, leaves) for x in v))
    if isinstance(v, jax.Array | np.ndarray | np.generic):
        leaves.append(v)
        return array_key(np.shape(v), v.dtype)
    raise ArtifactError(
        f"a region was called with a {t.__module__}.{t.__qualname__}, which no saved signature "
        "holds (saved artifacts key region calls by arrays, Python scalars, lists, tuples, "
        "dicts and modules)"
    )


def named_tuple_type(t: Any) -> bool:
    """A NamedTuple class or a struct sequence (``torch.return_types.topk``; the torch-free
    host ops' ``return_types.topk`` is a NamedTuple of the same name)."""
    return (
        isinstance(t, type)
        and issubclass(t, tuple)
        and (hasattr(t, "_fields") or hasattr(t, "n_sequence_fields"))
    )


def describe(key: Any, names: tuple[str, ...]) -> str:
    """A readable form of a region call's key: ``x: float32[1,16], k: int 3``."""
    return ", ".join(f"{n}: {_describe(k)}" for n, k in zip(names, key))


def _describe(k: Any) -> str:
    tag = k[0]
    if tag == "a":
        return f"{k[2]}[{','.join(map(str, k[1]))}]"
    if tag == "s":
        return f"{k[1]} (any value)"
    if tag == "v":
        return f"{k[1]} {k[2]!r}"
    if tag == "u":
        return "unassigned"
    if tag == "m":
        return f"module {k[1] or '(root)'}"
    if tag == "dict":
        return "{" + ", ".join(f"{kk!r}: {_describe(x)}" for kk, x in k[1]) + "}"
    if tag == "named":
        return f"{k[1]}(" + ", ".join(_describe(x) for x in k[2]) + ")"
    inner = ", ".join(_describe(x) for x in k[1])
    return f"[{inner}]" if tag == "list" else f"({inner})"
