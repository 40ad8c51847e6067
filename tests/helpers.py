"""The suite's helpers live in the package so users can check their own models the same way."""

from dycl_jax.testing import assert_same, path_of, run_all_paths

__all__ = ["assert_same", "path_of", "run_all_paths"]
