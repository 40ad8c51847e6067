"""Lowerings: linalg ops (matrix products).

Products use ``Precision.HIGHEST`` so float32 matmuls stay float32 on accelerators (no TF32), as
PyTorch's default does. Integer products are exact either way.
"""

from __future__ import annotations

import jax.numpy as jnp
import torch
from jax import lax

from dycl_jax.lower.registry import lowers

aten = torch.ops.aten

HIGHEST = lax.Precision.HIGHEST


def _scaled_sum(bias, product, beta, alpha):
    """``beta * bias + alpha * product``; with beta == 0 the bias is ignored and with alpha == 0
    the product (NaN and inf included), as BLAS does."""
    if alpha == 0:
        product = jnp.zeros(jnp.broadcast_shapes(product.shape, bias.shape), product.dtype)
    product = product if alpha in (0, 1) else alpha * product
    if beta == 0:
        return product
    return product + (bias if beta == 1 else beta * bias)


@lowers(aten.mm.default, aten.bmm.default, aten.matmul.default)
def _aten_mm(a, b):
    return jnp.matmul(a, b, precision=HIGHEST)


@lowers(aten.dot.default, aten.vdot.default)
def _aten_dot(a, b):
    return jnp.dot(a, b, precision=HIGHEST)


@lowers(aten.mv.default)
def _aten_mv(a, v):
    return jnp.matmul(a, v, precision=HIGHEST)


@lowers(aten.addmm.default, aten.baddbmm.default)
def _aten_addmm(bias, a, b, beta=1, alpha=1):
    return _scaled_sum(bias, jnp.matmul(a, b, precision=HIGHEST), beta, alpha)


@lowers(aten.addmv.default)
def _aten_addmv(bias, a, v, beta=1, alpha=1):
    return _scaled_sum(bias, jnp.matmul(a, v, precision=HIGHEST), beta, alpha)


@lowers(aten._cdist_forward.default)
def _aten_cdist(x1, x2, p, compute_mode=None):
    """``torch.cdist``: p-norm distances between the rows of ``x1`` and ``x2`` (batched), from
    the differences (PyTorch's CPU kernel may use a matmul form for p=2 on large inputs; the
    values agree to rounding)."""
    d = jnp.abs(x1[..., :, None, :] - x2[..., None, :, :])
    if p == 0:
        return jnp.sum(d != 0, axis=-1).astype(x1.dtype)
    if p == float("inf"):
        return jnp.max(d, axis=-1)
    if p == 1:
        return jnp.sum(d, axis=-1)
    if p == 2:
        return jnp.sqrt(jnp.sum(d * d, axis=-1))
    return jnp.sum(d**p, axis=-1) ** (1.0 / p)
