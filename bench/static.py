"""Static models (no tensor-dependent control flow, one region): capture time and jitted latency.

    python -m bench.static        # also run by `make bench`; writes bench/out/static.md

For the translator alone: a ResNet-style CNN, a Transformer encoder, GRU and LSTM stacks and an
MLP (tests/static_models.py), at batch 1 and 8. Reports convert time, capture (make_fx) and XLA
compile time of the first call, max relative error against eager, and median latency of eager
PyTorch vs the converted model.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import jax
import numpy as np
import torch

import dycl_jax  # before any JAX computation: synchronous CPU dispatch (dycl_jax.config)
from dycl_jax.compat import tree_leaves
from tests import static_models

OUT = Path(__file__).resolve().parent / "out"


def _median_ms(fn, args, n: int = 200) -> float:
    for _ in range(10):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _rel_err(got, expected) -> float:
    worst = 0.0
    for g, e in zip(jax.tree_util.tree_leaves(got), tree_leaves(expected)):
        e = e.detach().numpy()
        scale = max(float(np.max(np.abs(e))), 1e-12)
        worst = max(worst, float(np.max(np.abs(np.asarray(g) - e))) / scale)
    return worst


def main() -> None:
    torch.set_num_threads(2)
    rows = []
    for name, (cls, inputs) in static_models.cases().items():
        torch.manual_seed(0)
        model = cls().eval()
        t0 = time.perf_counter()
        cm = dycl_jax.convert(model)
        convert_s = time.perf_counter() - t0
        for args in inputs:
            batch = args[0].shape[0]
            before = (cm.stats.capture_seconds, cm.stats.compile_seconds)
            with jax.enable_x64(True):
                jargs = tuple(jax.numpy.asarray(a.numpy()) for a in args)
            got = cm(*jargs)
            capture = cm.stats.capture_seconds - before[0]
            compile_ = cm.stats.compile_seconds - before[1]
            with torch.no_grad():
                expected = model(*args)
                eager = _median_ms(model, args)
            ours = _median_ms(cm, jargs)
            rows.append(
                f"| {name} | {batch} | {convert_s * 1e3:.0f} | {capture * 1e3:.0f} | "
                f"{compile_ * 1e3:.0f} | {_rel_err(got, expected):.1e} | {eager:.3f} | "
                f"{ours:.3f} | {eager / ours:.2f}x |"
            )
            print(rows[-1], flush=True)
    md = "\n".join(
        [
            "# Static models: translator only (one region each)",
            "",
            f"torch {torch.__version__}, jax {jax.__version__}, torch threads 2, synchronous CPU dispatch.",
            "",
            "| model | batch | convert ms | capture ms | XLA compile ms | max rel err | eager ms | dycl_jax ms | speedup |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    OUT.mkdir(exist_ok=True)
    (OUT / "static.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
