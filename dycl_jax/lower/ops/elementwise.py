"""Lowerings: elementwise ops.

Arithmetic lowerings cast their tensor inputs to the node's result dtype first (``_cast``): that is
PyTorch's compute dtype, so e.g. ``int64_tensor * 0.1`` is computed in float32 as PyTorch does, not in
float64 as ``jnp`` would. Comparisons and predicates leave promotion to ``jnp`` (their result is bool).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import torch
from jax import lax

from dycl_jax.lower import dtypes
from dycl_jax.lower.registry import lowers

aten = torch.ops.aten


def _cast(meta: torch.Tensor, *xs: Any) -> list[Any]:
    """Tensor arguments cast to the result's compute dtype (float32 for a float16 / bfloat16
    result, as PyTorch computes it); Python scalars stay weakly typed."""
    dt = dtypes.opmath(meta.dtype)
    return [x.astype(dt) if isinstance(x, jax.Array) else x for x in xs]


def _arr(meta: torch.Tensor, x: Any) -> jax.Array:
    """One argument (tensor or scalar) as an array of the result's compute dtype."""
    return jnp.asarray(x, dtypes.opmath(meta.dtype))


def _is_int(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.integer) or jnp.result_type(x) == jnp.bool_


def _b(x: Any) -> Any:
    """Truthiness as PyTorch's logical ops see it (nonzero, NaN included, is True)."""
    return x if jnp.result_type(x) == jnp.bool_ else x != 0


# --- arithmetic -------------------------------------------------------------------------------


def _scalar_in_dtype(meta: torch.Tensor, y: Any) -> Any:
    """PyTorch's CPU add/sub round a Python scalar operand to a float16 / bfloat16 result's dtype
    first (mul/div keep it in float32)."""
    if isinstance(y, float | int) and dtypes.to_jax(meta.dtype) != dtypes.opmath(meta.dtype):
        return jnp.asarray(y, dtypes.to_jax(meta.dtype)).astype(dtypes.opmath(meta.dtype))
    return y


@lowers(aten.add.Tensor, aten.add.Scalar, needs_meta=True)
def _aten_add(x, y, alpha=1, *, _meta):
    x, y = _cast(_meta, x, _scalar_in_dtype(_meta, y))
    return x + y if alpha == 1 else x + y * alpha


@lowers(aten.sub.Tensor, aten.sub.Scalar, needs_meta=True)
def _aten_sub(x, y, alpha=1, *, _meta):
    x, y = _cast(_meta, x, _scalar_in_dtype(_meta, y))
    return x - y if alpha == 1 else x - y * alpha


@lowers(aten.rsub.Tensor, aten.rsub.Scalar, needs_meta=True)
def _aten_rsub(x, y, alpha=1, *, _meta):
    x, y = _cast(_meta, x, _scalar_in_dtype(_meta, y))
    return y - x if alpha == 1 else y - x * alpha


@lowers(aten.mul.Tensor, aten.mul.Scalar, needs_meta=True)
def _aten_mul(x, y, *, _meta):
    x, y = _cast(_meta, x, y)
    return x * y


@lowers(
    aten.div.Tensor, aten.div.Scalar, aten.div.Tensor_mode, aten.div.Scalar_mode, needs_meta=True
)
def _aten_div(x, y, *, rounding_mode=None, _meta):
    if rounding_mode is None:  # true division, also for integers (the result dtype is float)
        x, y = _cast(_meta, x, y)
        return _divided(x, y)
    x, y = _arr(_meta, x), _arr(_meta, y)
    if rounding_mode == "floor":  # jnp.floor_divide matches PyTorch (incl. y == 0 -> +-inf/nan)
        return jnp.floor_divide(x, y)
    if not _is_int(x):  # "trunc"
        return jnp.trunc(_divided(x, y))
    q = jnp.floor_divide(x, y)  # not lax.div: INT_MIN / -1 would trap (SIGFPE) on CPU
    return q + ((q * y != x) & ((x < 0) != (y < 0))).astype(q.dtype)


