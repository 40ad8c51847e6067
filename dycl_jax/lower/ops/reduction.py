"""Lowerings: reduction ops (sum/mean/var, min/max/arg*, any/all, scans, softmax, sort/topk, norms).

Dimension policy lives in ``_axes`` (many dims: ``None`` or ``[]`` means all) and ``_axis`` (one dim);
both accept PyTorch's ``dim=0``/``-1`` on 0-d tensors. Sums and products accumulate in the result
dtype (int64 for integer/bool sums), half-precision floats in float32 (``_acc``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import torch
from jax import lax

from dycl_jax.lower import dtypes
from dycl_jax.lower.registry import lowers

aten = torch.ops.aten


def _axes(
    x: jax.Array, dim: int | Sequence[int] | None, empty_is_all: bool = True
) -> tuple[int, ...] | None:
    """PyTorch's dim list as a jnp axis tuple. None reduces everything; so does [] for the legacy
    overloads (sum.dim_IntList, amax, var, ...), while any.dims/all.dims take [] as "no dims"."""
    if dim is None or (empty_is_all and not isinstance(dim, int) and len(dim) == 0):
        return None
    if x.ndim == 0:
        return ()
    return tuple(d % x.ndim for d in ((dim,) if isinstance(dim, int) else dim))


def _axis(x: jax.Array, dim: int | None) -> int | None:
    """One PyTorch dim as a jnp axis (None for 0-d tensors and dim=None)."""
    return None if dim is None or x.ndim == 0 else dim % x.ndim


def _acc(meta: torch.Tensor) -> jnp.dtype:
    """Accumulation dtype: the result dtype, with float16/bfloat16 widened to float32."""
    return dtypes.opmath(meta.dtype)


def _b(x: jax.Array) -> jax.Array:
    return x if x.dtype == jnp.bool_ else x != 0


# --- sums, means, products, variance --------------------------------------------------------------


@lowers(aten.sum.dim_IntList, needs_meta=True)
def _aten_sum(x, dim=None, keepdim=False, *, dtype=None, _meta):
    return jnp.sum(x.astype(_acc(_meta)), _axes(x, dim), keepdims=keepdim)


@lowers(aten.sum.default, needs_meta=True)
def _aten_sum_all(x, *, dtype=None, _meta):
    return jnp.sum(x.astype(_acc(_meta)))


@lowers(aten.mean.dim, needs_meta=True)
def _aten_mean(x, dim=None, keepdim=False, *, dtype=None, _meta):
    return jnp.mean(x.astype(_acc(_meta)), _axes(x, dim), keepdims=keepdim)


@lowers(aten.mean.default, needs_meta=True)
def _aten_mean_all(x, *, dtype=None, _meta):
    return jnp.mean(x.astype(_acc(_meta)))


@lowers(aten.prod.dim_int, needs_meta=True)
def _aten_prod(x, dim, keepdim=False, *, dtype=None, _meta):
    return jnp.prod(x.astype(_acc(_meta)), _axis(x, dim), keepdims=keepdim)


@lowers(aten.prod.default, needs_meta=True)
def _aten_prod_all(x, *, dtype=None, _meta):
    return jnp.prod(x.astype(_acc(_meta)))


def _var(x, dim, correction, keepdim, meta):
    ddof = 1 if correction is None else correction
    x = x.astype(_acc(meta))
    axes = _axes(x, dim)
    n = math.prod(x.shape[a] for a in (range(x.ndim) if axes is None else axes))
    if n - ddof > 0:
        return jnp.var(x, axes, ddof=ddof, keepdims=keepdim)
    # PyTorch divides by max(n - correction, 0): inf, or NaN where every deviation is 0
    sq = jnp.sum(jnp.square(x - jnp.mean(x, axes, keepdims=True)), axes, keepdims=keepdim)
    return sq / jnp.zeros((), sq.dtype)


@lowers(aten.var.correction, needs_meta=True)
def _aten_var(x, dim=None, *, correction=None, keepdim=False, _meta):
    return _var(x, dim, correction, keepdim, _meta)


@lowers(aten.var.dim, needs_meta=True)
def _aten_var_dim(x, dim, unbiased=True, keepdim=False, *, _meta):
    return _var(x, dim, int(unbiased), keepdim, _meta)


@lowers(aten.var_mean.correction, needs_meta=True)
def _aten_var_mean(x, dim=None, *, correction=None, keepdim=False, _meta):
    var = _var(x, dim, correction, keepdim, _meta[0])
    return var, jnp.mean(x.astype(_acc(_meta[1])), _axes(x, dim), keepdims=keepdim)


# --- extrema ---------------------------------------------------------------------------------------


@lowers(aten.amax.default)
def _aten_amax(x, dim=(), keepdim=False):
    return jnp.max(x, _axes(x, dim), keepdims=keepdim)  # propagates NaN, like PyTorch


@lowers(aten.amin.default)
def _aten_amin(x, dim=(), keepdim=False):
    return jnp.min(x, _axes(x, dim), keepdims=keepdim)


@lowers(aten.max.default)
def _aten_max_all(x):
    return jnp.max(x)


@lowers(aten.min.default)
def _aten_min_all(x):
    return jnp.min(x)


def _no_bool(x, op):
    # PyTorch raises here ("argmax(): does not support bool input"): failing the lowering sends
    # the region to PyTorch, which raises its own error, as eager does
    if x.dtype == jnp.bool_:
        raise TypeError(f"{op}(): does not support bool input")


@lowers(aten.argmax.default)
def _aten_argmax(x, dim=None, keepdim=False):
    _no_bool(x, "argmax")
    return jnp.argmax(x, _axis(x, dim), keepdims=keepdim)  # first occurrence; NaN counts as max


@lowers(aten.argmin.default)
def _aten_argmin(x, dim=None, keepdim=False):
    _no_bool(x, "argmin")
    return jnp.argmin(x, _axis(x, dim), keepdims=keepdim)


@lowers(aten.max.dim)
def _aten_max_dim(x, dim, keepdim=False):
    ax = _axis(x, dim)
    return jnp.max(x, ax, keepdims=keepdim), jnp.argmax(x, ax, keepdims=keepdim)


@lowers(aten.min.dim)
def _aten_min_dim(x, dim, keepdim=False):
    ax = _axis(x, dim)
    return jnp.min(x, ax, keepdims=keepdim), jnp.argmin(x, ax, keepdims=keepdim)


# --- boolean ----------------------------------------------------------------------------------------


@lowers(aten.any.default, aten.any.dim, aten.any.dims)
def _aten_any(x, dim=None, keepdim=False):
    return jnp.any(_b(x), _axes(x, dim, empty_is_all=False), keepdims=keepdim)


@lowers(aten.all.default, aten.all.dim, aten.all.dims)
def _aten_all(x, dim=None, keepdim=False):
    return jnp.all(_b(x), _axes(x, dim, empty_is_all=False), keepdims=keepdim)


# --- scans ------------------------------------------------------------------------------------------


@lowers(aten.cumsum.default, needs_meta=True)
def _aten_cumsum(x, dim, *, dtype=None, _meta):
    return jnp.cumsum(x.astype(_acc(_meta)), _axis(x, dim)).reshape(x.shape)


@lowers(aten.cumprod.default, needs_meta=True)
def _aten_cumprod(x, dim, *, dtype=None, _meta):
    return jnp.cumprod(x.astype(_acc(_meta)), _axis(x, dim)).reshape(x.shape)


@lowers(aten.logcumsumexp.default, needs_meta=True)
def _aten_logcumsumexp(x, dim, *, _meta):
    x = x.astype(_acc(_meta))
    return lax.cumlogsumexp(x, dim % x.ndim) if x.ndim else x


def _cum_extreme(x: jax.Array, dim: int, ge: Any) -> tuple[jax.Array, jax.Array]:
    """PyTorch's cummax/cummin: a later element wins ties; NaN wins and sticks."""
    if x.ndim == 0:
        return x, jnp.zeros((), jnp.int64)
    ax = dim % x.ndim

    def pick(a, b):  # a precedes b
        take_b = jnp.isnan(b[0]) | (~jnp.isnan(a[0]) & ge(b[0], a[0]))
        return jnp.where(take_b, b[0], a[0]), jnp.where(take_b, b[1], a[1])

    return lax.associative_scan(pick, (x, lax.broadcasted_iota(jnp.int64, x.shape, ax)), axis=ax)


