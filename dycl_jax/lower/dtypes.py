"""torch <-> JAX dtype tables. Literal dicts; unmapped dtypes are marked in place and raise."""

from __future__ import annotations

import platform
from typing import Any

import jax.numpy as jnp
import numpy as np
import torch

from dycl_jax.errors import DtypeError

TORCH_TO_JAX_DTYPE: dict[torch.dtype, jnp.dtype] = {
    torch.float32: jnp.dtype(jnp.float32),
    torch.float64: jnp.dtype(jnp.float64),
    torch.float16: jnp.dtype(jnp.float16),
    torch.bfloat16: jnp.dtype(jnp.bfloat16),
    torch.int8: jnp.dtype(jnp.int8),
    torch.int16: jnp.dtype(jnp.int16),
    torch.int32: jnp.dtype(jnp.int32),
    torch.int64: jnp.dtype(jnp.int64),
    torch.uint8: jnp.dtype(jnp.uint8),
    torch.uint16: jnp.dtype(jnp.uint16),
    torch.uint32: jnp.dtype(jnp.uint32),
    torch.uint64: jnp.dtype(jnp.uint64),
    torch.bool: jnp.dtype(jnp.bool_),
    torch.complex64: jnp.dtype(jnp.complex64),
    torch.complex128: jnp.dtype(jnp.complex128),
    # NO_MAPPING: torch.qint8, torch.quint8, torch.qint32 (quantized types)
    # NO_MAPPING: torch.float8_* (no stable XLA CPU support)
}

JAX_TO_TORCH_DTYPE: dict[jnp.dtype, torch.dtype] = {v: k for k, v in TORCH_TO_JAX_DTYPE.items()}


def to_jax(dtype: torch.dtype) -> jnp.dtype:
    """The JAX dtype for a torch dtype; raises DtypeError naming unmapped ones."""
    try:
        return TORCH_TO_JAX_DTYPE[dtype]
    except KeyError:
        raise DtypeError(f"torch dtype {dtype} has no JAX counterpart in dycl_jax") from None


def to_torch(dtype: np.dtype | jnp.dtype | type) -> torch.dtype:
    """The torch dtype for a numpy/JAX dtype."""
    try:
        return JAX_TO_TORCH_DTYPE[jnp.dtype(dtype)]
    except KeyError:
        raise DtypeError(f"dtype {dtype} has no torch counterpart") from None


# Reduced-precision floats, computed in float32 by PyTorch's CPU kernels.
REDUCED_FLOATS = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


def opmath(dtype: torch.dtype) -> jnp.dtype:
    """The dtype PyTorch's CPU kernels compute ``dtype`` in: float16 and bfloat16 in float32
    (rounded once per op to the result dtype), every other dtype in itself."""
    dt = to_jax(dtype)
    return jnp.dtype(jnp.float32) if dt in REDUCED_FLOATS else dt


def tensor_to_numpy(t: torch.Tensor) -> np.ndarray:
    """A torch tensor's values as a numpy array of the matching dtype, bfloat16 included (numpy
    has none of its own: JAX's ``ml_dtypes`` one, by reinterpreting the bits, no rounding)."""
    if t.dtype is not torch.bfloat16 and not t.requires_grad:
        try:  # the common case, a plain CPU tensor: its buffer as it is (about 1 µs less)
            return t.numpy()
        except (RuntimeError, TypeError):  # on another device, or a conjugate / negative view
            pass
    t = t.detach().cpu()
    if t.is_conj() or t.is_neg():
        t = t.resolve_conj().resolve_neg()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(jnp.bfloat16)
    if t.dtype not in TORCH_TO_JAX_DTYPE:  # float8, quantized: numpy holds none of them
        raise DtypeError(f"torch dtype {t.dtype} has no JAX counterpart in dycl_jax")
    return t.numpy()


def numpy_to_tensor(a: object) -> torch.Tensor:
    """A numpy / JAX array as a torch tensor (a host copy), bfloat16 included."""
    arr = np.array(a)
    if arr.dtype == jnp.bfloat16:
        return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(arr)


# PyTorch's CPU kernels convert floats to ints with the machine's truncating conversion: on x86
# a value out of the int32 (int64) range, or NaN, becomes INT32_MIN (INT64_MIN), and the narrower
# ints take the low bits of the int32 (300.0 -> uint8 44, -1.0 -> uint8 255). XLA saturates.
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
_THROUGH_INT32 = frozenset(jnp.dtype(d) for d in (jnp.uint8, jnp.int8, jnp.int16))
_WIDE = (jnp.dtype(jnp.int32), jnp.dtype(jnp.int64))
_HALF = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


def cast(x: Any, dtype: Any) -> Any:
    """``x.astype(dtype)`` as PyTorch computes it on this machine (see ``_X86``; a double to
    half precision rounds through float32)."""
    dt = jnp.dtype(dtype)
    if x.dtype == jnp.dtype(jnp.float64) and dt in _HALF:
        # PyTorch rounds a double to float first (c10::Half / BFloat16 are built from floats)
        return x.astype(jnp.float32).astype(dt)
    if not (_X86 and jnp.issubdtype(x.dtype, jnp.floating)) or (
        dt not in _THROUGH_INT32 and dt not in _WIDE
    ):
        return x.astype(dt)
    wide = jnp.dtype(jnp.int64) if dt == jnp.dtype(jnp.int64) else jnp.dtype(jnp.int32)
    bound = float(2 ** (jnp.iinfo(wide).bits - 1))
    t = jnp.trunc(x)
    ok = (t >= -bound) & (t < bound)  # (False for NaN)
    v = jnp.where(ok, jnp.where(ok, x, 0).astype(wide), jnp.iinfo(wide).min)
    return v.astype(dt)  # (int32 -> uint8 / int8 / int16 keeps the low bits)