def _divided(x: Any, y: Any) -> Any:
    """``x / y`` as IEEE division, as PyTorch divides. XLA's simplifier turns a division by a
    broadcast value (a Python scalar, a 0-d tensor, a keepdim reduction) into a multiplication
    by its reciprocal, one ulp off (``3.3 / 0.3`` gives 11.0, PyTorch 10.999999), which rounding
    turns into a whole unit (``(x / 0.1).long()``, ``floor(x / 0.3)``). So the divisor is
    broadcast to the result's shape behind an optimization barrier, which the simplifier does
    not see through."""
    shape = jnp.broadcast_shapes(jnp.shape(x), jnp.shape(y))
    if jnp.shape(y) != shape and jnp.issubdtype(jnp.result_type(x, y), jnp.inexact):
        y = jax.lax.optimization_barrier(
            jnp.broadcast_to(jnp.asarray(y, jnp.result_type(x, y)), shape)
        )
    return x / y


@lowers(aten.floor_divide.default, aten.floor_divide.Scalar, needs_meta=True)
def _aten_floor_divide(x, y, *, _meta):
    return jnp.floor_divide(_arr(_meta, x), _arr(_meta, y))


@lowers(aten.remainder.Tensor, aten.remainder.Scalar, needs_meta=True)
def _aten_remainder(x, y, *, _meta):
    return jnp.remainder(_arr(_meta, x), _arr(_meta, y))  # sign of the divisor


@lowers(aten.fmod.Tensor, aten.fmod.Scalar, needs_meta=True)
def _aten_fmod(x, y, *, _meta):
    return jnp.fmod(_arr(_meta, x), _arr(_meta, y))  # sign of the dividend


@lowers(aten.pow.Tensor_Tensor, aten.pow.Tensor_Scalar, aten.pow.Scalar, needs_meta=True)
def _aten_pow(x, y, *, _meta):
    x, y = _cast(_meta, x, y)
    if isinstance(y, float) and y.is_integer() and abs(y) <= 64:
        y = int(y)  # x ** 2.0 as repeated multiplication, as PyTorch does
    if isinstance(y, jax.Array) and jnp.issubdtype(y.dtype, jnp.signedinteger):
        # PyTorch's integer pow with a negative exponent: 1 for a base of 1, ±1 for -1 by the
        # exponent's parity, 0 otherwise (XLA leaves it undefined)
        x = jnp.asarray(x)
        negative = jnp.where(x == 1, 1, jnp.where(x == -1, 1 - 2 * (y & 1), 0)).astype(
            jnp.result_type(x, y)
        )
        return jnp.where(y < 0, negative, jnp.power(x, jnp.maximum(y, 0)))
    return jnp.power(x, y)


@lowers(aten.atan2.default, needs_meta=True)
def _aten_atan2(x, y, *, _meta):
    return jnp.arctan2(*_cast(_meta, x, y))


@lowers(aten.hypot.default, needs_meta=True)
def _aten_hypot(x, y, *, _meta):
    return jnp.hypot(*_cast(_meta, x, y))


@lowers(aten.copysign.Tensor, aten.copysign.Scalar, needs_meta=True)
def _aten_copysign(x, y, *, _meta):
    return jnp.copysign(_arr(_meta, x), _arr(_meta, y))


@lowers(aten.maximum.default, needs_meta=True)
def _aten_maximum(x, y, *, _meta):
    return jnp.maximum(*_cast(_meta, x, y))  # propagates NaN


@lowers(aten.minimum.default, needs_meta=True)
def _aten_minimum(x, y, *, _meta):
    return jnp.minimum(*_cast(_meta, x, y))


@lowers(aten.fmax.default, needs_meta=True)
def _aten_fmax(x, y, *, _meta):
    return jnp.fmax(*_cast(_meta, x, y))  # ignores NaN


