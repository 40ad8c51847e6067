"""Split a normalized body into branch-free regions and compute their live-in / live-out sets.

A **region** is a maximal run of consecutive trace statements in one block. It becomes one
function ``_region_N(live_in...) -> tuple(live_out)`` captured as a single ATen graph per input
signature. The run is replaced in the host body by ``a, b = _region_N(x, y)``.

**Live-in**: local names a region reads before writing them (upward-exposed uses), plus names it
may leave unassigned but must pass through (a live-out assigned only under a static branch).
**Live-out**: names a region writes that may be read afterwards: later in program order, or
anywhere in an enclosing loop (the next iteration) or try statement. This over-approximates true
liveness only by uses that are dead on every path, which costs an unused output, never a wrong value.
"""

from __future__ import annotations

import ast
import copy
import dataclasses

from dycl_jax.analysis.dependence import CONTAINER_MUTATORS, Kind, Typer
from dycl_jax.analysis.source import ParsedFunction
from dycl_jax.rewrite.naming import Namer
from dycl_jax.rewrite.normalize import Normalized, SplitReason


@dataclasses.dataclass
class Region:
    """One branch-free region. ``call`` is its placeholder statement in the host body."""

    id: int
    name: str
    stmts: list[ast.stmt]
    live_in: tuple[str, ...]
    live_out: tuple[str, ...]
    host_scalars: frozenset[str]  # live-ins read back from tensors on the host (.item() etc.)
    filename: str
    first_line: int
    last_line: int
    split_reason: SplitReason | None
    call: ast.Assign | ast.Expr

    @property
    def span(self) -> str:
        return f"{self.filename}:{self.first_line}-{self.last_line}"


def _reads(node: ast.AST) -> set[str]:
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            out.add(sub.id)
        elif isinstance(sub, ast.AugAssign) and isinstance(sub.target, ast.Name):
            out.add(sub.target.id)
    return out


def _mutates_receiver(call: ast.Call) -> str | None:
    """``x.add_(1)`` / ``outs.append(y)`` on a local name: that name is (re)written."""
    f = call.func
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
        if (f.attr.endswith("_") and not f.attr.startswith("_")) or f.attr in CONTAINER_MUTATORS:
            return f.value.id
    return None


def _writes(node: ast.AST) -> set[str]:
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            out.add(sub.id)
        elif isinstance(sub, ast.Subscript | ast.Attribute) and isinstance(sub.ctx, ast.Store):
            base = sub.value
            while isinstance(base, ast.Subscript | ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name):
                out.add(base.id)  # in-place update of a local tensor / container
        elif isinstance(sub, ast.Call) and (name := _mutates_receiver(sub)) is not None:
            out.add(name)
    return out