@lowers(aten.cummax.default)
def _aten_cummax(x, dim):
    return _cum_extreme(x, dim, jnp.greater_equal)


@lowers(aten.cummin.default)
def _aten_cummin(x, dim):
    return _cum_extreme(x, dim, jnp.less_equal)


# --- softmax ----------------------------------------------------------------------------------------


@lowers(aten._softmax.default, needs_meta=True)
def _aten_softmax(x, dim, half_to_float=False, *, _meta):
    return jax.nn.softmax(x.astype(_acc(_meta)), axis=_axis(x, dim))


@lowers(aten._log_softmax.default, needs_meta=True)
def _aten_log_softmax(x, dim, half_to_float=False, *, _meta):
    return jax.nn.log_softmax(x.astype(_acc(_meta)), axis=_axis(x, dim))


@lowers(aten.logsumexp.default, needs_meta=True)
def _aten_logsumexp(x, dim=(), keepdim=False, *, _meta):
    return jax.nn.logsumexp(x.astype(_acc(_meta)), _axes(x, dim), keepdims=keepdim)


# --- sorting ----------------------------------------------------------------------------------------


def _sort(x: jax.Array, dim: int, descending: bool) -> tuple[jax.Array, jax.Array, int]:
    """Stable sort along dim (NaN sorts as largest, like PyTorch): values, indices, axis."""
    if x.ndim == 0:
        return x[None], jnp.zeros((1,), jnp.int64), 0
    ax = dim % x.ndim
    idx = jnp.argsort(x, axis=ax, stable=True, descending=descending)
    return jnp.take_along_axis(x, idx, ax), idx, ax


