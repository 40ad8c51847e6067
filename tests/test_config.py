"""The CPU dispatch preference: applied only while JAX has not started, never over the user's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import jax; print(jax.config.values['jax_cpu_enable_async_dispatch'])"


def _run(code: str, env: dict[str, str] | None = None) -> str:
    full_env = {k: v for k, v in os.environ.items() if k != "JAX_CPU_ENABLE_ASYNC_DISPATCH"}
    full_env.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, check=True
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("code", "env", "expected"),
    [
        ("import dycl_jax; " + PROBE, None, "False"),  # dycl_jax first: synchronous
        ("import jax.numpy as j; j.ones(1); import dycl_jax; " + PROBE, None, "True"),  # too late
        ("import dycl_jax; " + PROBE, {"JAX_CPU_ENABLE_ASYNC_DISPATCH": "1"}, "True"),  # user's
    ],
)
def test_sync_cpu_dispatch_preference(code: str, env: dict[str, str] | None, expected: str) -> None:
    assert _run(code, env) == expected
