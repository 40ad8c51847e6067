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


CACHE_PROBE = """
import sys, time, torch, dycl_jax
from tests.rewrite import dynamic_models as dm
torch.manual_seed(0)
m = dm.SkipGate().eval()
cm = dycl_jax.convert(m, config=dycl_jax.Config(cache_dir=sys.argv[1]))
for s in (0.1, 4.0, -4.0):
    x = torch.full((2, 6), s)
    dycl_jax.testing.assert_same(cm(x), m(x))
print(cm.stats.compiles, round(cm.stats.compile_seconds, 3))
"""


def test_cache_dir_keeps_compiled_regions_for_the_next_process(tmp_path) -> None:
    """Config(cache_dir=...) turns on JAX's persistent compilation cache there: the first
    process writes every region's executable, the second reads them (results checked in both)."""
    cache = tmp_path / "xla"
    env = {k: v for k, v in os.environ.items() if k != "DYCL_CACHE_DIR"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")

    def run() -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", CACHE_PROBE, str(cache)],
            capture_output=True, text=True, env=env, check=True, cwd=root,
        )  # fmt: skip
        return out.stdout.split()

    first = run()
    written = sorted(p.name for p in cache.iterdir())
    assert int(first[0]) > 0 and written
    second = run()
    assert second[0] == first[0]  # the same regions compiled, now from the cache
    assert sorted(p.name for p in cache.iterdir()) == written  # nothing new to write
