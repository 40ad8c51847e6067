"""Lowerings: linalg ops."""

from __future__ import annotations

import jax.numpy as jnp
import torch

from dycl_jax.lower.registry import lowers

aten = torch.ops.aten
