"""Lowerings: indexing ops (gather/scatter, advanced indexing, index_put, embedding).

Index tensors arrive as int64 (regions run under ``jax.enable_x64``). PyTorch wraps negative
indices, so every lowering here wraps them explicitly rather than relying on JAX's mode defaults.
Boolean masks give data-dependent shapes, which a static XLA program cannot have: ``index_put``
with a mask is rewritten as a ``where`` (or, with one value per true element, a scatter at
``nonzero(mask, size=count)``, the count known from the values); ``index`` with a mask raises.
"""

from __future__ import annotations

import jax.numpy as jnp
import torch
from jax import lax

from dycl_jax.lower.ops.shape import wrap_dim
from dycl_jax.lower.registry import lowers

aten = torch.ops.aten


def _wrap(index, size):
    """PyTorch index semantics: negative indices count from the end."""
    return jnp.where(index < 0, index + size, index)


def _scatter_index(x, dim, index):
    """The full index tuple for scatter/gather along ``dim``: ``index`` there, iotas elsewhere."""
    d = wrap_dim(dim, x.ndim)
    grids = jnp.meshgrid(*[jnp.arange(n) for n in index.shape], indexing="ij", sparse=True)
    return tuple(_wrap(index, x.shape[d]) if i == d else g for i, g in enumerate(grids))


def _src_like(src, index):
    """``src`` cut (or broadcast, for a scalar) to ``index``'s shape, as scatter reads it."""
    src = jnp.asarray(src)
    return (
        jnp.broadcast_to(src, index.shape) if src.ndim == 0 else src[tuple(map(slice, index.shape))]
    )


@lowers(aten.gather.default)
def _aten_gather(x, dim, index, sparse_grad=False):
    if x.ndim == 0:
        return jnp.broadcast_to(x, index.shape)
    return x[_scatter_index(x, dim, index)]


_SCATTER_METHODS = {"add": "add", "sum": "add", "multiply": "multiply", "prod": "multiply",
                    "amax": "max", "amin": "min", None: "set"}  # fmt: skip


@lowers(
    aten.scatter.src,
    aten.scatter.value,
    aten.scatter.reduce,
    aten.scatter.value_reduce,
)
def _aten_scatter(x, dim, index, src, reduce=None):
    if x.ndim == 0:
        index = index.reshape(1)
        return _aten_scatter(x.reshape(1), 0, index, jnp.reshape(src, -1), reduce).reshape(())
    ref = x.at[_scatter_index(x, dim, index)]
    return getattr(ref, _SCATTER_METHODS[reduce])(_src_like(src, index).astype(x.dtype))


@lowers(aten.scatter_add.default)
def _aten_scatter_add(x, dim, index, src):
    return _aten_scatter(x, dim, index, src, "add")


@lowers(aten.scatter_reduce.two)
def _aten_scatter_reduce(x, dim, index, src, reduce, include_self=True):
    idx, src = _scatter_index(x, dim, index), _src_like(src, index).astype(x.dtype)
    if reduce == "mean":
        total = (x if include_self else x.at[idx].set(0)).at[idx].add(src)
        count = jnp.full(x.shape, int(include_self), x.dtype).at[idx].add(1)
        count = jnp.maximum(count, 1)  # untouched slots without self: total is x, keep it
        return total // count if jnp.issubdtype(x.dtype, jnp.integer) else total / count
    ident = {"sum": 0, "prod": 1, "amax": _lowest(x.dtype), "amin": _highest(x.dtype)}[reduce]
    base = x if include_self else x.at[idx].set(ident)
    return getattr(base.at[idx], _SCATTER_METHODS[reduce])(src)


def _lowest(dtype):
    return -jnp.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).min


def _highest(dtype):
    return jnp.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).max


def _index_tuple(x, indices):
    """``indices`` (None = full slice, int tensors wrapped) as a numpy-style index tuple."""
    if any(i is not None and i.dtype == jnp.bool_ for i in indices):
        raise NotImplementedError("boolean-mask indexing has a data-dependent shape")
    return tuple(slice(None) if i is None else _wrap(i, x.shape[d]) for d, i in enumerate(indices))