def _definite_writes(stmts: list[ast.stmt]) -> set[str]:
    """Names assigned on every path through ``stmts`` (straight-line top level only)."""
    out: set[str] = set()
    for s in stmts:
        if isinstance(s, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = s.targets if isinstance(s, ast.Assign) else [s.target]
            for t in targets:
                out |= {
                    n.id
                    for n in ast.walk(t)
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
                }
        elif isinstance(s, ast.If):
            out |= _definite_writes(s.body) & _definite_writes(s.orelse)
        elif isinstance(s, ast.With):
            out |= _definite_writes(s.body)
    return out


def _upward_exposed(stmts: list[ast.stmt]) -> list[str]:
    defined: set[str] = set()
    exposed: list[str] = []
    for s in stmts:
        for name in sorted(_reads(s)):
            if name not in defined and name not in exposed:
                exposed.append(name)
        defined |= _definite_writes([s])
    return exposed


def _movable(s: ast.stmt) -> bool:
    """A host statement that only rebinds local names from Python values (no calls, no effects)."""
    if not isinstance(s, ast.Assign | ast.AugAssign):
        return False
    targets = s.targets if isinstance(s, ast.Assign) else [s.target]
    if not all(isinstance(t, ast.Name) for t in targets):
        return False
    return not any(
        isinstance(n, ast.Call | ast.Attribute | ast.Subscript | ast.Await | ast.NamedExpr)
        for n in ast.walk(s.value)
    )


def _independent(moved: list[ast.stmt], *others: ast.stmt) -> bool:
    """True when ``moved`` can be reordered past ``others`` (no shared name is written)."""
    m_reads = set().union(*(_reads(s) for s in moved))
    m_writes = set().union(*(_writes(s) for s in moved))
    o_reads = set().union(*(_reads(s) for s in others))
    o_writes = set().union(*(_writes(s) for s in others))
    return not (m_writes & (o_reads | o_writes) or m_reads & o_writes)


class _Splitter:
    def __init__(
        self, parsed: ParsedFunction, typer: Typer, norm: Normalized, namer: Namer
    ) -> None:
        self.parsed = parsed
        self.typer = typer
        self.norm = norm
        self.namer = namer
        self.regions: list[Region] = []

    def block(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        run: list[ast.stmt] = []
        # Pure Python bookkeeping (`n += 1`) between two runs of trace statements is moved after
        # the second run when nothing in it depends on them, so the runs form one region.
        deferred: list[ast.stmt] = []
        for s in stmts:
            if id(s) in self.norm.trace_ids:
                if deferred and not _independent(deferred, s):
                    out.append(self._make_region(run, None))
                    out.extend(deferred)
                    run, deferred = [], []
                run.append(s)
                continue
            if run and _movable(s):
                # Checked against the trace statements it will move past, as they come.
                deferred.append(s)
                continue
            if run:
                out.append(self._make_region(run, self.norm.stmt_reasons.get(id(s))))
                run = []
            out.extend(deferred)
            deferred = []
            for field in ("body", "orelse", "finalbody"):
                if isinstance(getattr(s, field, None), list) and getattr(s, field):
                    setattr(s, field, self.block(getattr(s, field)))
            if isinstance(s, ast.Try):
                for h in s.handlers:
                    h.body = self.block(h.body)
            out.append(s)
        if run:
            out.append(self._make_region(run, None))
        out.extend(deferred)
        return out

    def _make_region(self, stmts: list[ast.stmt], reason: SplitReason | None) -> ast.stmt:
        rid = len(self.regions)
        name = self.namer.fresh("_region")
        call = ast.Assign(
            [ast.Tuple([], ast.Store())], ast.Call(ast.Name(name, ast.Load()), [], [])
        )
        ast.copy_location(call, stmts[0])
        ast.fix_missing_locations(call)
        lines = [n.lineno for s in stmts for n in ast.walk(s) if hasattr(n, "lineno")]
        ends = [
            getattr(n, "end_lineno", None) or n.lineno
            for s in stmts
            for n in ast.walk(s)
            if hasattr(n, "lineno")
        ]
        self.regions.append(
            Region(
                rid,
                name,
                stmts,
                (),
                (),
                frozenset(),
                self.parsed.filename,
                min(lines),
                max(ends),
                reason,
                call,
            )
        )
        return call


def _parents(body: list[ast.stmt]) -> dict[int, list[tuple[list[ast.stmt], int, ast.stmt | None]]]:
    """For every statement: its chain of (block, index, owner) from innermost to the function."""
    chains: dict[int, list[tuple[list[ast.stmt], int, ast.stmt | None]]] = {}

    def visit(block: list[ast.stmt], owner: ast.stmt | None, outer: list) -> None:
        for i, s in enumerate(block):
            chain = [(block, i, owner), *outer]
            chains[id(s)] = chain
            for field in ("body", "orelse", "finalbody"):
                sub = getattr(s, field, None)
                if isinstance(sub, list) and sub and isinstance(sub[0], ast.stmt):
                    visit(sub, s, chain)
            if isinstance(s, ast.Try):
                for h in s.handlers:
                    visit(h.body, s, chain)

    visit(body, None, [])
    return chains


def _reads_after(chain: list[tuple[list[ast.stmt], int, ast.stmt | None]]) -> set[str]:
    out: set[str] = set()
    for block, idx, owner in chain:
        for s in block[idx + 1 :]:
            out |= _reads(s)
        if isinstance(owner, ast.For | ast.While | ast.Try):
            out |= _reads(owner)
    return out


def split(
    parsed: ParsedFunction, typer: Typer, norm: Normalized, namer: Namer
) -> tuple[list[ast.stmt], list[Region], list[str]]:
    """Returns (host body with region calls, regions, names to pre-set to UNDEFINED)."""
    sp = _Splitter(parsed, typer, norm, namer)
    body = sp.block(norm.body)
    local = typer.locals
    params = _param_names(parsed.node)
    _inline_local_defs(parsed.node, sp.regions)
    info = {}
    for r in sp.regions:
        info[r.id] = (
            [n for n in _upward_exposed(r.stmts) if n in local],
            set().union(*(_writes(s) for s in r.stmts)) & local,
            _definite_writes(r.stmts),
        )
    live_in = {r.id: list(info[r.id][0]) for r in sp.regions}
    live_out: dict[int, list[str]] = {r.id: [] for r in sp.regions}
    chains = _parents(body)
    for _ in range(10):  # fixpoint: pass-through live-ins make earlier outputs live
        changed = False
        for r in sp.regions:
            r.call.value.args = [ast.Name(n, ast.Load()) for n in live_in[r.id]]  # type: ignore[union-attr,attr-defined]
        for r in sp.regions:
            after = _reads_after(chains[id(r.call)])
            outs = sorted(info[r.id][1] & after)
            for n in outs:
                if n not in info[r.id][2] and n not in live_in[r.id]:
                    live_in[r.id].append(n)
                    changed = True
            if outs != live_out[r.id]:
                live_out[r.id] = outs
                changed = True
        if not changed:
            break
    for r in sp.regions:
        r.live_in = tuple(live_in[r.id])
        r.live_out = tuple(live_out[r.id])
        r.host_scalars = frozenset(
            n for n in r.live_in if typer.env.get(n) is not None and typer.env[n].kind == Kind.HOST
        )
        r.call.value.args = [ast.Name(n, ast.Load()) for n in r.live_in]  # type: ignore[union-attr,attr-defined]
        r.call.targets = [ast.Tuple([ast.Name(n, ast.Store()) for n in r.live_out], ast.Store())]  # type: ignore[union-attr,attr-defined]
    # Regions with no live-out compute nothing anyone reads: drop them, unless they may write
    # state outside the function (an in-place op on a module buffer must still be refused).
    dead = {id(r.call) for r in sp.regions if not r.live_out and not _may_mutate_outside(r.stmts)}
    body = _drop(body, dead)
    regions = [r for r in sp.regions if r.live_out]
    maybe_undefined = _possibly_undefined(body, regions, params)
    return body, regions, maybe_undefined


def _may_mutate_outside(stmts: list[ast.stmt]) -> bool:
    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
                if n.func.attr.endswith("_") and not isinstance(n.func.value, ast.Name):
                    return True
            if isinstance(n, ast.Attribute | ast.Subscript) and isinstance(n.ctx, ast.Store):
                if not isinstance(n.value, ast.Name):
                    return True
    return False


def _inline_local_defs(fn: ast.FunctionDef, regions: list[Region]) -> None:
    """A function defined inside forward is re-created on every call; passed to a region as a
    Python object it would be a new compile-cache key each time. Regions that use it get their
    own copy of the ``def`` instead, traced with the rest of the region."""
    defs = {n.name: n for n in ast.walk(fn) if isinstance(n, ast.FunctionDef) and n is not fn}
    if not defs:
        return
    for r in regions:
        used = set().union(*(_reads(s) for s in r.stmts)) & defs.keys()
        r.stmts[:0] = [copy.deepcopy(defs[n]) for n in sorted(used)]


def _drop(stmts: list[ast.stmt], dead: set[int]) -> list[ast.stmt]:
    out = []
    for s in stmts:
        if id(s) in dead:
            continue
        for field in ("body", "orelse", "finalbody"):
            sub = getattr(s, field, None)
            if isinstance(sub, list) and sub and isinstance(sub[0], ast.stmt):
                setattr(s, field, _drop(sub, dead) or [ast.copy_location(ast.Pass(), s)])
        if isinstance(s, ast.Try):
            for h in s.handlers:
                h.body = _drop(h.body, dead) or [ast.copy_location(ast.Pass(), h)]
        out.append(s)
    return out


def _param_names(fn: ast.FunctionDef) -> set[str]:
    a = fn.args
    names = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
    if a.vararg:
        names.add(a.vararg.arg)
    if a.kwarg:
        names.add(a.kwarg.arg)
    return names


def _possibly_undefined(body: list[ast.stmt], regions: list[Region], params: set[str]) -> list[str]:
    """Region live-ins that may be unassigned when the region call runs."""
    calls = {id(r.call): r for r in regions}
    out: set[str] = set()

    def visit(stmts: list[ast.stmt], defined: set[str]) -> set[str]:
        d = set(defined)
        for s in stmts:
            if id(s) in calls:
                out.update(n for n in calls[id(s)].live_in if n not in d)
            if isinstance(s, ast.If):
                d |= visit(s.body, d) & visit(s.orelse, d)
            elif isinstance(s, ast.For | ast.While):
                inner = set(d)
                if isinstance(s, ast.For):
                    inner |= {n.id for n in ast.walk(s.target) if isinstance(n, ast.Name)}
                visit(s.body, inner)
                visit(s.body, inner | _definite_writes(s.body))  # second iteration
                visit(s.orelse, d)
            elif isinstance(s, ast.With):
                d |= visit(s.body, d)
            elif isinstance(s, ast.Try):
                visit(s.body, d)
                for h in s.handlers:
                    visit(h.body, d | ({h.name} if h.name else set()))
                visit(s.orelse, d)
                visit(s.finalbody, d)
            else:
                d |= _definite_writes([s])
        return d

    visit(body, set(params))
    return sorted(out)
