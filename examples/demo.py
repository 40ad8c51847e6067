"""`make demo`: convert zoo DyNNs, show the host program, parity with PyTorch on every path, speed.

Run as ``python -m examples.demo [model ...]`` (default: an early-exit and a block-skipping net).
"""

from __future__ import annotations

import statistics
import sys
import time

import jax
import numpy as np
import torch

import dycl_jax
from dycl_jax import compat
from dycl_jax.testing import assert_same, path_of
from dycl_jax.zoo import MODELS

DEFAULT = ("sdn_resnet56", "skipnet_ff")


def _median_us(fn, inputs, repeats: int = 20) -> float:
    """Median latency over ``repeats`` passes of ``inputs`` (which mix paths), after warm-up."""
    for args in inputs:
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        for args in inputs:
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))  # waits for jax arrays; torch results are ready
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def demo(name: str) -> None:
    entry = MODELS[name]
    print(f"\n=== {name}: {entry.paths}")
    model = entry.build("small", seed=0)
    t0 = time.perf_counter()
    cm = dycl_jax.convert(model)
    t_convert = time.perf_counter() - t0
    host = cm.host_source.splitlines()
    print(f"converted in {t_convert * 1e3:.0f} ms: {len(cm.regions)} regions; host program:")
    for line in host[:24]:
        print("    " + line)
    if len(host) > 24:
        print(f"    ... ({len(host) - 24} more lines)")

    inputs = entry.inputs_for_paths("small", n=12, seed=1)
    t0 = time.perf_counter()
    paths, worst = set(), 0.0
    for args in inputs:
        with torch.no_grad():
            expected = model(*args)
        with cm.record() as events:
            got = cm(*args)
        assert_same(got, expected, rtol=1e-4, atol=1e-4)
        paths.add(path_of(events))
        for g, e in zip(jax.tree_util.tree_leaves(got), compat.tree_leaves(expected)):
            if isinstance(e, torch.Tensor) and e.is_floating_point() and e.numel():
                worst = max(worst, float(np.max(np.abs(np.asarray(g) - e.numpy()))))
    t_first = time.perf_counter() - t0
    print(
        f"parity: {len(inputs)} inputs, {len(paths)} distinct paths, all match eager "
        f"(max abs error {worst:.2e}); first calls incl. compiles {t_first:.1f} s"
    )

    with torch.no_grad():
        eager = _median_us(model, inputs)
    with jax.enable_x64(True):
        jinputs = [
            tuple(jax.numpy.asarray(a.numpy()) if isinstance(a, torch.Tensor) else a for a in args)
            for args in inputs
        ]
    ours = _median_us(cm, jinputs)
    print(
        f"speed (batch 1, median over mixed paths): eager {eager:.0f} µs, dycl_jax {ours:.0f} µs "
        f"-> {eager / ours:.2f}x"
    )


def main() -> None:
    torch.set_num_threads(2)
    names = sys.argv[1:] or DEFAULT
    print(f"dycl_jax demo — torch {torch.__version__}, jax {jax.__version__}, CPU")
    for name in names:
        demo(name)
    print("\n=== a saved artifact, run where torch cannot be imported")
    from examples import save_load

    save_load.main()


if __name__ == "__main__":
    main()
