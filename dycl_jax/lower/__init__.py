"""Lowering stage: captured core-ATen graphs -> pure JAX functions.

Importing this package fills the op table: every module under ``ops/`` registers its family.
"""

from __future__ import annotations

from dycl_jax.lower import ops as _ops  # noqa: F401  (registers every lowering)
from dycl_jax.lower.interpreter import LoweringError, check_supported, to_jax
from dycl_jax.lower.registry import LOWERINGS, Lowering, lookup, lowers, registered

__all__ = [
    "LOWERINGS",
    "Lowering",
    "LoweringError",
    "check_supported",
    "lookup",
    "lowers",
    "registered",
    "to_jax",
]
