"""Structural comparison of a system's output with eager PyTorch's."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def _as_numpy(x: Any) -> np.ndarray | None:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith(("jax", "jaxlib")) and hasattr(x, "shape"):
        return np.asarray(x)
    return None


def mismatch(got: Any, expected: Any, rtol: float, atol: float, path: str = "out") -> str | None:
    """None when ``got`` matches ``expected`` (same structure and shapes, values within tolerance).

    Containers may differ in list/tuple kind (torch.jit.script returns lists for tuples); dtypes
    are compared by kind (float/int/bool), since the numerics are what the check is about.
    """
    e = _as_numpy(expected)
    if e is not None:
        g = _as_numpy(got)
        if g is None:
            return f"{path}: expected an array, got {type(got).__name__}"
        if g.shape != e.shape:
            return f"{path}: shape {g.shape} != {e.shape}"
        if g.dtype.kind != e.dtype.kind and not (g.dtype.kind in "fc" and e.dtype.kind in "fc"):
            return f"{path}: dtype {g.dtype} != {e.dtype}"
        if e.dtype.kind in "fc":
            if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
                err = (
                    float(np.max(np.abs(g.astype(np.float64) - e.astype(np.float64))))
                    if g.size
                    else 0.0
                )
                return f"{path}: max abs error {err:.3g}"
        elif not np.array_equal(g, e):
            return f"{path}: values differ"
        return None
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            return f"{path}: {type(got).__name__} of {_len(got)} != {type(expected).__name__} of {len(expected)}"
        for i, (g, x) in enumerate(zip(got, expected)):
            m = mismatch(g, x, rtol, atol, f"{path}[{i}]")
            if m:
                return m
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or got.keys() != expected.keys():
            return f"{path}: dict keys differ"
        for k in expected:
            m = mismatch(got[k], expected[k], rtol, atol, f"{path}[{k!r}]")
            if m:
                return m
        return None
    if isinstance(expected, float):
        if not isinstance(got, int | float) or not math.isclose(
            got, expected, rel_tol=rtol, abs_tol=atol
        ):
            return f"{path}: {got!r} != {expected!r}"
        return None
    if got != expected:
        return f"{path}: {got!r} != {expected!r}"
    return None


def _len(x: Any) -> Any:
    try:
        return len(x)
    except TypeError:
        return "?"