@lowers(aten.sort.default)
def _aten_sort(x, dim=-1, descending=False):
    v, i, _ = _sort(x, dim, descending)
    return v.reshape(x.shape), i.reshape(x.shape)


@lowers(aten.sort.stable)
def _aten_sort_stable(x, *, stable=None, dim=-1, descending=False):
    return _aten_sort(x, dim, descending)  # always stable: a valid answer for stable=False too


@lowers(aten.topk.default, needs_meta=True)
def _aten_topk(x, k, dim=-1, largest=True, sorted=True, *, _meta):
    v, i, ax = _sort(x, dim, largest)  # sorted=False: sorted is one valid order
    shape = _meta[0].shape
    return lax.slice_in_dim(v, 0, k, axis=ax).reshape(shape), lax.slice_in_dim(
        i, 0, k, axis=ax
    ).reshape(shape)


def _kth(x, k, dim, keepdim):
    """k-th smallest (0-based) along dim, and its index; NaN sorts last."""
    v, i, ax = _sort(x, dim, False)
    v, i = jnp.take(v, k, axis=ax), jnp.take(i, k, axis=ax)
    return (jnp.expand_dims(v, ax), jnp.expand_dims(i, ax)) if keepdim and x.ndim else (v, i)


@lowers(aten.kthvalue.default)
def _aten_kthvalue(x, k, dim=-1, keepdim=False):
    return _kth(x, k - 1, dim, keepdim)


@lowers(aten.median.dim)
def _aten_median_dim(x, dim, keepdim=False):
    n = x.shape[dim] if x.ndim else 1
    v, i = _kth(x, (n - 1) // 2, dim, keepdim)
    nan = jnp.isnan(x).any(_axis(x, dim), keepdims=keepdim)  # a NaN anywhere is the median
    return jnp.where(nan, jnp.nan, v), jnp.where(
        nan, jnp.argmax(jnp.isnan(x), _axis(x, dim), keepdims=keepdim), i
    )


@lowers(aten.mode.default)
def _aten_mode(x, dim=-1, keepdim=False):
    """Most frequent value (ties: the smallest) and its last index. O(n^2) in the dim's size."""
    xm = jnp.moveaxis(x, dim % x.ndim, -1) if x.ndim else x[None]
    counts = (xm[..., :, None] == xm[..., None, :]).sum(-1)
    best = counts == counts.max(-1, keepdims=True)
    v = jnp.min(jnp.where(best, xm, xm.max(-1, keepdims=True)), -1, keepdims=True)
    i = xm.shape[-1] - 1 - jnp.argmax(jnp.flip(xm == v, -1), -1, keepdims=True)
    out = (v, i) if keepdim and x.ndim else (v[..., 0], i[..., 0])
    return tuple(jnp.moveaxis(o, -1, dim % x.ndim) if keepdim and x.ndim else o for o in out)


@lowers(aten.median.default)
def _aten_median(x):
    s = jnp.sort(x.ravel())
    return jnp.where(jnp.isnan(s[-1]), s[-1], s[(s.size - 1) // 2])


# --- norms ------------------------------------------------------------------------------------------


@lowers(aten.linalg_vector_norm.default, needs_meta=True)
def _aten_linalg_vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, _meta):
    a, ax = jnp.abs(x).astype(_acc(_meta)), _axes(x, dim)
    if ord == float("inf"):
        return jnp.max(a, ax, keepdims=keepdim)
    if ord == float("-inf"):
        return jnp.min(a, ax, keepdims=keepdim)
    if ord == 0:
        return jnp.sum(a != 0, ax, keepdims=keepdim, dtype=a.dtype)
    if ord == 2:
        return jnp.sqrt(jnp.sum(a * a, ax, keepdims=keepdim))
    return jnp.sum(a**ord, ax, keepdims=keepdim) ** (1.0 / ord)
