"""Markdown table, JSON and speedup chart from the result rows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SYSTEM_LABEL = {
    "eager": "eager",
    "torch_compile": "torch.compile",
    "torchscript": "jit.script",
    "dycl_jax": "dycl_jax",
}


def _ms(x: Any) -> str:
    if x is None:
        return "–"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _s(x: Any) -> str:
    return "–" if x is None else f"{x:.2f}"


def _x(x: Any) -> str:
    return "–" if x is None else f"{x:.2f}×"


def _mb(x: Any) -> str:
    return "–" if x is None else f"{x:.0f}"


def _load(x: Any) -> str:
    return "–" if not x else "/".join(f"{v:.1f}" for v in x)


def _cell_status(r: dict[str, Any]) -> str:
    if r["status"] == "ok":
        return "ok" if r["correct"] else "**wrong**"
    return {"fail": "FAIL", "timeout": "TIMEOUT", "skipped": "skip"}.get(r["status"], r["status"])


def _cell_latency(r: dict[str, Any] | None) -> str:
    if r is None:
        return "–"
    if r["status"] != "ok":
        return _cell_status(r)
    mark = "" if r["correct"] else " (wrong)"
    return f"{_ms(r['median_ms'])} / {_ms(r['p90_ms'])}{mark}"


def markdown(results: dict[str, Any]) -> str:
    env = results["env"]
    rows: list[dict[str, Any]] = results["rows"]
    args = results["args"]
    out = [
        "# dycl_jax benchmark",
        "",
        f"- machine: {env['cpu']}, {env['cores']} cores, {env['memory_gb']} GiB; {env['platform']}",
        f"- Python {env['python']}, torch {env['torch']}, jax {env['jax']}",
        f"- torch threads: {env['torch_threads']} intra-op (= cores), 1 inter-op; XLA:CPU uses its own pool over all cores",
        f"- size `{args['size_list']}`, inputs per model: {args['n_paths']} path-mixing inputs at batch 1, "
        f"{args['n_batch']} random inputs at batch 8; tolerance rtol={args['rtol']}, atol={args['atol']}",
        f"- torch.compile budget {args['compile_budget_s']} s per model (compile + warm-up + timing, both batches); "
        f"run took {results['wall_s'] / 60:.1f} min",
        f"- load average (1/5/15 min) at start {_load(results.get('loadavg_start'))}, at end "
        f"{_load(results.get('loadavg_end'))}: other processes on the machine inflate eager PyTorch's "
        "2-thread latencies most (its threads wait on each other), so rerun on an idle machine to compare",
        "",
        "Latency is median / p90 in ms per call over round-robin calls through all inputs (paths mixed), after "
        "one warm-up call per input. Speedups are eager median / system median (and torch.compile median / "
        "dycl_jax median). `wrong` = some output differs from eager; `FAIL` = compile/convert or call error; "
        "`TIMEOUT` = over budget. RSS is the worker process's peak (imports of torch+jax included).",
        "",
        "## Latency",
        "",
        "| model | batch | eager | torch.compile | jit.script | dycl_jax | dycl vs eager | dycl vs compile |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted(
        {(r["size"], r["model"], r["batch"]) for r in rows},
        key=lambda k: (k[0], results["order"].index(k[1]), k[2]),
    )
    index = {(r["size"], r["model"], r["batch"], r["system"]): r for r in rows}
    for size, model, batch in keys:

        def get(s: str, key: tuple = (size, model, batch)) -> dict[str, Any] | None:
            return index.get((*key, s))

        d = get("dycl_jax")
        name = model if len(args["size_list"]) == 1 else f"{model} ({size})"
        if all(get(s) is not None and get(s)["status"] == "skipped" for s in ("eager", "dycl_jax")):
            out.append(f"| {name} | {batch} | skip: {get('eager')['error']} | | | | | |")
            continue
        out.append(
            f"| {name} | {batch} | {_cell_latency(get('eager'))} | {_cell_latency(get('torch_compile'))} | "
            f"{_cell_latency(get('torchscript'))} | {_cell_latency(d)} | "
            f"{_x(d.get('speedup_vs_eager') if d else None)} | {_x(d.get('speedup_vs_compile') if d else None)} |"
        )
    out += [
        "",
        "## Compile cost and correctness",
        "",
        "convert = torch.jit.script / dycl_jax.convert time (torch.compile is lazy); first = first call (compiles "
        "the first input's path); warm-up = the remaining inputs once (other paths compile here). "
        "Correct = outputs match eager on every input.",
        "",
        "| model | batch | system | status | correct | convert s | first call s | warm-up s | peak RSS MB | RSS growth MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, model, batch in keys:
        for s in ("eager", "torch_compile", "torchscript", "dycl_jax"):
            r = index.get((size, model, batch, s))
            if r is None or r["status"] == "skipped":
                continue
            corr = (
                "–"
                if r["correct"] is None
                else ("yes" if r["correct"] else f"no ({r['n_correct']}/{r['n_inputs']})")
            )
            out.append(
                f"| {model} | {batch} | {SYSTEM_LABEL[s]} | {_cell_status(r)} | {corr} | {_s(r['convert_s'])} | "
                f"{_s(r['first_call_s'])} | {_s(r['warmup_s'])} | {_mb(r['peak_rss_mb'])} | {_mb(r['rss_growth_mb'])} |"
            )
    out += [
        "",
        "## dycl_jax runtime detail",
        "",
        "counter reads/call = `cm.stats.host_reads` per call (dycl_jax's own count: tensor truth tests and host-run ops); "
        "device reads/call = every device→host conversion of a jax array (`item`, `bool`, `int`, `float`, `tolist`, `__array__`; outermost only) counted in the instrumented pass, which also catches `.item()` in host code; regions/call = jitted "
        "region calls per call; compiles = region signatures compiled during warm-up (recompiles in the timed "
        "phase in brackets). Host ms = time outside jitted regions, estimated in a separate instrumented pass: "
        "each region call is wrapped, synchronised with block_until_ready and timed; host = wall − region time "
        "(an upper-bound-ish estimate, since the extra syncs remove the overlap of async dispatch). "
        "bare µs / region µs: per region call, the compiled executable called on the same arrays "
        "against the call the host program makes (signature, cache lookup, guards, the call, the "
        "outputs rebuilt), each replayed 50 times; the issue's target is a ratio within 1.5x. "
        "A region call whose replay compiles again (it writes a list it is given, "
        "`feats.append(h)`) is not replayed: the count says how many.",
        "",
        "| model | batch | median ms | counter reads/call | device reads/call | regions/call | compiles | capture s | XLA s | host ms/call | host % | bare µs / region µs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, model, batch in keys:
        r = index.get((size, model, batch, "dycl_jax"))
        if r is None or r["status"] != "ok":
            continue
        rec = r.get("recompiles_in_timed") or 0
        comp = f"{r.get('compiles')}" + (f" [{rec}]" if rec else "")
        hf = r.get("host_frac")
        out.append(
            f"| {model} | {batch} | {_ms(r['median_ms'])} | {r.get('host_reads_per_call', 0):.1f} | "
            f"{r.get('device_reads_per_call', 0):.1f} | "
            f"{r.get('regions_per_call', 0):.1f} | {comp} | {_s(r.get('capture_s'))} | {_s(r.get('compile_s'))} | "
            f"{_ms(r.get('host_ms_per_call'))} | {'–' if hf is None else f'{100 * hf:.0f}%'} | "
            f"{_overhead(r)} |"
        )
    fails = [
        r
        for r in rows
        if r["status"] in ("fail", "timeout") or (r["status"] == "ok" and not r["correct"])
    ]
    out += ["", "## Failures, timeouts and mismatches", ""]
    if not fails:
        out.append("none")
    else:
        out += ["| model | batch | system | what | error |", "|---|---|---|---|---|"]
        for r in fails:
            what = r["status"] if r["status"] != "ok" else "mismatch"
            err = (r.get("error") or r.get("mismatch") or "").replace("|", "\\|")
            out.append(
                f"| {r['model']} | {r['batch']} | {SYSTEM_LABEL[r['system']]} | {what} | `{err}` |"
            )
    return "\n".join(out) + "\n"


def _geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def chart(results: dict[str, Any], path: Path) -> None:
    """Speedup over eager per model, one panel per batch size, on a linear axis.

    A horizontal line marks 1x (eager); the last column of each panel is the geometric mean of each
    system over its correct rows (how many in brackets). Failed / timed-out runs are grey hatched
    stubs, apart from the bars; wrong-output runs keep their bar, hatched with a red edge. Models
    with nothing to show at a batch (skipped there) and systems not run are left out.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = results["rows"]
    index = {(r["model"], r["batch"], r["system"]): r for r in rows}
    batches = sorted({r["batch"] for r in rows})
    colors = {"torch_compile": "#4c72b0", "torchscript": "#dd8452", "dycl_jax": "#55a868"}
    systems = [s for s in colors if any(r["system"] == s for r in rows)]
    order = [m for m in results["order"] if any(r["model"] == m for r in rows)]

    def kind(r: dict[str, Any] | None) -> str | None:
        if r is None:
            return None
        if r["status"] in ("fail", "timeout"):
            return "failed"
        if r["status"] == "ok" and r.get("speedup_vs_eager"):
            return "ok" if r["correct"] else "wrong"
        return None  # skipped, or no eager reference to compare with

    panels = []
    for batch in batches:
        models = [
            m for m in order if any(kind(index.get((m, batch, s))) for s in systems)
        ]  # empty columns dropped
        if models:
            panels.append((batch, models))
    if not panels or not systems:
        panels = [(batches[0] if batches else 1, [])]
    n_cols = max(len(models) for _, models in panels) + 1
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(max(8, 0.75 * n_cols + 2), 3.8 * len(panels)), squeeze=False
    )
    width = 0.8 / max(len(systems), 1)
    top = max((r["speedup_vs_eager"] for r in rows if kind(r) in ("ok", "wrong")), default=1.0)
    ymax = max(1.2, 1.2 * top)
    stub = 0.06 * ymax  # height of a failure marker
    any_wrong = False
    for ax, (batch, models) in zip(axes[:, 0], panels):
        geo_x = len(models) + 0.5  # the geomean column, a little apart
        for j, s in enumerate(systems):
            offset = (j - (len(systems) - 1) / 2) * width
            ok_x, ok_y, wrong_x, wrong_y, failed_x = [], [], [], [], []
            for i, m in enumerate(models):
                r = index.get((m, batch, s))
                k = kind(r)
                if k == "ok":
                    ok_x.append(i + offset)
                    ok_y.append(r["speedup_vs_eager"])  # type: ignore[index]
                elif k == "wrong":
                    wrong_x.append(i + offset)
                    wrong_y.append(r["speedup_vs_eager"])  # type: ignore[index]
                elif k == "failed":
                    failed_x.append(i + offset)
            ax.bar(ok_x, ok_y, width, color=colors[s])
            if wrong_x:
                any_wrong = True
                ax.bar(wrong_x, wrong_y, width, color=colors[s], hatch="//", edgecolor="#c00000")
            if failed_x:
                ax.bar(
                    failed_x, [stub] * len(failed_x), width, color="#e6e6e6", hatch="xxx",
                    edgecolor="#808080", linewidth=0.5,
                )  # fmt: skip
            if ok_y:
                g = _geomean(ok_y)
                ax.bar(geo_x + offset, g, width, color=colors[s], edgecolor="black", linewidth=0.8)
                ax.annotate(
                    f"{g:.2f}× ({len(ok_y)})",
                    (geo_x + offset, g),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    rotation=90,
                    fontsize=7,
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"},
                    zorder=4,
                )
        ax.axhline(1.0, color="black", lw=0.9, ls="--", zorder=3)
        ax.axvline(len(models) - 0.25, color="#999999", lw=0.8, ls=":")
        ax.set_ylim(0, ymax * 1.12)
        ax.set_xlim(-0.6, geo_x + 0.6)
        ax.set_ylabel("speedup over eager (×)")
        ax.set_title(f"batch {batch}", fontsize=10)
        ax.set_xticks([*range(len(models)), geo_x])
        ax.set_xticklabels([*models, "geomean"], rotation=45, ha="right", fontsize=8)
        ax.get_xticklabels()[-1].set_fontweight("bold")
        ax.grid(axis="y", color="#eeeeee", zorder=0)
        ax.set_axisbelow(True)
    handles: list[Any] = [Patch(color=colors[s], label=SYSTEM_LABEL[s]) for s in systems]
    handles.append(
        Patch(facecolor="#e6e6e6", hatch="xxx", edgecolor="#808080", label="failed / timed out")
    )
    if any_wrong:
        handles.append(
            Patch(facecolor="white", hatch="//", edgecolor="#c00000", label="wrong output")
        )
    handles.append(Line2D([], [], color="black", lw=0.9, ls="--", label="1× = eager"))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(results: dict[str, Any], out_dir: Path) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = markdown(results)
    (out_dir / "results.md").write_text(md)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=_json_default))
    chart(results, out_dir / "speedup.png")
    return md


def _json_default(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    return str(x)


def _overhead(r: dict[str, Any]) -> str:
    if not r.get("bare_jit_us"):
        return "–"
    skipped = int(r.get("region_calls_not_replayed") or 0)
    note = f"; {skipped} not replayed" if skipped else ""
    return f"{r['bare_jit_us']:.1f} / {r['region_call_us']:.1f} ({r['region_overhead']:.2f}x{note})"
