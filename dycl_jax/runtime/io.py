"""Conversions at the boundaries: user inputs to arrays, outputs to jax arrays, and jax <-> torch
for ops run in PyTorch on the host."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import torch

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

    if type(value) is tuple:  # the positional arguments: tensors, the common case, directly
        return tuple(leaf(v) if type(v) is torch.Tensor else map_structure(leaf, v) for v in value)
    if type(value) is dict and not value:
        return value
    return map_structure(leaf, value)


def to_torch(value: Any) -> Any:
    """jax arrays become torch tensors (host copies), inside any containers."""
    return map_structure(
        lambda v: dtypes.numpy_to_tensor(v) if isinstance(v, jax.Array | np.ndarray) else v,
        value,
    )


def to_torch_owned(value: Any) -> Any:
    """:func:`to_torch` for code that runs in PyTorch and may write its inputs: each tensor owns
    its storage (``out=`` and ``resize_`` can grow it), one array met twice is one tensor."""
    memo: dict[int, torch.Tensor] = {}

    def one(v: Any) -> Any:
        if not isinstance(v, jax.Array | np.ndarray):
            return v
        if id(v) not in memo:
            memo[id(v)] = dtypes.numpy_to_tensor(v).clone()
        return memo[id(v)]

    return map_structure(one, value)


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
