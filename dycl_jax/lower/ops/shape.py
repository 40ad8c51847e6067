"""Lowerings: shape ops (views, reshapes, concatenation, slicing, padding).

Views are values in JAX: a view op returns a new array. The captured graph is functionalized, so
no op here has to propagate writes back into its base. In-place variants that survive the core
decompositions (``squeeze_``, ``transpose_``) act on temporaries (later nodes use their result),
so they lower like their functional forms; the interpreter maps ``squeeze_`` to ``squeeze`` by
name, while ``transpose_.default`` has no same-named functional overload and is registered here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
import torch
from jax import lax

from dycl_jax.lower import dtypes
from dycl_jax.lower.registry import lowers

aten = torch.ops.aten


def wrap_dim(dim: int, ndim: int) -> int:
    """A PyTorch dim (negative counts from the end; 0-d tensors accept 0 and -1) as 0..ndim-1."""
    return dim % max(ndim, 1)


def dim_slice(x: jnp.ndarray, dim: int, sl: slice | int) -> tuple:
    """An index tuple applying ``sl`` on ``dim`` of ``x`` and taking everything elsewhere."""
    return (slice(None),) * wrap_dim(dim, x.ndim) + (sl,)


@lowers(aten.view.default, aten._unsafe_view.default, aten.reshape.default)
def _aten_view(x, size):
    return jnp.reshape(x, tuple(size))


@lowers(aten.permute.default)
def _aten_permute(x, dims):
    return jnp.transpose(x, [wrap_dim(d, x.ndim) for d in dims])


@lowers(aten.transpose.int, aten.transpose_.default)
def _aten_transpose(x, dim0, dim1):
    return jnp.swapaxes(x, wrap_dim(dim0, x.ndim), wrap_dim(dim1, x.ndim)) if x.ndim else x


@lowers(aten.t.default)
def _aten_t(x):
    return x.T


@lowers(aten.expand.default)
def _aten_expand(x, size, implicit=False):
    lead = len(size) - x.ndim
    shape = [x.shape[i - lead] if s == -1 else s for i, s in enumerate(size)]
    return jnp.broadcast_to(x, tuple(shape))


@lowers(aten.squeeze.default, aten.squeeze.dim, aten.squeeze.dims)
def _aten_squeeze(x, dim: int | Sequence[int] | None = None):
    dims = range(x.ndim) if dim is None else [dim] if isinstance(dim, int) else dim
    drop = {wrap_dim(d, x.ndim) for d in dims if x.ndim}
    return jnp.squeeze(x, tuple(d for d in sorted(drop) if x.shape[d] == 1))


@lowers(aten.unsqueeze.default)
def _aten_unsqueeze(x, dim):
    return jnp.expand_dims(x, dim % (x.ndim + 1))


@lowers(aten.alias.default, aten.clone.default)
def _aten_alias(x, memory_format=None):
    return x


@lowers(aten.copy.default)
def _aten_copy(x, src, non_blocking=False):
    return dtypes.cast(jnp.broadcast_to(src, x.shape), x.dtype)


@lowers(aten.cat.default)
def _aten_cat(tensors, dim=0):
    # PyTorch's legacy rule: 1-D empty tensors are skipped whatever the others' rank.
    kept = [t for t in tensors if t.shape != (0,)] or list(tensors)
    return jnp.concatenate(kept, axis=wrap_dim(dim, kept[0].ndim))


@lowers(aten.split_with_sizes.default)
def _aten_split_with_sizes(x, split_sizes, dim=0):
    return jnp.split(x, np.cumsum(split_sizes)[:-1].tolist(), axis=wrap_dim(dim, x.ndim))


@lowers(aten.split.Tensor)
def _aten_split(x, split_size, dim=0):
    n = x.shape[wrap_dim(dim, x.ndim)]
    sizes = [min(split_size, n - i) for i in range(0, n, split_size)] if split_size else [n]
    return _aten_split_with_sizes(x, sizes or [0], dim)


@lowers(aten.unbind.int)
def _aten_unbind(x, dim=0):
    d = wrap_dim(dim, x.ndim)
    return [lax.index_in_dim(x, i, d, keepdims=False) for i in range(x.shape[d])]


@lowers(aten.slice.Tensor)
def _aten_slice(x, dim=0, start=None, end=None, step=1):
    return x[dim_slice(x, dim, slice(start, end, step))]


@lowers(aten.select.int)
def _aten_select(x, dim, index):
    d = wrap_dim(dim, x.ndim)
    return lax.index_in_dim(x, index % x.shape[d], d, keepdims=False)


@lowers(aten.diagonal.default)
def _aten_diagonal(x, offset=0, dim1=0, dim2=1):
    return jnp.diagonal(x, offset, wrap_dim(dim1, x.ndim), wrap_dim(dim2, x.ndim))


@lowers(aten.flip.default)
def _aten_flip(x, dims):
    return jnp.flip(x, tuple(wrap_dim(d, x.ndim) for d in dims)) if x.ndim else x


@lowers(aten.roll.default)
def _aten_roll(x, shifts, dims=()):
    if not dims:
        return jnp.roll(x.reshape(-1), shifts[0]).reshape(x.shape)
    return jnp.roll(x, tuple(shifts), tuple(wrap_dim(d, x.ndim) for d in dims))


@lowers(aten.repeat.default)
def _aten_repeat(x, repeats):
    return jnp.tile(x, tuple(repeats))


@lowers(aten.constant_pad_nd.default)
def _aten_constant_pad_nd(x, pad, value=0):
    cfg = [(0, 0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        cfg[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1], 0)
    return lax.pad(x, jnp.asarray(value, x.dtype), cfg)


def _mode_pad(x, pad, mode):
    k = len(pad) // 2
    widths = [(0, 0)] * (x.ndim - k) + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(k))]
    return jnp.pad(x, widths, mode=mode)


@lowers(aten.reflection_pad1d.default, aten.reflection_pad2d.default, aten.reflection_pad3d.default)
def _aten_reflection_pad(x, padding):
    return _mode_pad(x, padding, "reflect")


@lowers(
    aten.replication_pad1d.default,
    aten.replication_pad2d.default,
    aten.replication_pad3d.default,
)
def _aten_replication_pad(x, padding):
    return _mode_pad(x, padding, "edge")


_OWNS_STORAGE = (
    lambda v: v.is_contiguous() and v.storage_offset() == 0,
    "a view (its strides address the storage the view shares)",
)


@lowers(aten.as_strided.default, accepts=_OWNS_STORAGE)
def _aten_as_strided(x, size, stride, storage_offset=None):
    # ``x`` is a contiguous tensor owning its storage (``_OWNS_STORAGE``): its flat order is it.
    flat = jnp.ravel(x)
    idx = (storage_offset or 0) + sum(
        np.arange(n).reshape((-1,) + (1,) * (len(size) - i - 1)) * s
        for i, (n, s) in enumerate(zip(size, stride))
    )
    return flat[jnp.asarray(idx, dtype=jnp.int64)] if size else flat[storage_offset or 0]


@lowers(aten.resize.default)
def _aten_resize(x, size, memory_format=None):
    """Functional ``resize_`` (what ``out=`` of another shape becomes): the first elements of
    the flat storage kept, as PyTorch keeps them; elements past the old storage, which PyTorch
    leaves uninitialised, are zeros here."""
    shape = tuple(size)
    n = math.prod(shape)
    flat = jnp.ravel(x)[:n]
    if flat.shape[0] < n:
        flat = jnp.concatenate([flat, jnp.zeros((n - flat.shape[0],), x.dtype)])
    return jnp.reshape(flat, shape)
