"""Input normalization (numpy / torch / jax -> jax arrays) at the converted model's boundary."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

from dycl_jax.errors import InputError


def to_jax(value: Any) -> Any:
    """Arrays and tensors become jax arrays (same dtype); containers are converted recursively."""
    if isinstance(value, jax.Array):
        return value
    if isinstance(value, torch.Tensor):
        if value.requires_grad:
            value = value.detach()
        if value.is_complex() or value.dtype == torch.bfloat16:
            return jnp.asarray(
                value.cpu().float().numpy()
                if value.dtype == torch.bfloat16
                else value.cpu().numpy()
            )
        return jnp.asarray(value.cpu().numpy())
    if isinstance(value, np.ndarray | np.generic):
        if value.dtype == object:
            raise InputError(f"numpy array of dtype object cannot be an input ({value!r:.60})")
        return jnp.asarray(value)
    t = type(value)
    if t is list or t is tuple:
        return t(to_jax(v) for v in value)
    if t is dict:
        return {k: to_jax(v) for k, v in value.items()}
    return value
