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
