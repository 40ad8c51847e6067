"""Lowerings: creation ops (arange, full, empty, scalar_tensor) and dtype conversion (_to_copy).

Result shapes and dtypes come from the node's fake tensor (``_meta``); layout, device, pin_memory
and memory_format arguments have no meaning in JAX and are ignored (``**_``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import torch

from dycl_jax.lower import dtypes
from dycl_jax.lower.registry import lowers

aten = torch.ops.aten


def _dt(meta: torch.Tensor) -> jnp.dtype:
    return dtypes.to_jax(meta.dtype)


def _arange(start: Any, step: Any, meta: torch.Tensor) -> jax.Array:
    """PyTorch's arange: start + i * step, accumulated in float64/int64 then cast (as CPU does)."""
    acc = jnp.float64 if jnp.issubdtype(_dt(meta), jnp.floating) else jnp.int64
    return (start + jnp.arange(meta.shape[0], dtype=acc) * step).astype(_dt(meta))


@lowers(aten.arange.default, needs_meta=True)
def _aten_arange(end, *, _meta, **_):
    return _arange(0, 1, _meta)


@lowers(aten.arange.start, needs_meta=True)
def _aten_arange_start(start, end, *, _meta, **_):
    return _arange(start, 1, _meta)


@lowers(aten.arange.start_step, needs_meta=True)
def _aten_arange_start_step(start, end, step=1, *, _meta, **_):
    return _arange(start, step, _meta)


@lowers(aten.full.default, needs_meta=True)
def _aten_full(size, fill_value, *, _meta, **_):
    return jnp.full(tuple(size), fill_value, _dt(_meta))


@lowers(aten.full_like.default, needs_meta=True)
def _aten_full_like(x, fill_value, *, _meta, **_):
    return jnp.full(x.shape, fill_value, _dt(_meta))


@lowers(aten.fill.Scalar, aten.fill.Tensor, needs_meta=True)
def _aten_fill(x, value, *, _meta):
    return jnp.broadcast_to(jnp.asarray(value, _dt(_meta)), x.shape)


# Values of empty tensors are unspecified; zeros are a valid (and deterministic) choice.
@lowers(aten.empty.memory_format, needs_meta=True)
def _aten_empty(size, *, _meta, **_):
    return jnp.zeros(tuple(size), _dt(_meta))


@lowers(aten.empty_strided.default, needs_meta=True)
def _aten_empty_strided(size, stride, *, _meta, **_):
    return jnp.zeros(tuple(size), _dt(_meta))


@lowers(aten.empty_permuted.default, needs_meta=True)
def _aten_empty_permuted(size, physical_layout, *, _meta, **_):
    return jnp.zeros(tuple(size), _dt(_meta))


@lowers(aten.scalar_tensor.default, needs_meta=True)
def _aten_scalar_tensor(s, *, _meta, **_):
    return jnp.asarray(s, _dt(_meta))


@lowers(aten._to_copy.default, needs_meta=True)
def _aten__to_copy(x, *, _meta, **_):
    return dtypes.cast(x, _dt(_meta))  # float -> int as PyTorch's kernels convert


@lowers(aten.lift_fresh_copy.default)
def _aten_lift_fresh_copy(x):
    return x