@lowers(aten.fmin.default, needs_meta=True)
def _aten_fmin(x, y, *, _meta):
    return jnp.fmin(*_cast(_meta, x, y))


def _clamp(x, lo, hi, meta):
    x, lo, hi = _cast(meta, x, lo, hi)
    x = x if lo is None else jnp.maximum(x, lo)  # max first, so min > max gives max (PyTorch)
    return x if hi is None else jnp.minimum(x, hi)


@lowers(aten.clamp.default, aten.clamp.Tensor, needs_meta=True)
def _aten_clamp(x, min=None, max=None, *, _meta):
    return _clamp(x, min, max, _meta)


@lowers(aten.clamp_min.default, aten.clamp_min.Tensor, needs_meta=True)
def _aten_clamp_min(x, min, *, _meta):
    return _clamp(x, min, None, _meta)


@lowers(aten.clamp_max.default, aten.clamp_max.Tensor, needs_meta=True)
def _aten_clamp_max(x, max, *, _meta):
    return _clamp(x, None, max, _meta)


@lowers(aten.where.self, needs_meta=True)
def _aten_where(cond, x, y, *, _meta):
    return jnp.where(cond, *_cast(_meta, x, y))


# --- unary, same dtype --------------------------------------------------------------------------


@lowers(aten.neg.default)
def _aten_neg(x):
    return -x


@lowers(aten.abs.default)
def _aten_abs(x):
    return jnp.abs(x)


@lowers(aten.sign.default)
def _aten_sign(x):
    if x.dtype == jnp.bool_ or not jnp.issubdtype(x.dtype, jnp.floating):
        return x if x.dtype == jnp.bool_ else jnp.sign(x)
    # +0.0 for -0.0 and for NaN, as PyTorch gives (jnp.sign keeps -0.0)
    one = jnp.ones((), x.dtype)
    return jnp.where(x > 0, one, jnp.where(x < 0, -one, jnp.zeros((), x.dtype)))


@lowers(aten.floor.default)
def _aten_floor(x):
    return x if _is_int(x) else jnp.floor(x)


@lowers(aten.ceil.default)
def _aten_ceil(x):
    return x if _is_int(x) else jnp.ceil(x)


@lowers(aten.trunc.default)
def _aten_trunc(x):
    return x if _is_int(x) else jnp.trunc(x)


@lowers(aten.round.default)
def _aten_round(x):
    return x if _is_int(x) else jnp.round(x)  # half to even, like PyTorch


@lowers(aten.round.decimals)
def _aten_round_decimals(x, *, decimals=0):
    if _is_int(x):
        return x
    p = jnp.asarray(10.0 ** abs(decimals), x.dtype)  # PyTorch's formula: scale, round, unscale
    return jnp.round(x * p) / p if decimals >= 0 else jnp.round(x / p) * p


@lowers(aten.relu.default)
def _aten_relu(x):
    return jnp.maximum(x, jnp.zeros((), x.dtype))  # keeps NaN


# --- unary, floating result ----------------------------------------------------------------------


def _f(x: jax.Array, meta: torch.Tensor) -> jax.Array:
    return x.astype(dtypes.opmath(meta.dtype))  # ints/bools computed in the float result dtype


@lowers(aten.exp.default, needs_meta=True)
def _aten_exp(x, *, _meta):
    return jnp.exp(_f(x, _meta))


@lowers(aten.exp2.default, needs_meta=True)
def _aten_exp2(x, *, _meta):
    return jnp.exp2(_f(x, _meta))


@lowers(aten.expm1.default, needs_meta=True)
def _aten_expm1(x, *, _meta):
    return jnp.expm1(_f(x, _meta))


@lowers(aten.log.default, needs_meta=True)
def _aten_log(x, *, _meta):
    return jnp.log(_f(x, _meta))


@lowers(aten.log2.default, needs_meta=True)
def _aten_log2(x, *, _meta):
    return jnp.log2(_f(x, _meta))


