"""Testing helpers for users and for our suite: compare a converted model with eager PyTorch."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import numpy as np
import torch

from dycl_jax.lower import dtypes


def difference(
    got: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-5, path: str = "out"
) -> str | None:
    """How ``got`` (jax side) first differs from ``expected`` (torch side) in structure, dtype or
    value, or None when they match."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, jax.Array):
            return f"{path}: expected a jax array, got {type(got).__name__}"
        e = dtypes.tensor_to_numpy(expected)
        g = np.asarray(got)
        if g.shape != e.shape:
            return f"{path}: shape {g.shape} != {e.shape}"
        if g.dtype != e.dtype:
            return f"{path}: dtype {g.dtype} != {e.dtype}"
        if e.dtype in (jax.numpy.bfloat16, np.float16):  # compare in float32 (exactly widened)
            e, g = e.astype(np.float32), g.astype(np.float32)
        if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
            bad = ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
            at = tuple(int(v) for v in np.argwhere(bad)[0])
            return (
                f"{path}: {int(bad.sum())} of {e.size} values differ, first at {at}: "
                f"{g[at]!r} != {e[at]!r}"
            )
        return None
    if isinstance(expected, tuple | list):
        if type(got) is not type(expected):
            return f"{path}: {type(got).__name__} != {type(expected).__name__}"
        if len(got) != len(expected):
            return f"{path}: length {len(got)} != {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            d = difference(g, e, rtol, atol, f"{path}[{i}]")
            if d is not None:
                return d
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or got.keys() != expected.keys():
            return f"{path}: keys differ"
        for k in expected:
            d = difference(got[k], expected[k], rtol, atol, f"{path}[{k!r}]")
            if d is not None:
                return d
        return None
    if isinstance(expected, float):
        # A Python float read back from float32 tensors carries their rounding: compare like them.
        if type(got) is not float:
            return f"{path}: {type(got).__name__} != float"
        both_nan = isinstance(got, float) and math.isnan(got) and math.isnan(expected)
        if not both_nan and not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return f"{path}: {got!r} != {expected!r}"
        return None
    if dataclasses.is_dataclass(expected) and not isinstance(expected, type):
        if type(got) is not type(expected):
            return f"{path}: {type(got).__name__} != {type(expected).__name__}"
        for f in dataclasses.fields(expected):
            d = difference(
                getattr(got, f.name), getattr(expected, f.name), rtol, atol, f"{path}.{f.name}"
            )
            if d is not None:
                return d
        return None
    if type(got) is not type(expected):
        return f"{path}: {type(got).__name__} != {type(expected).__name__}"
    if got != expected:
        return f"{path}: {got!r} != {expected!r}"
    return None


def assert_same(
    got: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-5, path: str = "out"
) -> None:
    """``got`` (jax side) equals ``expected`` (torch side): same structure, dtypes and values."""
    d = difference(got, expected, rtol, atol, path)
    if d is not None:
        raise AssertionError(d)


def path_of(events: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """A hashable summary of a recorded path (regions run and condition values)."""
    return tuple(e[1:] if e[0] == "cond" else (e[1], e[2]) for e in events)


def run_all_paths(
    model: torch.nn.Module,
    cm: Any,
    inputs: list[tuple[Any, ...]],
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> set[tuple[Any, ...]]:
    """Check parity on every input; return the distinct paths the converted model took."""
    paths = set()
    for args in inputs:
        with torch.no_grad():
            expected = model(*args)
        with cm.record() as events:
            got = cm(*args)
        assert_same(got, expected, rtol, atol)
        paths.add(path_of(events))
    return paths


def batch_of(rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """Argument tuples of single rows made one batch (for ``per_sample``): tensors concatenated
    on dim 0, other arguments taken from the first row."""
    return tuple(
        torch.cat([r[j] for r in rows]) if isinstance(rows[0][j], torch.Tensor) else rows[0][j]
        for j in range(len(rows[0]))
    )
