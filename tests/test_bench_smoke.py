"""The benchmark harness runs in-process on one tiny dynamic model and fills every result field.

No speed is asserted: only that rows are complete and dycl_jax matches eager on every path.
"""

from __future__ import annotations

import types
from pathlib import Path

import torch
from torch import nn

from bench import report
from bench.run import parse_args, run_benchmark

ROW_FIELDS = {
    "model", "size", "batch", "system", "status", "error", "correct", "n_correct", "n_inputs",
    "convert_s", "first_call_s", "warmup_s", "median_ms", "p90_ms", "n_timed", "rss_growth_mb",
    "speedup_vs_eager", "speedup_vs_compile",
}  # fmt: skip
DYCL_FIELDS = {
    "host_reads_per_call",
    "regions_per_call",
    "device_reads_per_call",
    "host_ms_per_call",
    "compiles",
}


class _EarlyExit(nn.Module):
    """Stand-in DyNN: exits after the first block when its score is high."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        if h.sum() > 1.0:
            return h
        return self.b(h)


def _entries() -> dict[str, object]:
    try:
        from dycl_jax.zoo import MODELS

        return {"branchy": MODELS["branchy"]}
    except (ImportError, KeyError):
        pass

    def build(size: str = "small", seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return _EarlyExit().eval()

    def example_inputs(size: str, batch: int, seed: int) -> tuple:
        return (torch.randn(batch, 4, generator=torch.Generator().manual_seed(seed)),)

    def inputs_for_paths(size: str, n: int, seed: int) -> list[tuple]:
        return [
            (torch.randn(1, 4, generator=torch.Generator().manual_seed(seed + i)) * (i + 1),)
            for i in range(n)
        ]

    entry = types.SimpleNamespace(
        name="stand_in", family="stand_in", build=build, example_inputs=example_inputs,
        inputs_for_paths=inputs_for_paths, paths="early exit", supports_batch=True,
    )  # fmt: skip
    return {"stand_in": entry}


def test_bench_smoke(tmp_path: Path) -> None:
    models = _entries()
    a = parse_args(
        [
            "--quick",
            "--inprocess",
            "--systems",
            "eager,dycl_jax",
            "--batches",
            "1",
            "--n-paths",
            "3",
            "--out",
            str(tmp_path),
        ]
    )
    results = run_benchmark(a, progress=False, models=models)
    rows = results["rows"]
    assert {(r["system"], r["batch"]) for r in rows} == {("eager", 1), ("dycl_jax", 1)}
    for r in rows:
        assert ROW_FIELDS <= set(r), ROW_FIELDS - set(r)
        assert r["status"] == "ok", r["error"]
        assert r["n_inputs"] == 3 and r["n_timed"] >= 1
    dycl = next(r for r in rows if r["system"] == "dycl_jax")
    assert dycl["correct"] is True, dycl["mismatch"]
    assert DYCL_FIELDS <= set(dycl)
    assert dycl["speedup_vs_eager"] is not None
    md = report.write(results, tmp_path)
    assert "| " + dycl["model"] + " | 1 |" in md
    assert (tmp_path / "results.json").exists() and (tmp_path / "speedup.png").exists()


def test_masked_batch_baselines_give_each_row_its_own_result() -> None:
    """The serving table's eager baseline (run a block for the batch when any row needs it,
    mask the rest) must equal eager PyTorch row by row, on rows taking different paths."""
    from bench.masked import BASELINES
    from bench.serving import _check
    from dycl_jax.testing import batch_of
    from dycl_jax.zoo import MODELS

    for name in ("sdn_resnet56", "sdn_vgg16", "skipnet_ff"):
        entry = MODELS[name]
        model = entry.build("small", seed=0)
        inputs = entry.inputs_for_paths("small", n=8, seed=0)
        with torch.no_grad():
            assert _check(BASELINES[name], model, batch_of(inputs)[0], inputs) is None, name
            paths = {repr(model(*a)[1]) for a in inputs}
        assert len(paths) >= 2, (name, paths)  # rows really take different paths
