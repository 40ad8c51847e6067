"""Lowerings, one module per op family. Importing this package registers all of them."""

from dycl_jax.lower.ops import (  # noqa: F401
    creation,
    elementwise,
    indexing,
    linalg,
    nn,
    reduction,
    shape,
)
