"""Benchmark the zoo: PyTorch eager, torch.compile, torch.jit.script and dycl_jax.

    python -m bench.run [--models a,b] [--sizes small,paper] [--systems ...] [--quick]

Each (model, system) runs in a fresh worker process (bench/worker.py) so its peak RSS is its own
and torch.compile can be stopped at its time budget; ``--inprocess`` runs everything here
(RSS is then the process's growth). Writes bench/out/results.{md,json} and bench/out/speedup.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.env import DEFAULT_THREADS, describe, set_threads
from bench.measure import SYSTEMS, Config, run_system

OUT_DIR = Path(__file__).resolve().parent / "out"
BATCHES = (1, 8)
WORKER_TIMEOUT_S = 300.0  # a hang guard for eager / jit.script / dycl_jax workers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", default="", help="comma-separated zoo names (default: all)")
    p.add_argument("--sizes", default="small", help="comma-separated: small,paper")
    p.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)}",
    )
    p.add_argument("--batches", default="1,8")
    p.add_argument("--quick", action="store_true", help="few inputs and timed calls: a smoke run")
    p.add_argument(
        "--n-paths",
        type=int,
        default=None,
        help="path-mixing inputs at batch 1 (default 8, quick 4)",
    )
    p.add_argument(
        "--n-batch", type=int, default=None, help="random inputs at batch 8 (default 4, quick 2)"
    )
    p.add_argument(
        "--compile-budget",
        type=float,
        default=None,
        help="torch.compile seconds per model (default 30, quick 20)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="torch intra-op threads (default: cores)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--inprocess",
        action="store_true",
        help="no worker processes (no per-system RSS, no timeouts)",
    )
    p.add_argument("--out", default=str(OUT_DIR))
    a = p.parse_args(argv)
    a.n_paths = a.n_paths or (4 if a.quick else 8)
    a.n_batch = a.n_batch or (2 if a.quick else 4)
    a.compile_budget = a.compile_budget or (20.0 if a.quick else 30.0)
    return a


def config_for(a: argparse.Namespace) -> Config:
    if a.quick:
        return Config(min_calls=5, max_calls=50, time_budget_s=0.3)
    return Config()


# ---- model preparation ---------------------------------------------------------------------------


def prepare_model(
    entry: Any, size: str, a: argparse.Namespace, batches: tuple[int, ...]
) -> dict[str, Any]:
    """Build the model once, make its inputs, decide whether batch > 1 is supported."""
    import torch

    t0 = time.perf_counter()
    model = entry.build(size, seed=a.seed)
    build_s = time.perf_counter() - t0
    inputs: dict[int, list[tuple]] = {}
    skipped: dict[int, str] = {}
    for b in batches:
        if b == 1:
            inputs[1] = list(entry.inputs_for_paths(size, n=a.n_paths, seed=a.seed))
            continue
        # Batch > 1: only where the model's code supports it; checked by running eager.
        if not getattr(entry, "supports_batch", True):
            skipped[b] = "batch-1 model (zoo: supports_batch=False)"
            continue
        ins = [
            tuple(entry.example_inputs(size, batch=b, seed=a.seed + 1000 + i))
            for i in range(a.n_batch)
        ]
        try:
            with torch.no_grad():
                model(*ins[0])
        except Exception as e:
            skipped[b] = f"eager fails at batch {b}: {str(e).strip().splitlines()[0][:120]}"
            continue
        inputs[b] = ins
    return {"model": model, "inputs": inputs, "skipped": skipped, "build_s": build_s}


def _save_payload(prep: dict[str, Any], entry: Any, size: str, seed: int, path: Path) -> None:
    import torch

    try:
        torch.save({"model": prep["model"], "inputs": prep["inputs"]}, path)
    except Exception:  # unpicklable model: workers rebuild it from the seed
        torch.save(
            {"rebuild": {"name": entry.name, "size": size, "seed": seed}, "inputs": prep["inputs"]},
            path,
        )


# ---- running systems -----------------------------------------------------------------------------


def run_worker(
    payload: Path,
    system: str,
    cfg: Config,
    threads: int,
    timeout: float,
    workdir: Path,
    env: dict[str, str],
) -> tuple[dict[str, Any] | None, str | None]:
    """(state, problem): problem is 'timeout' or a crash description, state what was written."""
    job = workdir / f"job_{system}.json"
    result = workdir / f"result_{system}.json"
    if result.exists():
        result.unlink()
    job.write_text(
        json.dumps(
            {
                "payload": str(payload),
                "system": system,
                "config": cfg.__dict__,
                "threads": threads,
                "result": str(result),
            }
        )
    )
    problem = None
    log = workdir / f"log_{system}.txt"
    with open(log, "w") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(job)],
            stdout=logf,
            stderr=subprocess.STDOUT,
            cwd=str(Path(__file__).resolve().parent.parent),
            env=env,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=timeout)
            if rc != 0:
                tail = log.read_text().strip().splitlines()[-1:] or [""]
                problem = f"worker exited {rc}: {tail[0][:200]}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the worker and inductor's compile subprocesses
            proc.wait()
            problem = "timeout"
    state = json.loads(result.read_text()) if result.exists() else None
    return state, problem


def rows_for(
    entry: Any,
    size: str,
    system: str,
    prep: dict[str, Any],
    state: dict[str, Any] | None,
    problem: str | None,
    budget: float,
    inprocess: bool,
) -> list[dict[str, Any]]:
    rows = []
    state = state or {"prepare": {}, "batches": {}}
    p = state.get("prepare", {})
    peak = state.get("peak_rss_mb")
    base = state.get("rss_base_mb")
    growth = (
        (state.get("rss_end_mb", peak) - base)
        if inprocess and base is not None
        else (peak - base if peak is not None and base is not None else None)
    )
    all_batches = sorted(set(prep["inputs"]) | set(prep["skipped"]))
    for b in all_batches:
        row: dict[str, Any] = {
            "model": entry.name,
            "family": entry.family,
            "size": size,
            "batch": b,
            "system": system,
            "status": "ok",
            "error": None,
            "correct": None,
            "n_correct": None,
            "n_inputs": None,
            "convert_s": p.get("convert_s"),
            "first_call_s": None,
            "warmup_s": None,
            "median_ms": None,
            "p90_ms": None,
            "n_timed": None,
            "peak_rss_mb": None if inprocess else peak,
            "rss_growth_mb": growth,
            "speedup_vs_eager": None,
            "speedup_vs_compile": None,
        }
        rows.append(row)
        if b in prep["skipped"]:
            row.update(status="skipped", error=prep["skipped"][b])
            continue
        br = state.get("batches", {}).get(str(b)) or state.get("batches", {}).get(b)
        if p.get("ok") is False:
            row.update(status="fail", error=p.get("error"), trace=p.get("trace"))
            continue
        if br is None or br.get("phase") not in ("done",) and br.get("ok") is not False:
            phase = br.get("phase") if br else "a batch not started: budget spent on earlier ones"
            if p.get("phase") != "done" and not br:
                phase = "prepare"
            if problem == "timeout":
                row.update(status="timeout", error=f"over the {budget:.0f} s budget (in {phase})")
            else:
                row.update(status="fail", error=problem or f"did not finish ({phase})")
            if br:
                row.update(
                    {
                        k: br.get(k)
                        for k in ("first_call_s", "warmup_s", "correct", "n_correct", "n_inputs")
                        if k in br
                    }
                )
            continue
        for k, v in br.items():
            if k not in ("phase", "ok"):
                row[k] = v
        if br.get("ok") is False:
            row["status"] = "fail"
    return rows


def add_speedups(rows: list[dict[str, Any]]) -> None:
    idx = {(r["size"], r["model"], r["batch"], r["system"]): r for r in rows}
    for r in rows:
        if r["status"] != "ok" or not r.get("median_ms"):
            continue
        e = idx.get((r["size"], r["model"], r["batch"], "eager"))
        c = idx.get((r["size"], r["model"], r["batch"], "torch_compile"))
        if e and e["status"] == "ok" and e.get("median_ms"):
            r["speedup_vs_eager"] = e["median_ms"] / r["median_ms"]
        if r["system"] != "torch_compile" and c and c["status"] == "ok" and c.get("median_ms"):
            r["speedup_vs_compile"] = c["median_ms"] / r["median_ms"]


def prime_inductor(env: dict[str, str], workdir: Path) -> float:
    """Compile a tiny function once so the per-run cache has inductor's one-time setup (headers)."""
    code = (
        "import torch\nf = torch.compile(lambda x: torch.relu(x @ x) + 1)\nf(torch.randn(4, 4))\n"
    )
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=str(workdir), capture_output=True, timeout=300
    )
    return time.perf_counter() - t0


