"""Python values in a saved artifact's JSON: constants of host programs and region outputs,
module attributes, and signature keys.

JSON has lists and string-keyed objects only, so every value is a tagged form: ``None``, bools,
ints, strings and finite floats stand for themselves; everything else is ``{"$": tag, ...}``.
References to modules of the saved tree are ``{"$": "module", "path": ...}`` and are resolved by
the loader (``decode(..., modules=...)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dycl_jax.portable.hostlib import UNDEFINED


class Unencodable(ValueError):
    """A value with no saved form (the saver says where it was met)."""


def encode(v: Any, module_path: Callable[[Any], str | None] | None = None) -> Any:
    """The JSON form of ``v``. ``module_path`` names modules of the saved tree (None: not one)."""
    t = type(v)
    if v is None or t is bool or t is int or t is str:
        return v
    if t is float:
        if math.isfinite(v):
            return v
        return {"$": "float", "v": repr(v)}  # inf, -inf, nan
    if t is complex:
        return {"$": "complex", "re": encode(v.real), "im": encode(v.imag)}
    if t is list:
        return [encode(x, module_path) for x in v]
    if t is tuple or _is_size(v):
        return {"$": "tuple", "v": [encode(x, module_path) for x in v]}
    if t is dict:
        return {
            "$": "dict",
            "v": [[encode(k, module_path), encode(x, module_path)] for k, x in v.items()],
        }
    if v is UNDEFINED:
        return {"$": "undefined"}
    if t is slice:
        return {"$": "slice", "v": [encode(v.start), encode(v.stop), encode(v.step)]}
    if t is range:
        return {"$": "range", "v": [v.start, v.stop, v.step]}
    if module_path is not None:
        path = module_path(v)
        if path is not None:
            return {"$": "module", "path": path}
    raise Unencodable(f"a value of type {t.__module__}.{t.__qualname__}")


def decode(v: Any, modules: Callable[[str], Any] | None = None) -> Any:
    """The value of a JSON form written by :func:`encode`; ``modules`` resolves module paths."""
    if type(v) is list:
        return [decode(x, modules) for x in v]
    if type(v) is not dict:
        return v
    tag = v["$"]
    if tag == "float":
        return float(v["v"])
    if tag == "complex":
        return complex(decode(v["re"]), decode(v["im"]))
    if tag == "tuple":
        return tuple(decode(x, modules) for x in v["v"])
    if tag == "dict":
        return {_hashable(decode(k, modules)): decode(x, modules) for k, x in v["v"]}
    if tag == "slice":
        return slice(*(decode(x) for x in v["v"]))
    if tag == "range":
        return range(*v["v"])
    if tag == "undefined":
        return UNDEFINED
    if tag == "module":
        if modules is None:
            raise ValueError("a module reference outside a module tree")
        return modules(v["path"])
    raise ValueError(f"unknown saved value tag {tag!r}")


def frozen(v: Any) -> Any:
    """A decoded JSON value with every list made a tuple (hashable: signature keys)."""
    if type(v) is list or type(v) is tuple:
        return tuple(frozen(x) for x in v)
    return v


def _hashable(k: Any) -> Any:
    return tuple(k) if type(k) is list else k


def _is_size(v: Any) -> bool:
    """A ``torch.Size`` (a tuple of ints), without importing torch."""
    t = type(v)
    return t.__name__ == "Size" and t.__module__ == "torch" and isinstance(v, tuple)