@lowers(aten.index.Tensor)
def _aten_index(x, indices):
    return x[_index_tuple(x, indices)]


def _mask_put(x, indices, values, accumulate):
    """``x[:, ..., mask] = values`` (mask after leading Nones) as a shape-static ``where``."""
    lead = next(d for d, i in enumerate(indices) if i is not None)
    mask, trail = indices[lead], x.ndim - lead - indices[lead].ndim
    if values.ndim > trail and values.shape[values.ndim - trail - 1] != 1:
        # out[mask] = f(x[mask]): one value per true element. Their count is concrete here (the
        # values were computed from x[mask] on the host), so the positions are nonzero(mask)
        # padded to that size: row-major order, as PyTorch assigns them. (PyTorch raises when
        # the count differs from the mask's; here extra positions would repeat index 0.)
        if any(i is not None for i in indices[lead + 1 :]):
            raise NotImplementedError("index_put with a boolean mask and further index tensors")
        count = values.shape[values.ndim - trail - 1]
        pos = jnp.nonzero(mask, size=count)
        ref = x.at[(slice(None),) * lead + tuple(pos)]
        return ref.add(values) if accumulate else ref.set(values)
    if values.ndim > trail:  # one value for every true element, broadcast
        values = jnp.expand_dims(jnp.squeeze(values, values.ndim - trail - 1),
                                 range(values.ndim - trail - 1, values.ndim - trail - 1 + mask.ndim))  # fmt: skip
    mask = mask.reshape(mask.shape + (1,) * trail)
    return jnp.where(mask, x + values if accumulate else values, x)


@lowers(aten.index_put.default)
def _aten_index_put(x, indices, values, accumulate=False):
    values = jnp.asarray(values).astype(x.dtype)
    if any(i is not None and i.dtype == jnp.bool_ for i in indices):
        return _mask_put(x, indices, values, accumulate)
    ref = x.at[_index_tuple(x, indices)]
    return ref.add(values) if accumulate else ref.set(values)


@lowers(aten.index_select.default)
def _aten_index_select(x, dim, index):
    if x.ndim == 0:  # the index can only be [0] (or 0)
        return x
    d = wrap_dim(dim, x.ndim)
    return jnp.take(x, _wrap(index.reshape(-1), x.shape[d]), axis=d)


@lowers(aten.embedding.default)
def _aten_embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return weight[_wrap(indices, weight.shape[0])]


@lowers(aten.select_scatter.default)
def _aten_select_scatter(x, src, dim, index):
    d = wrap_dim(dim, x.ndim)
    return lax.dynamic_update_index_in_dim(x, src.astype(x.dtype), index % x.shape[d], d)


@lowers(aten.slice_scatter.default)
def _aten_slice_scatter(x, src, dim=0, start=None, end=None, step=1):
    sl = (slice(None),) * wrap_dim(dim, x.ndim) + (slice(start, end, step),)
    return x.at[sl].set(src.astype(x.dtype))


@lowers(aten.index_add.default)
def _aten_index_add(x, dim, index, source, alpha=1):
    d = wrap_dim(dim, x.ndim)
    sl = (slice(None),) * d + (_wrap(index, x.shape[d]),)
    return x.at[sl].add((source * alpha).astype(x.dtype)) if x.ndim else x + source * alpha


@lowers(aten.masked_scatter.default)
def _aten_masked_scatter(x, mask, source):
    mask = jnp.broadcast_to(mask, x.shape)
    if source.size == 0:  # then no element of mask may be true
        return x
    pos = jnp.cumsum(mask.reshape(-1)) - 1
    taken = source.reshape(-1)[jnp.clip(pos, 0, max(source.size - 1, 0))].reshape(x.shape)
    return jnp.where(mask, taken.astype(x.dtype), x)
