"""Testing helpers for users and for our suite: compare a converted model with eager PyTorch."""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
import torch


def assert_same(
    got: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-5, path: str = "out"
) -> None:
    """``got`` (jax side) equals ``expected`` (torch side): same structure, dtypes and values."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, jax.Array), f"{path}: expected a jax array, got {type(got).__name__}"
        e = expected.detach().numpy()
        g = np.asarray(got)
        assert g.shape == e.shape, f"{path}: shape {g.shape} != {e.shape}"
        assert g.dtype == e.dtype, f"{path}: dtype {g.dtype} != {e.dtype}"
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=path)
    elif isinstance(expected, tuple | list):
        assert type(got) is type(expected), (
            f"{path}: {type(got).__name__} != {type(expected).__name__}"
        )
        assert len(got) == len(expected), f"{path}: length {len(got)} != {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, rtol, atol, f"{path}[{i}]")
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), f"{path}: keys differ"
        for k in expected:
            assert_same(got[k], expected[k], rtol, atol, f"{path}[{k!r}]")
    elif isinstance(expected, float):
        # A Python float read back from float32 tensors carries their rounding: compare like them.
        assert type(got) is float, f"{path}: {type(got).__name__} != float"
        assert math.isclose(got, expected, rel_tol=rtol, abs_tol=atol), (
            f"{path}: {got!r} != {expected!r}"
        )
    else:
        assert type(got) is type(expected), (
            f"{path}: {type(got).__name__} != {type(expected).__name__}"
        )
        assert got == expected, f"{path}: {got!r} != {expected!r}"


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