@lowers(aten.log10.default, needs_meta=True)
def _aten_log10(x, *, _meta):
    return jnp.log10(_f(x, _meta))


@lowers(aten.log1p.default, needs_meta=True)
def _aten_log1p(x, *, _meta):
    return jnp.log1p(_f(x, _meta))


@lowers(aten.sqrt.default, needs_meta=True)
def _aten_sqrt(x, *, _meta):
    return jnp.sqrt(_f(x, _meta))


@lowers(aten.rsqrt.default, needs_meta=True)
def _aten_rsqrt(x, *, _meta):
    return lax.rsqrt(_f(x, _meta))


@lowers(aten.reciprocal.default, needs_meta=True)
def _aten_reciprocal(x, *, _meta):
    return 1 / _f(x, _meta)


@lowers(aten.sin.default, needs_meta=True)
def _aten_sin(x, *, _meta):
    return jnp.sin(_f(x, _meta))


@lowers(aten.cos.default, needs_meta=True)
def _aten_cos(x, *, _meta):
    return jnp.cos(_f(x, _meta))


@lowers(aten.tan.default, needs_meta=True)
def _aten_tan(x, *, _meta):
    return jnp.tan(_f(x, _meta))


@lowers(aten.asin.default, needs_meta=True)
def _aten_asin(x, *, _meta):
    return jnp.arcsin(_f(x, _meta))


@lowers(aten.acos.default, needs_meta=True)
def _aten_acos(x, *, _meta):
    return jnp.arccos(_f(x, _meta))


@lowers(aten.atan.default, needs_meta=True)
def _aten_atan(x, *, _meta):
    return jnp.arctan(_f(x, _meta))


@lowers(aten.sinh.default, needs_meta=True)
def _aten_sinh(x, *, _meta):
    return jnp.sinh(_f(x, _meta))


@lowers(aten.cosh.default, needs_meta=True)
def _aten_cosh(x, *, _meta):
    return jnp.cosh(_f(x, _meta))


@lowers(aten.asinh.default, needs_meta=True)
def _aten_asinh(x, *, _meta):
    return jnp.arcsinh(_f(x, _meta))


@lowers(aten.acosh.default, needs_meta=True)
def _aten_acosh(x, *, _meta):
    return jnp.arccosh(_f(x, _meta))


@lowers(aten.atanh.default, needs_meta=True)
def _aten_atanh(x, *, _meta):
    return jnp.arctanh(_f(x, _meta))


@lowers(aten.tanh.default, needs_meta=True)
def _aten_tanh(x, *, _meta):
    return jnp.tanh(_f(x, _meta))


@lowers(aten.sigmoid.default, needs_meta=True)
def _aten_sigmoid(x, *, _meta):
    return jax.nn.sigmoid(_f(x, _meta))


@lowers(aten.erf.default, needs_meta=True)
def _aten_erf(x, *, _meta):
    return lax.erf(_f(x, _meta))


@lowers(aten.erfinv.default, needs_meta=True)
def _aten_erfinv(x, *, _meta):
    return lax.erf_inv(_f(x, _meta))


@lowers(aten.lgamma.default, needs_meta=True)
def _aten_lgamma(x, *, _meta):
    return lax.lgamma(_f(x, _meta))


@lowers(aten.digamma.default, needs_meta=True)
def _aten_digamma(x, *, _meta):
    x = _f(x, _meta)
    return jnp.where(x == 0, jnp.copysign(jnp.inf, -x), lax.digamma(x))  # PyTorch's pole at 0


@lowers(aten.i0.default, needs_meta=True)
def _aten_i0(x, *, _meta):
    return jsp.i0(_f(x, _meta))


# --- activations ----------------------------------------------------------------------------------


@lowers(aten.gelu.default)
def _aten_gelu(x, *, approximate="none"):
    return jax.nn.gelu(x, approximate=approximate == "tanh")