# ---- main ----------------------------------------------------------------------------------------


def run_benchmark(
    a: argparse.Namespace, progress: bool = True, models: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run the benchmark; ``models`` (name -> zoo entry) defaults to ``dycl_jax.zoo.MODELS``."""
    from tqdm import tqdm

    set_threads(a.threads)
    if models is None:
        from dycl_jax.zoo import MODELS as models
    MODELS = models

    names = [n for n in a.models.split(",") if n] or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit(f"unknown models {unknown}; choose from {sorted(MODELS)}")
    sizes = [s for s in a.sizes.split(",") if s]
    systems = [s for s in a.systems.split(",") if s]
    batches = tuple(int(b) for b in a.batches.split(",") if b)
    if "eager" not in systems:
        systems.insert(0, "eager")  # speedups need it
    cfg = config_for(a)
    t_start = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="dycl_bench_"))
    env = dict(os.environ)
    # Inductor's cache: cold per run, primed once; each torch.compile worker gets its own copy,
    # since a worker killed at its budget can leave a half-written kernel in a shared cache.
    prime_dir = workdir / "inductor_prime"
    env["TORCHINDUCTOR_CACHE_DIR"] = str(prime_dir)
    env.setdefault("TORCH_LOGS", "-dynamo")
    env["PYTHONWARNINGS"] = "ignore"
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"loadavg_start": os.getloadavg()}
    try:
        if "torch_compile" in systems and not a.inprocess:
            extra["inductor_prime_s"] = prime_inductor(env, workdir)
        bar = tqdm(
            total=len(names) * len(sizes) * len(systems),
            disable=not progress,
            unit="run",
            dynamic_ncols=True,
        )
        for size in sizes:
            for name in names:
                entry = MODELS[name]
                bar.set_postfix_str(f"{name}/{size}: build")
                prep = prepare_model(entry, size, a, batches)
                payload = workdir / f"{name}_{size}.pt"
                if not a.inprocess:
                    _save_payload(prep, entry, size, a.seed, payload)
                for system in systems:
                    bar.set_postfix_str(f"{name}/{size}: {system}")
                    budget = a.compile_budget if system == "torch_compile" else WORKER_TIMEOUT_S
                    if a.inprocess:
                        state, problem = _run_inprocess(prep, system, cfg)
                    else:
                        wenv = env
                        if system == "torch_compile":
                            cache = workdir / f"inductor_{name}_{size}"
                            if prime_dir.exists():
                                shutil.copytree(prime_dir, cache)
                            wenv = {**env, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
                        state, problem = run_worker(
                            payload, system, cfg, a.threads, budget, workdir, wenv
                        )
                        if system == "torch_compile":
                            shutil.rmtree(workdir / f"inductor_{name}_{size}", ignore_errors=True)
                    rows += rows_for(entry, size, system, prep, state, problem, budget, a.inprocess)
                    bar.update(1)
                if payload.exists():
                    payload.unlink()
        bar.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    add_speedups(rows)
    extra["loadavg_end"] = os.getloadavg()
    return {
        "env": describe(a.threads),
        "args": {
            "size_list": sizes,
            "models": names,
            "systems": systems,
            "batches": list(batches),
            "n_paths": a.n_paths,
            "n_batch": a.n_batch,
            "quick": a.quick,
            "inprocess": a.inprocess,
            "compile_budget_s": a.compile_budget,
            "rtol": cfg.rtol,
            "atol": cfg.atol,
            "config": cfg.__dict__,
        },
        "order": names,
        "rows": rows,
        "wall_s": time.perf_counter() - t_start,
        **extra,
    }


def _run_inprocess(
    prep: dict[str, Any], system: str, cfg: Config
) -> tuple[dict[str, Any], str | None]:
    import copy

    # Convert a copy: torch.compile / script / convert must not see each other's effects.
    model = copy.deepcopy(prep["model"])
    state = run_system(model, prep["inputs"], system, cfg)
    return json.loads(json.dumps(state, default=str)), None


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    results = run_benchmark(a)
    from bench.report import write

    md = write(results, Path(a.out))
    print(md)
    print(f"written: {Path(a.out) / 'results.md'}, results.json, speedup.png")


if __name__ == "__main__":
    main()
