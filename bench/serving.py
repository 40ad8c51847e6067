"""Serving a batch of rows that each take their own path: ``cm.per_sample`` against a loop.

    python -m bench.serving                       # also run by `make bench`; bench/out/serving.md
    python -m bench.serving --models sdn_resnet56 --rows 8,32

For each zoo model that takes batch-1 inputs: rows/s of ``cm.per_sample(batch, stack=False)``
(rows on the same path grouped and vmapped; per-row results exact), of a Python loop of
``cm(row)``, and of eager PyTorch looping rows, at 8, 32 and 128 rows drawn from
``inputs_for_paths`` (rows chosen to take different paths: the hard case for grouping). Also the
number of groups per_sample ran (one host-program run per group), and, where the model family has
one (``bench.masked``), eager PyTorch on the whole batch running each block when any row needs
it and masking the rest (its per-row results are checked against eager row by row first).
Systems interleaved, best of three; the load average is recorded.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

import dycl_jax
from bench.masked import BASELINES
from dycl_jax.runtime import io
from dycl_jax.testing import batch_of, difference
from dycl_jax.zoo import MODELS

OUT = Path(__file__).resolve().parent / "out"
DEFAULT = ("sdn_resnet56", "skipnet_ff", "branchy", "bert_pabee", "act_rnn", "decoder_greedy")


def _best(fn, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _check(baseline, model, batch: torch.Tensor, inputs) -> str | None:  # type: ignore[no-untyped-def]
    """None when the masked batch gives, for every row, what eager gives on that row alone."""
    got = baseline(model, batch)
    for i, args in enumerate(inputs):
        d = difference(io.outputs(io.from_torch(got[i])), model(*args))
        if d is not None:
            return f"row {i}: {d}"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT))
    ap.add_argument("--rows", default="8,32,128")
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    lines = [
        "# per_sample serving (rows/s, higher is better)",
        "",
        f"load average at start: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}",
        "",
        "| model | rows | groups | per_sample | loop of cm(row) | eager loop | eager masked batch "
        "| per_sample / cm loop | per_sample / masked |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in a.models.split(","):
        entry = MODELS[name]
        model = entry.build("small", seed=0)
        cm = dycl_jax.convert(model)
        for n in (int(r) for r in a.rows.split(",")):
            inputs = entry.inputs_for_paths("small", n=n, seed=0)
            batch = batch_of(inputs)
            cm.per_sample(*batch, stack=False)  # warm up (compiles)
            before = cm.stats.per_sample_groups
            cm.per_sample(*batch, stack=False)
            groups = cm.stats.per_sample_groups - before
            for args in inputs:
                cm(*args)
            t_ps = _best(lambda: cm.per_sample(*batch, stack=False))  # noqa: B023
            t_loop = _best(lambda: [cm(*args) for args in inputs])  # noqa: B023
            with torch.no_grad():
                t_eager = _best(lambda: [model(*args) for args in inputs])  # noqa: B023
            masked, ratio = "n/a", "n/a"
            baseline = BASELINES.get(name)
            if baseline is not None:
                with torch.no_grad():
                    wrong = _check(baseline, model, batch[0], inputs)
                    t_mask = _best(lambda: baseline(model, batch[0]))  # noqa: B023
                masked = f"{n / t_mask:.0f}" + (f" (differs: {wrong})" if wrong else "")
                ratio = f"{t_mask / t_ps:.2f}x"
            lines.append(
                f"| {name} | {n} | {groups} | {n / t_ps:.0f} | {n / t_loop:.0f} | "
                f"{n / t_eager:.0f} | {masked} | {t_loop / t_ps:.2f}x | {ratio} |"
            )
            print(lines[-1], flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "serving.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