@lowers(aten.leaky_relu.default)
def _aten_leaky_relu(x, negative_slope=0.01):
    return jnp.where(x > 0, x, x * negative_slope)


@lowers(aten.elu.default)
def _aten_elu(x, alpha=1, scale=1, input_scale=1):
    return jnp.where(x > 0, x * scale, jnp.expm1(x * input_scale) * (alpha * scale))


@lowers(aten.hardtanh.default)
def _aten_hardtanh(x, min_val=-1, max_val=1):
    return jnp.minimum(jnp.maximum(x, min_val), max_val)


# --- predicates and comparisons ------------------------------------------------------------------


@lowers(aten.isnan.default)
def _aten_isnan(x):
    return jnp.isnan(x)


@lowers(aten.isinf.default)
def _aten_isinf(x):
    return jnp.isinf(x)


@lowers(aten.signbit.default)
def _aten_signbit(x):
    return jnp.signbit(x) if not _is_int(x) else x < 0


@lowers(aten.eq.Tensor, aten.eq.Scalar, common_dtype=True)
def _aten_eq(x, y):
    return x == y


@lowers(aten.ne.Tensor, aten.ne.Scalar, common_dtype=True)
def _aten_ne(x, y):
    return x != y


@lowers(aten.lt.Tensor, aten.lt.Scalar, common_dtype=True)
def _aten_lt(x, y):
    return x < y


@lowers(aten.le.Tensor, aten.le.Scalar, common_dtype=True)
def _aten_le(x, y):
    return x <= y


@lowers(aten.gt.Tensor, aten.gt.Scalar, common_dtype=True)
def _aten_gt(x, y):
    return x > y


@lowers(aten.ge.Tensor, aten.ge.Scalar, common_dtype=True)
def _aten_ge(x, y):
    return x >= y


@lowers(aten.logical_and.default)
def _aten_logical_and(x, y):
    return _b(x) & _b(y)


@lowers(aten.logical_or.default)
def _aten_logical_or(x, y):
    return _b(x) | _b(y)


@lowers(aten.logical_xor.default)
def _aten_logical_xor(x, y):
    return _b(x) ^ _b(y)


@lowers(aten.logical_not.default)
def _aten_logical_not(x):
    return ~_b(x)


# --- bitwise -------------------------------------------------------------------------------------


@lowers(aten.bitwise_and.Tensor, aten.bitwise_and.Scalar, needs_meta=True)
def _aten_bitwise_and(x, y, *, _meta):
    return jnp.bitwise_and(*_cast(_meta, x, y))


@lowers(aten.bitwise_or.Tensor, aten.bitwise_or.Scalar, needs_meta=True)
def _aten_bitwise_or(x, y, *, _meta):
    return jnp.bitwise_or(*_cast(_meta, x, y))


@lowers(aten.bitwise_xor.Tensor, aten.bitwise_xor.Scalar, needs_meta=True)
def _aten_bitwise_xor(x, y, *, _meta):
    return jnp.bitwise_xor(*_cast(_meta, x, y))


@lowers(aten.bitwise_not.default)
def _aten_bitwise_not(x):
    return jnp.bitwise_not(x)


@lowers(
    aten.__lshift__.Tensor,
    aten.__lshift__.Scalar,
    aten.bitwise_left_shift.Tensor,
    aten.bitwise_left_shift.Tensor_Scalar,
    needs_meta=True,
)
def _aten_lshift(x, y, *, _meta):
    return jnp.left_shift(_arr(_meta, x), _arr(_meta, y))


@lowers(
    aten.__rshift__.Tensor,
    aten.__rshift__.Scalar,
    aten.bitwise_right_shift.Tensor,
    aten.bitwise_right_shift.Tensor_Scalar,
    needs_meta=True,
)
def _aten_rshift(x, y, *, _meta):
    return jnp.right_shift(_arr(_meta, x), _arr(_meta, y))  # arithmetic for signed types
