"""Differential fuzzing campaign: random dynamic modules, eager PyTorch vs dycl_jax.

    python -m tests.fuzz.campaign --programs 500 --seed 0

Each program (tests/fuzz/generator.py) runs eagerly and through ``dycl_jax.convert`` on several
inputs at different scales/shifts (so branches go both ways); outputs are compared with
``dycl_jax.testing.difference`` plus an exact type check of every container (a dict subclass
such as ``ModelOutput`` must come back as itself), and the distinct paths are counted with
``cm.record()``. The records the program logs to ``dycl_fuzz`` and the ``fuzz...`` warnings it
issues must match eager's too (numbers in them within the tolerance). Then ``mutate(model, step)``
(the program's own) changes module attributes and edits weights in place, and the first two
inputs are compared again after each step: the converted model must follow.

Outcomes:

* ``mismatch``: outputs differ (structure, dtype or values beyond rtol 1e-4 / atol 1e-5; the
  slack over the suite's 1e-5 covers float32 reductions reassociated by XLA across chains of up to
  ~30 ops; rtol/atol 1e-2 for float16 programs), or the logged messages differ.
* ``crash``: a non-dycl_jax exception from ``convert`` or from the converted model.
* ``refusal``: a ``DyclError`` on a program that only uses supported constructs (unexpected).
  Programs generated with ``--unsupported`` that are refused count as ``expected refusal``, and
  so does an ``UnsupportedConstructError`` "in-place write to 'a', which may share memory with
  'b'" on a program the generator marked ``ALIASED`` (and only there).

Every failure is shrunk (greedy deletion over the generator's IR while the same failure persists)
and saved to ``tests/fuzz/regressions/`` as a standalone module (``--no-save`` to skip). The final
line is ``fuzz: <programs> programs, <paths> paths, <mismatches> mismatches, <crashes> crashes``
(crashes there include unexpected refusals); the exit code is 1 if anything failed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import dataclasses
import hashlib
import importlib.util
import itertools
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import dycl_jax
from dycl_jax.errors import UnsupportedConstructError
from dycl_jax.runtime import io
from dycl_jax.testing import difference, path_of
from tests.fuzz import generator as gen

RTOL = 1e-4
ATOL = 1e-5
HALF_RTOL = 1e-2  # float16 programs
HALF_ATOL = 1e-2
MUTATION_INPUTS = 2  # inputs compared again after each mutate(model, step)
ALIAS_REFUSAL = "which may share memory with"
REGRESSIONS = Path(__file__).parent / "regressions"

_TMP = Path(tempfile.mkdtemp(prefix="dycl_fuzz_"))
_counter = itertools.count()


@dataclasses.dataclass
class Outcome:
    # ok | mismatch | crash | refusal | expected_refusal | invalid | ill_conditioned
    kind: str
    paths: int = 0
    message: str = ""
    error_type: str = ""

    @property
    def failed(self) -> bool:
        return self.kind in ("mismatch", "crash", "refusal")

    def signature(self) -> tuple[str, str]:
        """What the shrinker must preserve: the kind, and for exceptions their type."""
        return (self.kind, self.error_type)


def load_module(source: str, stem: str = "prog") -> Any:
    """Write ``source`` to a fresh file (dycl_jax reads source through inspect) and import it."""
    name = f"_dycl_fuzz_{stem}_{next(_counter)}"
    path = _TMP / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_file(path: Path) -> Any:
    """Import a program file in place (errors then name the real file:line)."""
    name = f"_dycl_fuzz_{path.stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _type_difference(got: Any, expected: Any, path: str = "out") -> str | None:
    """Containers must come back as their own type (``difference`` accepts any dict for a dict
    subclass); recurse into tuples, lists, dicts and dataclasses."""
    if isinstance(expected, torch.Tensor):
        return None
    if isinstance(expected, tuple | list | dict) or (
        dataclasses.is_dataclass(expected) and not isinstance(expected, type)
    ):
        if type(got) is not type(expected):
            return f"{path}: {type(got).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        for k in expected:
            if k in got:
                d = _type_difference(got[k], expected[k], f"{path}[{k!r}]")
                if d:
                    return d
    elif isinstance(expected, tuple | list):
        for i, (g, e) in enumerate(zip(got, expected)):
            d = _type_difference(g, e, f"{path}[{i}]")
            if d:
                return d
    elif dataclasses.is_dataclass(expected) and not isinstance(expected, type):
        for f in dataclasses.fields(expected):
            d = _type_difference(
                getattr(got, f.name), getattr(expected, f.name), f"{path}.{f.name}"
            )
            if d:
                return d
    return None


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _messages() -> Any:
    """The program's log records (logger ``dycl_fuzz``) and ``fuzz...`` warnings, in order."""
    logger = logging.getLogger("dycl_fuzz")
    handler = _Records()
    old = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    out: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old[0])
        logger.propagate = old[1]
    out += handler.messages
    out += [str(w.message) for w in caught if str(w.message).startswith("fuzz")]


