"""torch <-> JAX dtype tables. Literal dicts; unmapped dtypes are marked in place and raise."""

from __future__ import annotations

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
