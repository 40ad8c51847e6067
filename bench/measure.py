"""Measure one system on one model: correctness on every input, first call, steady state, memory.

Systems: ``eager`` (PyTorch, no_grad), ``torch_compile`` (inductor, default mode),
``torchscript`` (torch.jit.script) and ``dycl_jax``. :func:`run_system` runs in a worker
subprocess (see bench/worker.py) so each system's peak RSS is its own, or in-process for tests.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch

from bench.compare import mismatch

SYSTEMS = ("eager", "torch_compile", "torchscript", "dycl_jax")


@dataclasses.dataclass
class Config:
    rtol: float = 1e-4
    atol: float = 1e-4
    min_calls: int = 20  # timed calls per (system, batch), at least
    max_calls: int = 400
    time_budget_s: float = 2.0  # timed calls stop after this once min_calls are done
    host_probe_rounds: int = 1  # instrumented passes over the inputs for dycl_jax's host time


def first_line(exc: BaseException) -> str:
    msg = str(exc).strip()
    line = next((ln.strip() for ln in msg.splitlines() if ln.strip()), "")
    return f"{type(exc).__name__}: {line}"[:300]


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---- systems -----------------------------------------------------------------------------------


class _System:
    """prepare() makes the callable (convert time); sync() waits for its outputs."""

    name = ""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.fn: Callable[..., Any] = model

    def prepare(self) -> None:
        pass

    def sync(self, out: Any) -> Any:
        return out

    def call(self, args: tuple) -> Any:
        with torch.no_grad():
            return self.sync(self.fn(*args))

    def counters(self) -> dict[str, float]:
        return {}


class Eager(_System):
    name = "eager"


class TorchCompile(_System):
    name = "torch_compile"

    def prepare(self) -> None:
        torch.compiler.reset()
        self.fn = torch.compile(self.model)  # inductor, default mode; compiles lazily on call


class TorchScript(_System):
    name = "torchscript"

    def prepare(self) -> None:
        self.fn = torch.jit.script(self.model)


class DyclJax(_System):
    name = "dycl_jax"

    def prepare(self) -> None:
        import dycl_jax

        self.cm = dycl_jax.convert(self.model)
        self.fn = self.cm

    def sync(self, out: Any) -> Any:
        import jax

        return jax.block_until_ready(out)

    def call(self, args: tuple) -> Any:
        return self.sync(self.fn(*args))

    def counters(self) -> dict[str, float]:
        s = self.cm.stats
        return {
            "region_calls": s.region_calls,
            "host_reads": s.host_reads,
            "compiles": s.compiles,
            "compile_seconds": s.compile_seconds,
            "capture_seconds": s.capture_seconds,
        }

    def host_time_probe(self, inputs: list[tuple], rounds: int) -> dict[str, float]:
        """Wall time per call minus time inside jitted regions, in an instrumented pass.

        Each region's jitted call is wrapped and followed by block_until_ready, and timed; the rest
        of the call (host program, condition reads, argument flattening, dispatch) is host time.
        The syncs after every region make this an estimate: XLA's async dispatch normally overlaps
        some host work with region execution.
        """
        import jax

        from dycl_jax.compat import ARRAY_IMPL as ArrayImpl
        from dycl_jax.runtime.context import observe_regions

        acc = {"t": 0.0, "reads": 0, "depth": 0}

        def timed(program: str, region: str, run: Callable[[], Any]) -> Any:
            t0 = time.perf_counter()
            out = run()
            # the arrays only: an output may be UNDEFINED (a local not assigned on this path)
            jax.block_until_ready(
                [x for x in jax.tree_util.tree_leaves(out) if isinstance(x, jax.Array)]
            )
            acc["t"] += time.perf_counter() - t0
            return out

        # Device->host reads, counted where they happen: conversions of a jax array to a Python
        # or numpy value (outermost only; `.item()` may convert through `__array__`).
        def counting(meth: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(self: Any, *a: Any, **k: Any) -> Any:
                if acc["depth"] == 0:
                    acc["reads"] += 1
                acc["depth"] += 1
                try:
                    return meth(self, *a, **k)
                finally:
                    acc["depth"] -= 1

            return wrapper

        conv = ("item", "__bool__", "__int__", "__float__", "__index__", "tolist", "__array__")
        saved = {m: ArrayImpl.__dict__[m] for m in conv if m in ArrayImpl.__dict__}
        for m, f in saved.items():
            setattr(ArrayImpl, m, counting(f))
        try:
            total = 0.0
            n = 0
            with observe_regions(timed):
                for _ in range(rounds):
                    for args in inputs:
                        t0 = time.perf_counter()
                        self.call(args)
                        total += time.perf_counter() - t0
                        n += 1
        finally:
            for m, f in saved.items():
                setattr(ArrayImpl, m, f)
        region = acc["t"] / n
        wall = total / n
        return {
            "probe_wall_ms": wall * 1e3,
            "region_ms_per_call": region * 1e3,
            "host_ms_per_call": max(wall - region, 0.0) * 1e3,
            "host_frac": max(wall - region, 0.0) / wall if wall > 0 else 0.0,
            "device_reads_per_call": acc["reads"] / n,
        }

    def region_overhead_probe(self, inputs: list[tuple], reps: int = 50) -> dict[str, float]:
        """Per region call: the bare jitted call with the same arguments (the compiled entry's
        executable on its leaves) against the region call the host program makes (signature,
        cache lookup, guards, the call, rebuilding the outputs). Region calls are recorded on one
        pass over ``inputs`` and each is replayed ``reps`` times both ways (regions are pure)."""
        from dycl_jax.runtime import runner as rt

        seen: list[tuple[Any, tuple[Any, ...], Any, list[Any]]] = []
        orig_call, orig_run = rt.RegionRunner.__call__, rt.RegionRunner._run
        current: list[Any] = []

        def call(r: Any, *values: Any) -> Any:
            # the values as the call found them: the region, or the host after it, may append
            # to a list among them (``feats.append(h)``), which would change the signature
            current.append((r, _containers_copied(values)))
            try:
                return orig_call(r, *values)
            finally:
                current.pop()

        def run(r: Any, entry: Any, leaves: list[Any], rec: Any, values: tuple[Any, ...]) -> Any:
            if current and current[-1][0] is r and entry.jitted is not None:
                seen.append((r, current[-1][1], entry, list(leaves)))
            return orig_run(r, entry, leaves, rec, values)

        rt.RegionRunner.__call__, rt.RegionRunner._run = call, run  # type: ignore[method-assign]
        try:
            for args in inputs:
                self.call(args)
        finally:
            rt.RegionRunner.__call__, rt.RegionRunner._run = orig_call, orig_run  # type: ignore[method-assign]
        if not seen:
            return {}
        import jax

        bare = region = 0.0
        skipped = 0
        with jax.enable_x64(True):  # as ConvertedModel.__call__ runs regions
            for r, values, entry, leaves in seen:
                # each replay on its own copy of the containers (made before timing); one whose
                # signature still differs (module state changed since) is left out and counted
                copies = [_containers_copied(values) for _ in range(reps + 1)]
                compiles = r.compiles
                r(*copies.pop())
                if r.compiles != compiles:
                    skipped += 1
                    continue
                if entry.frozen is not None:  # what a plain call runs (see _Entry.run)
                    bare += _per_call(entry.frozen, leaves, reps)
                else:
                    bare += _per_call(entry.jitted, [*entry.params, *leaves], reps)
                t0 = time.perf_counter()
                for c in copies:  # (the reps left after the warm-up call)
                    r(*c)
                region += (time.perf_counter() - t0) / reps
        n = len(seen) - skipped
        if n == 0:
            return {"region_calls_not_replayed": float(skipped)}
        return {
            "bare_jit_us": bare / n * 1e6,
            "region_call_us": region / n * 1e6,
            "region_overhead": region / bare if bare > 0 else 0.0,
            "region_calls_not_replayed": float(skipped),
        }


def _containers_copied(v: Any) -> Any:
    """``v`` with its lists, dicts and tuples copied (recursively); leaves shared."""
    if type(v) is list:
        return [_containers_copied(x) for x in v]
    if type(v) is tuple:
        return tuple(_containers_copied(x) for x in v)
    if type(v) is dict:
        return {k: _containers_copied(x) for k, x in v.items()}
    return v


def _per_call(fn: Callable[..., Any], args: Any, reps: int) -> float:
    """Seconds per ``fn(*args)``, after one warm-up call."""
    fn(*args)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(*args)
    return (time.perf_counter() - t0) / reps


SYSTEM_CLASSES: dict[str, type[_System]] = {
    c.name: c for c in (Eager, TorchCompile, TorchScript, DyclJax)
}


# ---- measurement ---------------------------------------------------------------------------------


def _reference(model: torch.nn.Module, inputs: list[tuple]) -> list[Any]:
    with torch.no_grad():
        return [model(*a) for a in inputs]


def _percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run_system(
    model: torch.nn.Module,
    inputs_by_batch: dict[int, list[tuple]],
    system: str,
    cfg: Config,
    emit: Callable[[dict[str, Any]], None] = lambda state: None,
) -> dict[str, Any]:
    """Measure ``system`` on ``model``; returns {"prepare": {...}, "batches": {batch: {...}}}.

    ``emit(state)`` is called after every phase with the partial state, so a worker killed at its
    time budget still leaves what it measured.
    """
    state: dict[str, Any] = {
        "system": system,
        "prepare": {},
        "batches": {},
        "rss_base_mb": rss_mb(),
    }
    refs = {b: _reference(model, ins) for b, ins in inputs_by_batch.items()}
    sysobj = SYSTEM_CLASSES[system](model)
    prep = state["prepare"]
    prep["phase"] = "prepare"
    emit(state)
    t0 = time.perf_counter()
    try:
        sysobj.prepare()
    except Exception as e:  # a compiler's failure is a result
        prep.update(ok=False, error=first_line(e), convert_s=time.perf_counter() - t0)
        prep["trace"] = traceback.format_exc(limit=-3)
        state["peak_rss_mb"] = peak_rss_mb()
        emit(state)
        return state
    prep.update(ok=True, error=None, convert_s=time.perf_counter() - t0, phase="done")
    emit(state)

    for batch, inputs in inputs_by_batch.items():
        row: dict[str, Any] = {"phase": "first_call", "n_inputs": len(inputs)}
        state["batches"][batch] = row
        emit(state)
        try:
            _measure_batch(sysobj, inputs, refs[batch], cfg, row, lambda: emit(state))
            row["phase"] = "done"
        except Exception as e:
            row.update(ok=False, error=first_line(e), trace=traceback.format_exc(limit=-3))
        state["peak_rss_mb"] = peak_rss_mb()
        state["rss_end_mb"] = rss_mb()
        emit(state)
    return state


def _measure_batch(
    sysobj: _System,
    inputs: list[tuple],
    refs: list[Any],
    cfg: Config,
    row: dict[str, Any],
    emit: Callable[[], None],
) -> None:
    c0 = sysobj.counters()
    # First call: for the compilers this includes compiling the first input's path.
    t0 = time.perf_counter()
    out = sysobj.call(inputs[0])
    row["first_call_s"] = time.perf_counter() - t0
    outs = [out]
    row["phase"] = "warmup"
    emit()
    # Warm-up: every input once (other paths compile here); the outputs are the correctness check.
    t0 = time.perf_counter()
    for args in inputs[1:]:
        outs.append(sysobj.call(args))
    row["warmup_s"] = time.perf_counter() - t0
    bad = [
        (i, m)
        for i, (o, r) in enumerate(zip(outs, refs))
        if (m := mismatch(o, r, cfg.rtol, cfg.atol))
    ]
    row["n_correct"] = len(inputs) - len(bad)
    row["correct"] = not bad
    row["mismatch"] = f"input {bad[0][0]}: {bad[0][1]}" if bad else None
    c1 = sysobj.counters()
    if c1:
        row["compiles"] = c1["compiles"] - c0["compiles"]
        row["compile_s"] = c1["compile_seconds"] - c0["compile_seconds"]
        row["capture_s"] = c1["capture_seconds"] - c0["capture_seconds"]
    row["phase"] = "timed"
    emit()
    # Steady state: round-robin over the inputs (mixing paths), one timing per call.
    times: list[float] = []
    start = time.perf_counter()
    i = 0
    while len(times) < cfg.max_calls and (
        len(times) < cfg.min_calls or time.perf_counter() - start < cfg.time_budget_s
    ):
        args = inputs[i % len(inputs)]
        t0 = time.perf_counter()
        sysobj.call(args)
        times.append(time.perf_counter() - t0)
        i += 1
    c2 = sysobj.counters()
    row["n_timed"] = len(times)
    row["median_ms"] = statistics.median(times) * 1e3
    row["p90_ms"] = _percentile(times, 0.9) * 1e3
    row["mean_ms"] = statistics.fmean(times) * 1e3
    if c2:
        row["host_reads_per_call"] = (c2["host_reads"] - c1["host_reads"]) / len(times)
        row["regions_per_call"] = (c2["region_calls"] - c1["region_calls"]) / len(times)
        row["recompiles_in_timed"] = c2["compiles"] - c1["compiles"]
    if isinstance(sysobj, DyclJax) and cfg.host_probe_rounds > 0:
        row.update(sysobj.host_time_probe(inputs, cfg.host_probe_rounds))
        row.update(sysobj.region_overhead_probe(inputs))
    row["ok"] = True
    row["error"] = None