_NUMBER = re.compile(r"-?\d+\.\d+")


def _message_difference(got: list[str], want: list[str], rtol: float, atol: float) -> str | None:
    if len(got) != len(want):
        return f"messages: {len(got)} logged != {len(want)} eager: {got[:4]} vs {want[:4]}"
    for g, w in zip(got, want):
        gn, wn = _NUMBER.findall(g), _NUMBER.findall(w)
        same = _NUMBER.sub("#", g) == _NUMBER.sub("#", w) and len(gn) == len(wn)
        if not same or any(
            abs(float(a) - float(b)) > 2e-4 + atol + rtol * abs(float(b)) for a, b in zip(gn, wn)
        ):
            return f"message {g!r} != eager {w!r}"
    return None


def _clone(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def _eager(model: Any, args: tuple[Any, ...]) -> tuple[Any, list[str]]:
    with torch.no_grad(), _messages() as msgs:
        out = model(*_clone(args))
    return out, msgs


ILL_CONDITIONED_EPS = (1e-6, -1e-6)


def _ill_conditioned(
    model: Any, args: tuple[Any, ...], expected: Any, rtol: float, atol: float
) -> bool:
    """True when eager PyTorch itself leaves the tolerance for inputs scaled by 1 +- 1e-6 (or
    each element by its own 1 + 1e-6 * N(0, 1)), with a few ulps of noise on every op, or in
    float64: the program decides a branch on a near-tie (a mean centred on its threshold, equal rows in an
    argmax), where XLA's and PyTorch's float rounding legitimately pick different sides. Such a
    difference is not a dycl_jax defect; the campaign reports these apart."""
    start = model
    noise = torch.Generator().manual_seed(0)

    def scaled(eps: float) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda a: a * (1 + eps)

    def jittered(a: torch.Tensor) -> torch.Tensor:
        r = torch.randn(a.shape, generator=noise, dtype=torch.float32).to(a.dtype)
        return a * (1 + ILL_CONDITIONED_EPS[0] * r)

    def unchanged(a: torch.Tensor) -> torch.Tensor:
        return a

    # Inputs scaled as a whole, then each element on its own (a scale keeps two saturated rows
    # tied in the same order; per-element noise shows whether rounding alone picks the argmax
    # row); then eager with every op's float result off by a few ulps (another rounding, as
    # XLA's fusions give): a branch on a difference of an ulp moves.
    runs: list[tuple[Callable[[torch.Tensor], torch.Tensor], int | None]] = [
        *((scaled(eps), None) for eps in ILL_CONDITIONED_EPS),
        (jittered, None),
        (jittered, None),
        (unchanged, 1),
        (unchanged, 2),
    ]
    for perturb, rounding_seed in runs:
        inputs = tuple(
            perturb(a) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args
        )
        noisy = (
            _RoundingNoise(rounding_seed) if rounding_seed is not None else contextlib.nullcontext()
        )
        try:
            with noisy:
                got, _ = _eager(copy.deepcopy(start), inputs)  # from the state the call found
        except Exception:
            return False
        if _type_difference(got, expected) or difference(
            _to_jax(got), expected, rtol=rtol * 10, atol=atol * 10
        ):
            return True
    # The same program in float64: if eager's float32 result is not what the math gives, its
    # branches were decided by rounding (a mean centred on 0 compared with 0.0).
    try:
        wide = copy.deepcopy(start).double()
        got, _ = _eager(
            wide,
            tuple(
                a.double() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                for a in args
            ),
        )
    except Exception:
        return False
    narrow = _to_jax(got)
    return (
        difference(_cast_floats(narrow, expected), expected, rtol=rtol * 10, atol=atol * 10)
        is not None
    )


class _RoundingNoise(TorchDispatchMode):
    """Every floating-point op's result (not views or in-place results) times 1 + 2**-21 * N(0, 1):
    rounding that differs from eager's by a few ulps."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.gen = torch.Generator().manual_seed(seed)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if any(r.alias_info is not None for r in func._schema.returns):
            return out
        if isinstance(out, torch.Tensor) and out.is_floating_point() and out.numel():
            r = torch.randn(out.shape, generator=self.gen, dtype=torch.float32)
            out = out * (1 + 2.0**-21 * r).to(out.dtype)
        return out


def _cast_floats(value: Any, like: Any) -> Any:
    """float64 leaves of ``value`` cast to the dtype of the matching tensor in ``like``."""
    flat_like: list[Any] = []
    io.map_structure(lambda v: flat_like.append(v), like)
    it = iter(flat_like)

    def cast(v: Any) -> Any:
        ref = next(it, None)
        if isinstance(ref, torch.Tensor) and hasattr(v, "astype"):
            return jnp.asarray(v).astype(str(ref.dtype).removeprefix("torch."))
        return v

    return io.map_structure(cast, value)


def _to_jax(value: Any) -> Any:
    return io.outputs(io.from_torch(value))


def check_module(mod: Any, unsupported: bool = False) -> Outcome:
    """Run a loaded program module eagerly and converted; classify the result."""
    aliased = getattr(mod, "ALIASED", False)
    rtol, atol = (HALF_RTOL, HALF_ATOL) if getattr(mod, "HALF", False) else (RTOL, ATOL)
    steps = getattr(mod, "MUTATION_STEPS", 0)
    try:
        model = mod.make_model()
        # converted: a twin with the same weights, so state forward keeps on the module (lists,
        # counters) goes through the same sequence of calls on both sides
        twin = copy.deepcopy(model)
        inputs = mod.make_inputs()
        # the model as each call found it (state included), for the ill-conditioning check
        before: list[Any] = []
        expected = []
        for args in inputs:
            before.append(copy.deepcopy(model))
            expected.append(_eager(model, args))
    except Exception as e:  # the generator produced a program PyTorch itself rejects
        return Outcome(
            "invalid", message=f"eager: {type(e).__name__}: {e}", error_type=type(e).__name__
        )
    paths = set()
    try:
        cm = dycl_jax.convert(twin)
        # (step, input index): the inputs, then the first few again after each mutate(model, step)
        calls = [(0, i) for i in range(len(inputs))]
        calls += [
            (k, i) for k in range(1, steps + 1) for i in range(min(MUTATION_INPUTS, len(inputs)))
        ]
        for step, i in calls:
            if step and i == 0:
                mod.mutate(model, step)
                mod.mutate(twin, step)
            if step:
                start = copy.deepcopy(model)
                try:
                    exp, exp_msgs = _eager(model, inputs[i])
                except Exception as e:
                    return Outcome("invalid", len(paths), f"eager after mutate({step}): {e}")
            else:
                exp, exp_msgs = expected[i]
                start = before[i]
            with cm.record() as events, _messages() as msgs:
                got = cm(*_clone(inputs[i]))
            where = f"input {i}" + (f" after mutate(model, {step})" if step else "")
            d = (
                _type_difference(got, exp)
                or difference(got, exp, rtol=rtol, atol=atol)
                or _message_difference(msgs, exp_msgs, rtol, atol)
            )
            if d is not None:
                if _ill_conditioned(start, inputs[i], exp, rtol, atol):
                    return Outcome("ill_conditioned", len(paths), f"{where}: {d}"[:2000])
                return Outcome("mismatch", len(paths), f"{where}: {d}"[:2000], "AssertionError")
            paths.add(path_of(events))
    except dycl_jax.DyclError as e:
        if unsupported or (
            aliased and isinstance(e, UnsupportedConstructError) and ALIAS_REFUSAL in str(e)
        ):
            kind = "expected_refusal"
        else:
            kind = "refusal"
        return Outcome(kind, len(paths), str(e)[:2000], type(e).__name__)
    except Exception as e:
        tb = traceback.format_exc(limit=-6)
        return Outcome(
            "crash", len(paths), f"{type(e).__name__}: {e}\n{tb}"[:4000], type(e).__name__
        )
    return Outcome("ok", len(paths))


def run_program(prog: gen.Program) -> Outcome:
    mod = load_module(gen.render(prog), f"s{prog.seed}")
    try:
        return check_module(mod, prog.unsupported)
    finally:
        sys.modules.pop(mod.__name__, None)


# ------------------------------------------------------------------------------------------------
# shrinking


def _blocks_of(prog: gen.Program) -> list[list[gen.Node]]:
    """Every statement list of the program (forward bodies, helper bodies, nested blocks)."""
    out: list[list[gen.Node]] = []

    def visit(block: list[gen.Node]) -> None:
        out.append(block)
        for n in block:
            for b in n.blocks:
                visit(b)

    for cls in prog.classes.values():
        visit(cls.body)
        for body in cls.helpers.values():
            visit(body)
    return out


def _candidates(prog: gen.Program) -> list[gen.Program]:
    """One-step simplifications: delete a statement, hoist an if's branch, drop elif/else, trim."""
    cands: list[gen.Program] = []
    n_blocks = len(_blocks_of(prog))
    for bi in range(n_blocks):
        size = len(_blocks_of(prog)[bi])
        for si in range(size):
            # delete
            p = prog.copy()
            del _blocks_of(p)[bi][si]
            cands.append(p)
            node = _blocks_of(prog)[bi][si]
            if node.kind == "if":
                for j in range(len(node.blocks)):  # replace the if by one of its branches
                    p = prog.copy()
                    blk = _blocks_of(p)[bi]
                    blk[si : si + 1] = blk[si].blocks[j]
                    cands.append(p)
                if len(node.args["conds"]) > 1 or node.args["else"]:  # drop the last arm
                    p = prog.copy()
                    n = _blocks_of(p)[bi][si]
                    n.blocks.pop()
                    if n.args["else"]:
                        n.args["else"] = False
                    else:
                        n.args["conds"].pop()
                    cands.append(p)
            jumps = (
                any(n.kind == "jump" for n in gen.walk(node.blocks[0])) if node.blocks else False
            )
            if node.kind == "no_grad" or (node.kind in ("for_range", "while") and not jumps):
                # the body without the loop (not when a break/continue in it would be left
                # outside any loop)
                p = prog.copy()
                blk = _blocks_of(p)[bi]
                blk[si : si + 1] = blk[si].blocks[0]
                cands.append(p)
            if node.kind in ("for_range", "while") and node.args["k"] > 1:
                p = prog.copy()
                _blocks_of(p)[bi][si].args["k"] = 1
                cands.append(p)
            if node.kind in ("alias", "fresh", "listmut") and node.args.get("cond") is not None:
                if node.kind != "alias" or node.args["form"] != "loop":
                    p = prog.copy()  # the write without its guard
                    _blocks_of(p)[bi][si].args["cond"] = None
                    cands.append(p)
    if len(prog.inputs) > 1:
        for i in range(len(prog.inputs)):
            p = prog.copy()
            del p.inputs[i]
            cands.append(p)
    if prog.out_kind != "tensor":
        p = prog.copy()
        p.out_kind = "tensor"
        cands.append(p)
    for field, simpler in (("steps", 0), ("edit", None), ("half", False)):
        if getattr(prog, field) != simpler:
            p = prog.copy()
            setattr(p, field, simpler)
            cands.append(p)
    return cands


def shrink(
    prog: gen.Program, outcome: Outcome, budget_s: float = 120.0, log: Any = print
) -> tuple[gen.Program, Outcome]:
    """Greedy: take the first one-step simplification that keeps the same failure; repeat."""
    want = outcome.signature()
    t0 = time.perf_counter()
    best, best_out = prog, outcome
    tried: set[str] = set()
    progress = True
    while progress and time.perf_counter() - t0 < budget_s:
        progress = False
        for cand in _candidates(best):
            if time.perf_counter() - t0 > budget_s:
                break
            src = gen.render(cand)
            key = hashlib.sha1(src.encode()).hexdigest()
            if key in tried:
                continue
            tried.add(key)
            out = run_program(cand)
            if out.signature() == want:
                best, best_out = cand, out
                progress = True
                break
    log(
        f"  shrunk to {gen.count_stmts(best)} statements ({len(tried)} tries, {time.perf_counter() - t0:.0f} s)"
    )
    return best, best_out


def failure_key(outcome: Outcome) -> tuple[str, str, str] | None:
    """Refusals and crashes with the same message (file, line, names and numbers aside) are one
    failure: shrunk and saved once per campaign. Mismatches are never merged."""
    if outcome.kind == "mismatch" or not outcome.message:
        return None
    first = outcome.message.strip().splitlines()[0]
    first = re.sub(r"^\S+\.py:\d+: ", "", first)
    first = re.sub(r"'[^']*'", "'_'", first)
    return (outcome.kind, outcome.error_type, re.sub(r"\d+", "#", first))


def save_regression(prog: gen.Program, outcome: Outcome, origin: str) -> Path:
    REGRESSIONS.mkdir(exist_ok=True)
    body = gen.render(prog)
    digest = hashlib.sha1(body.encode()).hexdigest()[:8]
    path = REGRESSIONS / f"{outcome.kind}_{digest}.py"
    first = outcome.message.strip().splitlines()[0] if outcome.message.strip() else ""
    msg = "\n".join("#   " + line for line in outcome.message.strip().splitlines()[:12])
    header = (
        f"# dycl_jax fuzz regression: {outcome.kind} ({outcome.error_type})\n"
        f"# found by {origin}; minimized by tests/fuzz/campaign.py\n"
        f"# failure:\n{msg}\n"
        "# tests/fuzz/test_regressions.py converts make_model() and checks parity on make_inputs().\n"
        "# ruff: noqa\n"
        f"XFAIL = {f'{outcome.kind}: {first}'[:300]!r}  # set to None once dycl_jax is fixed\n"
    )
    path.write_text(gen.render(prog, header))
    with contextlib.suppress(Exception):  # keep `ruff format tests/fuzz` clean where ruff is
        subprocess.run(
            [sys.executable, "-m", "ruff", "format", "-q", str(path)], check=False, timeout=60
        )
    return path


# ------------------------------------------------------------------------------------------------
# campaign

PROFILES = {
    "default": gen.Knobs(),
    # CI: smaller programs, 4 inputs of one batch size; about 1 s a program on a 2-core CPU
    "ci": gen.Knobs(max_depth=2, max_stmts=5, n_inputs=4, batches=(2,)),
}


def use_jax_cache(path: str) -> None:
    """Share XLA executables between programs: regions with the same HLO (weights are inputs, so
    e.g. ``relu(linear(x))`` recurs across programs) compile once. Process-global, so only the
    campaign's own process calls this."""
    import jax

    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@dataclasses.dataclass
class Summary:
    programs: int = 0
    paths: int = 0
    mismatches: int = 0
    crashes: int = 0
    refusals: int = 0
    expected_refusals: int = 0
    invalid: int = 0
    ill_conditioned: int = 0  # mismatches where eager itself is not stable under 1e-6 input noise
    duplicates: int = 0  # refusals/crashes with the message of one already reported
    saved: list[Path] = dataclasses.field(default_factory=list)
    constructs: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    @property
    def failures(self) -> int:
        return self.mismatches + self.crashes + self.refusals

    def line(self) -> str:
        return (
            f"fuzz: {self.programs} programs, {self.paths} paths, {self.mismatches} mismatches, "
            f"{self.crashes + self.refusals} crashes"
        )


def campaign(
    programs: int,
    seed: int,
    knobs: gen.Knobs | None = None,
    do_shrink: bool = True,
    save: bool = True,
    verbose: bool = True,
    shrink_budget_s: float = 120.0,
) -> Summary:
    log = print if verbose else (lambda *a, **k: None)
    s = Summary()
    seen: dict[tuple[str, str, str], str] = {}  # failure_key -> where it was first reported
    t0 = time.perf_counter()
    for i in range(programs):
        pseed = seed * 1_000_003 + i
        prog = gen.generate(pseed, knobs)
        s.constructs.update(gen.constructs(prog))
        out = run_program(prog)
        s.programs += 1
        s.paths += out.paths
        if out.kind == "invalid":
            s.invalid += 1
            log(f"[{i}] seed {pseed}: generator produced an invalid program: {out.message}")
        elif out.kind == "ill_conditioned":
            s.ill_conditioned += 1
            log(
                f"[{i}] seed {pseed}: ill-conditioned (eager itself moves under 1e-6): {out.message}"
            )
        elif out.kind == "expected_refusal":
            s.expected_refusals += 1
        elif out.failed:
            if out.kind == "mismatch":
                s.mismatches += 1
            elif out.kind == "crash":
                s.crashes += 1
            else:
                s.refusals += 1
            log(
                f"[{i}] seed {pseed}: {out.kind}: {out.message.splitlines()[0] if out.message else ''}"
            )
            key = failure_key(out)
            if key is not None and key in seen:
                s.duplicates += 1
                log(f"  same failure as {seen[key]}: not shrunk or saved again")
                continue
            if do_shrink:
                small, small_out = shrink(prog, out, shrink_budget_s, log)
            else:
                small, small_out = prog, out
            if save:
                p = save_regression(
                    small,
                    small_out,
                    f"campaign --seed {seed}, program {i} (generator seed {pseed})",
                )
                s.saved.append(p)
                log(f"  saved {p}")
            if key is not None:
                seen[key] = f"program {i}" if not save else str(s.saved[-1].name)
        if verbose and (i + 1) % 25 == 0:
            log(
                f"... {i + 1} programs, {s.paths} paths, {s.failures} failures, {time.perf_counter() - t0:.0f} s"
            )
    log(
        "constructs (programs using each): "
        + ", ".join(f"{k} {v}" for k, v in sorted(s.constructs.items()))
    )
    log(
        f"outcomes: {s.mismatches} mismatches, {s.crashes} crashes, {s.refusals} unexpected refusals, "
        f"{s.expected_refusals} expected refusals, {s.invalid} invalid programs, "
        f"{s.ill_conditioned} ill-conditioned (near-ties in eager itself), "
        f"{s.duplicates} repeats of a refusal/crash already reported, "
        f"{time.perf_counter() - t0:.0f} s"
    )
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--unsupported", action="store_true", help="also generate refused constructs")
    ap.add_argument("--shrink-budget", type=float, default=120.0, help="seconds per failure")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="default")
    ap.add_argument(
        "--jax-cache",
        default=str(_TMP / "xla_cache"),
        help="XLA compilation cache dir (default: a fresh temp dir; 'none' to disable)",
    )
    args = ap.parse_args(argv)
    if args.jax_cache != "none":
        use_jax_cache(args.jax_cache)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("DYCL_DEBUG", "0")
    knobs = dataclasses.replace(PROFILES[args.profile], unsupported=args.unsupported)
    s = campaign(
        args.programs,
        args.seed,
        knobs,
        do_shrink=not args.no_shrink,
        save=not args.no_save,
        shrink_budget_s=args.shrink_budget,
    )
    print(s.line(), flush=True)
    return 1 if s.failures else 0


if __name__ == "__main__":
    sys.exit(main())
