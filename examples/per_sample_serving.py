"""Serving a batch whose rows take their own paths: ``cm.per_sample``.

    python -m examples.per_sample_serving

An early-exit classifier written for one sample (``if probs.max() > threshold: return``). Run on
a batch as it is, the whole batch takes the first row's decision; ``cm.per_sample(batch)`` gives
every row what it gets alone, running the rows that exit together as one vmapped group. Checks
each row against eager PyTorch on that row, and times it against a loop of ``cm(row)``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import dycl_jax
from examples.early_exit import EarlyExit


def main() -> dict[str, object]:
    torch.manual_seed(0)
    model = EarlyExit().eval()
    cm = dycl_jax.convert(model)
    g = torch.Generator().manual_seed(1)
    batch = torch.randn(32, 16, generator=g) * torch.linspace(0.1, 10.0, 32)[:, None]

    probs, stages = cm.per_sample(batch)  # stacked: (32, classes) and (32,)
    for i in range(len(batch)):
        with torch.no_grad():
            want_probs, want_stage = model(batch[i : i + 1])
        assert int(stages[i]) == want_stage
        dycl_jax.testing.assert_same(probs[i : i + 1], want_probs)
    print("exit stage per row:", np.asarray(stages).tolist())

    rows = [batch[i : i + 1] for i in range(len(batch))]
    for _ in range(2):
        cm.per_sample(batch)
        [cm(r) for r in rows]
    t0 = time.perf_counter()
    cm.per_sample(batch)
    t_grouped = time.perf_counter() - t0
    t0 = time.perf_counter()
    [cm(r) for r in rows]
    t_loop = time.perf_counter() - t0
    print(
        f"per_sample {len(batch) / t_grouped:.0f} rows/s, loop of cm(row) {len(batch) / t_loop:.0f}"
    )
    return {"stages": sorted(set(np.asarray(stages).tolist())), "speedup": t_loop / t_grouped}


if __name__ == "__main__":
    main()
