"""Split a normalized body into branch-free regions and build the program IR.

A **region** is a maximal run of consecutive trace statements in one block. It becomes one
function ``_region_N(live_in...) -> tuple(live_out)`` captured as a single ATen graph per input
signature; its call site in the host program is ``a, b = _region_N(x, y)``.

Live sets come from the shared dataflow analyses, run on the host function with each region as
one node (``analysis.liveness`` / ``analysis.definite``):

* **live-out** of a region: names it may write that are live after its call site;
* **live-in**: its upward-exposed reads, plus live-outs it does not assign on every path (a
  name assigned only under a static branch inside the region passes through unchanged);
* **undefined**: live-ins that are not definitely assigned when the call runs (the original
  program only reads them on paths where they are set); the host presets them to UNDEFINED.

Pure Python bookkeeping between two runs of trace statements (``n += 1``) moves after the second
run when nothing in it depends on them, so the runs form one region. Consumes
:class:`~dycl_jax.rewrite.normalize.Normalized`; produces an :class:`~dycl_jax.ir.Program`.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
from typing import Any

from dycl_jax.analysis import activity, aliasing, cfg, definite, liveness, placement
from dycl_jax.analysis.source import ParsedFunction
from dycl_jax.errors import UnsupportedConstructError
from dycl_jax.ir import program as ir
from dycl_jax.ir.code import code_of, expr_text, target_text
from dycl_jax.rewrite.naming import Namer
from dycl_jax.rewrite.normalize import Host, Item, Normalized, Trace


@dataclasses.dataclass
class _Draft:
    """A region under construction: its statements and call site in the host AST."""

    name: str
    stmts: list[ast.stmt]
    reason: ir.SplitReason | None
    site: ast.Expr
    uses: tuple[str, ...] = ()  # upward-exposed reads, in first-read order
    may: frozenset[str] = frozenset()  # names it may (re)bind or mutate
    must: frozenset[str] = frozenset()  # names it binds on every path
    effects: bool = False
    writes: bool = False  # holds an in-place op: kept with no live-out, so its capture checks it
    opaque: bool = False  # calls what the analysis cannot name (see Region.opaque_calls)
    span: tuple[int, int] = (0, 0)  # first and last user line of the statements


def _span(stmts: list[ast.stmt]) -> tuple[int, int]:
    lines = [n.lineno for s in stmts for n in ast.walk(s) if hasattr(n, "lineno")]
    ends = [
        getattr(n, "end_lineno", None) or n.lineno
        for s in stmts
        for n in ast.walk(s)
        if hasattr(n, "lineno")
    ]
    return min(lines), max(ends)


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


def _independent(moved: list[ast.stmt], other: ast.stmt, defs: dict[str, ast.stmt]) -> bool:
    """True when ``moved`` can be reordered past ``other`` (no name written by one is touched by
    the other). A function defined in forward that ``other`` calls reads its free names when it
    runs, so they count as reads of ``other``."""
    m = activity.activity_of_block(moved)
    o = activity.activity_of_block([other])
    reads = o.reads | _closure_reads(o.reads, defs)
    return not (m.may_writes & (reads | o.may_writes) or m.reads & o.may_writes)


def _closure_reads(names: frozenset[str], defs: dict[str, ast.stmt]) -> frozenset[str]:
    """Free names read by the local functions among ``names``, transitively."""
    out: set[str] = set()
    todo = [n for n in names if n in defs]
    seen: set[str] = set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        reads = activity.activity_of_block([defs[n]]).reads
        out |= reads
        todo.extend(r for r in reads if r in defs)
    return frozenset(out)


_NESTED = ("body", "orelse", "finalbody")


class _Splitter:
    def __init__(self, namer: Namer, defs: dict[str, ast.stmt]) -> None:
        self.namer = namer
        self.defs = defs  # functions defined in forward, by name
        self.drafts: list[_Draft] = []
        self.reasons: dict[ast.stmt, ir.SplitReason] = {}  # host statement -> why on the host

    def block(self, items: list[Item]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        run: list[ast.stmt] = []
        deferred: list[ast.stmt] = []
        for item in items:
            if isinstance(item, Trace):
                if deferred and not _independent(deferred, item.stmt, self.defs):
                    out.append(self._region(run, None))
                    out.extend(deferred)
                    run, deferred = [], []
                run.append(item.stmt)
                continue
            s = item.stmt
            if run and _movable(s):
                deferred.append(s)  # checked against the trace statements it moves past
                continue
            if run:
                out.append(self._region(run, item.reason))
                run = []
            out.extend(deferred)
            deferred = []
            self._host(item)
            out.append(s)
        if run:
            out.append(self._region(run, None))
        out.extend(deferred)
        return out

    def _host(self, item: Host) -> None:
        s = item.stmt
        if item.reason is not None:
            self.reasons[s] = item.reason
        for field, items in item.blocks:
            stmts = self.block(items)
            if field.startswith("handlers."):
                assert isinstance(s, ast.Try)
                s.handlers[int(field.split(".")[1])].body = stmts
            else:
                setattr(s, field, stmts)

    def _region(self, stmts: list[ast.stmt], reason: ir.SplitReason | None) -> ast.stmt:
        name = self.namer.fresh("_region")
        site = ast.Expr(ast.Call(ast.Name(name, ast.Load()), [], []))
        ast.fix_missing_locations(ast.copy_location(site, stmts[0]))
        self.drafts.append(_Draft(name, stmts, reason, site))
        return site


def split(parsed: ParsedFunction, norm: Normalized) -> ir.Program:
    """The IR of ``parsed`` after normalization: host control flow, region calls, regions."""
    inline = _local_defs(parsed.node, parsed.nodes)
    sp = _Splitter(norm.namer, inline)
    body = sp.block(_defs_on_host(norm.body, inline))
    drafts = {d.site: d for d in sp.drafts}
    local = norm.locals
    for d in sp.drafts:
        d.span = _span(d.stmts)
        reads = activity.activity_of_block(d.stmts).reads
        used = sorted((reads | _closure_reads(reads, inline)) & inline.keys())
        d.stmts = [copy.deepcopy(inline[n]) for n in used] + d.stmts
        acts = activity.activity_of_block(d.stmts)
        exposed, must = _region_effect(d.stmts)
        d.uses = tuple(n for n in exposed if n in local)
        # An inlined def is the region's private copy: the host binds the name itself.
        d.may = (acts.may_writes & local) - set(used)
        d.must = (must & local) - set(used)
        # a region that may write in place is kept even with no live-out: its capture checks
        # that no write it makes to a tensor read later goes unseen (`[t.add_(1) for t in xs]`)
        d.opaque = any(n in norm.opaque_calls for s in d.stmts for n in ast.walk(s))
        d.effects = _may_mutate_outside(d.stmts)
        d.writes = _writes_in_place(d.stmts)
    fn = ast.FunctionDef(parsed.fn.__name__, parsed.node.args, body, [], None)  # type: ignore[call-arg]
    graph = cfg.build(fn)

    def override(node: cfg.Node) -> tuple[frozenset[str], frozenset[str]] | None:
        d = drafts.get(node.ast_node) if isinstance(node.ast_node, ast.Expr) else None
        return None if d is None else (frozenset(d.uses), d.must)

    live = liveness.analyze(graph, override)
    with aliasing.returning_input(norm.returns_input, norm.returns_parts):
        _check_aliases(parsed, sp.drafts, body, norm, graph, live)
    _check_host_call_writes(parsed, body, norm, graph, live)
    params = ir_params(parsed.node)
    outs: dict[str, tuple[str, ...]] = {}
    ins: dict[str, tuple[str, ...]] = {}
    read_after: dict[str, frozenset[str]] = {}
    # the caller's objects: what a region writes into one the caller may read after the call
    # (`cb(lst, h)` doubling `lst[0]` in place, in a form the analysis does not see)
    receiver = params[:1] if "." in parsed.fn.__qualname__.rsplit("<locals>.", 1)[-1] else []
    callers = frozenset(params) - set(receiver) - parsed.assigned_names()
    for d in sp.drafts:
        after = live.live_out(graph.node_of[d.site]) | callers
        live_out = sorted(d.may & after)
        extra = sorted(set(live_out) - d.must - set(d.uses))
        outs[d.name] = tuple(live_out)
        ins[d.name] = (*d.uses, *extra)
        read_after[d.name] = (frozenset(ins[d.name]) & after) - frozenset(live_out)
    # Regions with no live-out compute nothing anyone reads; they go unless they may write state
    # outside the function (an in-place op on a module buffer must still reach capture) or call
    # what the analysis cannot name (`hooks["exit"](outs, i)` may change what it is given).
    dead = {
        d.site
        for d in sp.drafts
        if not outs[d.name] and not d.effects and not d.writes and not d.opaque
    }
    defs = definite.analyze(graph, set(params), override)
    undefined: set[str] = set()
    for d in sp.drafts:
        if d.site not in dead:
            undefined |= set(ins[d.name]) - defs.defined_in(graph.node_of[d.site])
    regions = []
    for d in sp.drafts:
        if d.site in dead:
            continue
        regions.append(
            ir.Region(
                d.name,
                tuple(code_of(s) for s in d.stmts),
                ins[d.name],
                outs[d.name],
                (frozenset(ins[d.name]) & norm.host_names)
                - placement.python_keys(d.stmts, norm.tensor_names),
                parsed.filename,
                *d.span,
                d.reason,
                d.effects,
                read_after=read_after[d.name],
                opaque_calls=d.opaque,
            )
        )
    builder = _IRBuilder(drafts, dead, ins, outs, sp.reasons)
    return ir.Program(
        qualname=parsed.qualname,
        name=parsed.fn.__name__,
        filename=parsed.filename,
        lineno=parsed.node.lineno,
        params=ast.unparse(parsed.node.args),
        param_names=tuple(params),
        body=builder.block(body),
        regions=tuple(regions),
        undefined=tuple(sorted(undefined)),
        split_reasons=norm.reasons,
    )


class _IRBuilder:
    """Host AST (with region call sites) -> IR statements."""

    def __init__(
        self,
        drafts: dict[ast.Expr, _Draft],
        dead: set[ast.Expr],
        ins: dict[str, tuple[str, ...]],
        outs: dict[str, tuple[str, ...]],
        reasons: dict[ast.stmt, ir.SplitReason],
    ) -> None:
        self.drafts = drafts
        self.dead = dead
        self.ins = ins
        self.outs = outs
        self.reasons = reasons

    def block(self, stmts: list[ast.stmt]) -> ir.Block:
        out: list[ir.Stmt] = []
        for s in stmts:
            if isinstance(s, ast.Expr) and s in self.dead:
                continue
            out.append(self.stmt(s))
        if not out:
            out.append(ir.Simple(ir.Code("pass", (stmts[0].lineno if stmts else 0,))))
        return tuple(out)

    def stmt(self, s: ast.stmt) -> ir.Stmt:
        line = s.lineno
        reason = self.reasons.get(s)
        d = self.drafts.get(s) if isinstance(s, ast.Expr) else None
        if d is not None:
            return ir.CallRegion(d.name, self.ins[d.name], self.outs[d.name], line)
        if isinstance(s, ast.If):
            return ir.If(expr_text(s.test), self.block(s.body), self._opt(s.orelse), line, reason)
        if isinstance(s, ast.While):
            return ir.While(
                expr_text(s.test), self.block(s.body), self._opt(s.orelse), line, reason
            )
        if isinstance(s, ast.For):
            return ir.For(
                target_text(s.target),
                expr_text(s.iter),
                self.block(s.body),
                self._opt(s.orelse),
                line,
                reason,
            )
        if isinstance(s, ast.With):
            return ir.With(", ".join(ast.unparse(i) for i in s.items), self.block(s.body), line)
        if isinstance(s, ast.Try):
            handlers = tuple(
                ir.Handler(
                    expr_text(h.type) if h.type is not None else None,
                    h.name,
                    self.block(h.body),
                    h.lineno,
                )
                for h in s.handlers
            )
            return ir.Try(
                self.block(s.body), handlers, self._opt(s.orelse), self._opt(s.finalbody), line
            )
        if isinstance(s, ast.Return):
            return ir.Return(expr_text(s.value) if s.value is not None else None, line)
        if isinstance(s, ast.Break):
            return ir.Break(line)
        if isinstance(s, ast.Continue):
            return ir.Continue(line)
        return ir.Simple(code_of(s), reason)

    def _opt(self, stmts: list[ast.stmt]) -> ir.Block:
        return self.block(stmts) if stmts else ()


# ---- in-place writes and aliases ---------------------------------------------------------------


def _check_aliases(
    parsed: ParsedFunction,
    drafts: list[_Draft],
    host: list[ast.stmt],
    norm: Normalized,
    graph: cfg.Graph,
    live: liveness.Liveness,
) -> None:
    """In-place writes inside regions, against aliases (see ``analysis.aliasing``).

    A name linked inside a region to a name the region writes in place changes too: it becomes a
    possible output. A write to an object that another live name may reference when the region
    starts (a may-alias pair from the flow-sensitive analysis: a rename, view, container entry or
    loop variable made on a path to it and not rebound since) is refused at the user's line: the
    region's write would not reach the other reference."""
    sites = {d.site: d for d in drafts}
    plain = norm.plain_tensors

    def steps(node: cfg.Node) -> list[tuple[Any, ...]]:
        s = node.ast_node
        if isinstance(s, ast.Expr) and s in sites:  # a region: all its statements, in order
            return aliasing.steps_of(sites[s].stmts, plain)
        if isinstance(s, ast.stmt | ast.excepthandler):
            return aliasing.header_steps(s, plain)
        return []  # entry / exit

    pairs = aliasing.may_alias(graph, steps)
    _check_host_array_writes(parsed, set(sites), norm, graph, live, pairs)
    all_links = aliasing.all_links(host, plain) + [
        x for d in drafts for x in aliasing.all_links(d.stmts, plain)
    ]
    # a list or dict a tensor was put in is written in place through its entries too
    # (`store[1][:, 0] = 0`), whatever the typer made of it
    tensors = norm.tensor_names
    # `st = _t_0` after `_t_0 = State(h)`: st holds h too; `a = self.cache` is an item of self,
    # which may be a tensor it holds
    holders = aliasing.reach(
        (lk.a for _, lk in all_links if lk.kind in ("container", "container-view")),
        ((lk.b, lk.a) for _, lk in all_links if lk.kind in ("rename", "view")),
    )
    containers = frozenset(holders) - tensors
    # the user's locals, and the temporaries normalization made (a dict comprehension is built
    # into `_t_0 = {}` entry by entry), judged on the code that binds them
    normalized = ast.FunctionDef(  # type: ignore[call-arg]
        "_", parsed.node.args, [*host, *(s for d in drafts for s in d.stmts)], [], None
    )
    lists = aliasing.plain_containers(parsed.node) | frozenset(
        n for n in aliasing.plain_containers(normalized) if norm.namer.made(n)
    )
    for d in drafts:
        written = _stale_writes(d.stmts, tensors, norm.call_writes, containers)
        if not written:
            continue
        inside = [link for _, link in aliasing.all_links(d.stmts, plain)]
        # names only written by replacing an entry of a dict or list (`kwargs["flag"] = False`,
        # `results[i] = logits[j]` into `[None] * n`): no tensor they hold changes; the
        # container itself does (for any other reference to it)
        not_entries = _stale_writes(d.stmts, tensors, norm.call_writes, containers, lists)
        entry_only = set(written) - set(not_entries)
        # names linked inside the region to a written one change with it
        changed = aliasing.reach(
            set(written) - entry_only,
            (pair for lk in inside for pair in ((lk.a, lk.b), (lk.b, lk.a))),
        )
        changed |= entry_only
        d.may = d.may | (frozenset(changed) & norm.locals)
        node = graph.node_of[d.site]
        first_write = min(written.values())
        outside = [lk for _, lk in all_links if lk not in inside]
        for link in _views_among_entries(outside):
            if link.a in changed:
                # entries that share storage with each other and with link.b reach the region
                # as separate arrays: a write through one would not reach the others
                raise UnsupportedConstructError(
                    f"in-place write through an entry of {link.a!r}, which holds a view of "
                    f"{link.b!r} (made at line {link.line}); dycl_jax runs the write in a "
                    f"compiled region, where {link.b!r} and the other entries would not see it",
                    dataclasses.replace(parsed.location(None), lineno=first_write, col=None),
                    hint="write into the tensor itself, or build the entries as copies "
                    "(`.clone()`)",
                )
        needed = live.live_in(node) | live.live_out(node)
        # the names the region changes, also through loop variables and links made inside it
        # (`for r in h: r.mul_(2)` changes h, which `a = h` made before also reaches)
        shared = (tensors | containers) - norm.python_names  # (a Python value is copied)
        changes = {**dict.fromkeys(changed & shared, first_write), **written}
        for name, line in changes.items():
            where = dataclasses.replace(parsed.location(None), lineno=line, col=None)
            for pair in sorted(pairs.in_[node], key=sorted):
                if name not in pair:
                    continue
                alias = next(iter(pair - {name}))
                if alias not in needed:
                    continue  # nobody reads the other reference again
                if name in entry_only and alias in tensors and alias not in holders:
                    continue  # a tensor the dict held is not changed by a new entry
                made = next(
                    (lk for _, lk in all_links if {lk.a, lk.b} == {name, alias}),
                    None,
                )
                if alias in norm.python_names and (
                    made is None or made.kind != "view" or made.a == alias
                ):
                    # a Python number written into a tensor is copied, never shared (a numpy
                    # array a tensor was made from with from_numpy / as_tensor is shared); one
                    # read out of the written object (`ptr = self.queue_ptr`) is its own value
                    continue
                how = f" ({made.kind} at line {made.line})" if made is not None else ""
                temp = norm.namer.made(name)  # a call's result, written where it is made
                shown = "the value this line writes" if temp else repr(name)
                copy_hint = (
                    f"`{name} = {name}.clone()`"
                    if name in tensors and name not in holders and not temp
                    else "`.clone()` the tensor written"
                )
                raise UnsupportedConstructError(
                    f"in-place write to {shown}, which may share memory with {alias!r}{how}; "
                    f"dycl_jax runs the write in a compiled region, where {alias!r} would not "
                    "see it",
                    where,
                    hint=f"copy before writing ({copy_hint}), or compute "
                    "the new value functionally (torch.where, masked_fill, index_put)",
                )


def _check_host_array_writes(
    parsed: ParsedFunction,
    sites: set[ast.stmt],
    norm: Normalized,
    graph: cfg.Graph,
    live: liveness.Liveness,
    pairs: aliasing.MayAlias,
) -> None:
    """An in-place write on the host to a numpy array that shares a tensor's memory in PyTorch
    (``s = scores.numpy(); s[s < 0] = 0`` changes ``scores`` too): the host's array is a copy of
    the region's result, so the write would not reach the tensor. Refused when the tensor is
    read afterwards."""
    simple = ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Expr
    for node in graph.nodes:
        s = node.ast_node
        if not isinstance(s, simple) or s in sites:
            continue
        for name, line in aliasing.inplace_writes(s, norm.host_names):
            for pair in pairs.in_[node]:
                if name not in pair:
                    continue
                alias = next(iter(pair - {name}))
                if alias in norm.tensor_names and alias in live.live_out(node):
                    raise UnsupportedConstructError(
                        f"in-place write to {name!r}, a numpy array that shares memory with the "
                        f"tensor {alias!r} in PyTorch (`.numpy()` / `torch.from_numpy`); the "
                        f"host holds a copy of {alias!r}'s values, which the write would not "
                        "change",
                        dataclasses.replace(parsed.location(None), lineno=line, col=None),
                        hint=f"copy first (`{name} = {name}.copy()`) and compute {alias!r}'s "
                        "new value from it explicitly (torch.as_tensor)",
                    )


def _views_among_entries(links: list[aliasing.Link]) -> list[aliasing.Link]:
    """Links (container, tensor) for containers whose entries share storage: one holds a view
    of a tensor (``[h[0], h[1]]``), or two entries are a tensor and a view of it
    (``store.append(h[:, :2]); store.append(h)``)."""
    held: dict[str, set[str]] = {}
    out = [lk for lk in links if lk.kind == "container-view"]
    for lk in links:
        if lk.kind == "container":
            held.setdefault(lk.a, set()).add(lk.b)
    views = [lk for lk in links if lk.kind == "view"]
    for container, names in held.items():
        for v in views:
            if v.a in names and v.b in names:
                out.append(aliasing.Link(container, v.b, v.line, "container-view"))
    return out


def _stale_writes(
    stmts: list[ast.stmt],
    tensors: frozenset[str],
    call_writes: dict[ast.Call, frozenset[str]],
    containers: frozenset[str] = frozenset(),
    lists: frozenset[str] | None = None,
) -> dict[str, int]:
    """In-place writes in ``stmts`` (in order), name -> first line, to names not rebound to a
    new object before them on every path from the region's start: ``x = x.clone()`` then
    ``x[i] = v`` writes a copy, also inside a loop body traced into the region (a branch's or a
    loop body's rebindings stay inside it). With ``lists``, writes that replace an entry of a
    dict or of one of those new lists are left out (``aliasing.inplace_writes``)."""
    written: dict[str, int] = {}
    entries = lists is None

    def walk(stmts: list[ast.stmt], fresh: set[str]) -> None:
        for s in stmts:
            if isinstance(s, ast.For | ast.AsyncFor | ast.While):
                header = s.iter if isinstance(s, ast.For | ast.AsyncFor) else s.test
                walk([ast.Expr(header)], fresh)
                # (a loop variable is not fresh: it is an item of what the loop iterates)
                walk(s.body, set(fresh))
                walk(s.orelse, set(fresh))
            elif isinstance(s, ast.If):
                walk([ast.Expr(s.test)], fresh)
                walk(s.body, set(fresh))
                walk(s.orelse, set(fresh))
            elif isinstance(s, ast.With | ast.AsyncWith):
                walk([ast.Expr(item.context_expr) for item in s.items], fresh)
                walk(s.body, fresh)
            elif isinstance(s, ast.Try):
                for block in (s.body, *(h.body for h in s.handlers), s.orelse, s.finalbody):
                    walk(block, set(fresh))
            else:
                for name, line in aliasing.inplace_writes(
                    s, tensors, containers, entries=entries, lists=lists or frozenset()
                ):
                    if name not in fresh:
                        written.setdefault(name, line)
                for n in aliasing.walk_no_defs(s):
                    if isinstance(n, ast.Call) and n in call_writes:
                        for name in call_writes[n]:
                            if name not in fresh:
                                written.setdefault(name, n.lineno)
                fresh |= aliasing.fresh_bindings(s)

    walk(stmts, set())
    return written


def _check_host_call_writes(
    parsed: ParsedFunction,
    host: list[ast.stmt],
    norm: Normalized,
    graph: cfg.Graph,
    live: liveness.Liveness,
) -> None:
    """A dynamic helper (its own host program) that writes an argument in place writes its own
    copy: refused when the caller reads that argument again after the call."""
    for s in host:
        for n in aliasing.walk_no_defs(s):
            if not isinstance(n, ast.stmt) or n not in graph.node_of:
                continue
            node = graph.node_of[n]
            if node.kind is not cfg.NodeKind.STMT:
                continue
            rebound = activity.activity_of(n).writes
            for call in aliasing.walk_no_defs(n):
                if not isinstance(call, ast.Call):
                    continue
                for name in norm.call_writes.get(call, ()):
                    if name not in norm.tensor_names:
                        continue  # a Python object (a tree node): the helper gets that object
                    if name in live.live_out(node) and name not in rebound:
                        raise UnsupportedConstructError(
                            f"the function called here writes its argument {name!r} in place, "
                            f"and {name!r} is read again afterwards: dycl_jax runs that function "
                            "as its own program, whose write the caller would not see",
                            dataclasses.replace(parsed.location(None), lineno=n.lineno, col=None),
                            hint=f"return the new value and rebind it (`{name} = f({name})`)",
                        )


# ---- per-region sets ---------------------------------------------------------------------------


def _region_effect(stmts: list[ast.stmt]) -> tuple[list[str], frozenset[str]]:
    """(upward-exposed reads in first-read order, names bound on every path) of a region's
    statements: liveness and definite assignment over the region's own CFG."""
    graph = cfg.build(stmts)
    exposed = liveness.analyze(graph).live_in(graph.entry)
    must = definite.analyze(graph, set()).defined_in(graph.exit)
    order: list[str] = []
    for s in stmts:
        for name in sorted(activity.activity_of_block([s]).reads):
            if name in exposed and name not in order:
                order.append(name)
    return order, must


# Calls that set state on an object whatever it is named (`self.register_buffer("cos", c)`).
_STATE_SETTERS = frozenset(
    {"register_buffer", "register_parameter", "register_module", "add_module", "__setattr__"}
)


def _may_mutate_outside(stmts: list[ast.stmt]) -> bool:
    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
                if n.func.attr.endswith("_") and not isinstance(n.func.value, ast.Name):
                    return True
                if n.func.attr in _STATE_SETTERS:
                    return True
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "setattr":
                return True
            if isinstance(n, ast.Attribute | ast.Subscript) and isinstance(n.ctx, ast.Store):
                if not isinstance(n.value, ast.Name):
                    return True
    return False


def _writes_in_place(stmts: list[ast.stmt]) -> bool:
    """Whether ``stmts`` hold an in-place op in any form ``aliasing.call_writes`` knows
    (``t.add_()``, ``out=``, ``inplace=True``), also inside comprehensions and lambdas."""
    return any(
        isinstance(n, ast.Call) and aliasing.call_writes(n) for s in stmts for n in ast.walk(s)
    )


def _defs_on_host(items: list[Item], defs: dict[str, ast.stmt]) -> list[Item]:
    """``items`` with the definitions of the local functions that host statements read (a
    lambda passed to a helper the host calls: ``h = step(func, x)``) made host statements: the
    host binds them itself; regions that use one still trace their own copy."""
    reads: set[str] = set()

    def scan(items: list[Item]) -> None:
        for item in items:
            if isinstance(item, Host):
                reads.update(activity.activity_of(item.stmt).reads)
                for _, nested in item.blocks:
                    scan(nested)

    scan(items)
    wanted = {n for n in defs if n in reads}
    wanted |= set(_closure_reads(frozenset(wanted), defs)) & defs.keys()
    if not wanted:
        return items

    def hoist(items: list[Item]) -> list[Item]:
        out: list[Item] = []
        for item in items:
            if isinstance(item, Trace) and _defined_name(item.stmt) in wanted:
                out.append(Host(item.stmt))
            elif isinstance(item, Host) and item.blocks:
                out.append(
                    dataclasses.replace(
                        item, blocks=tuple((f, hoist(nested)) for f, nested in item.blocks)
                    )
                )
            else:
                out.append(item)
        return out

    return hoist(items)


def _defined_name(s: ast.stmt) -> str | None:
    if isinstance(s, ast.FunctionDef):
        return s.name
    if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
        return s.targets[0].id if isinstance(s.value, ast.Lambda) else None
    return None


def _local_defs(fn: ast.FunctionDef, nodes: tuple[ast.AST, ...]) -> dict[str, ast.stmt]:
    """Functions defined inside forward (``def`` or a name bound once to a ``lambda``).
    Re-created on every call, each would be a new compile-cache key if passed to a region as a
    Python object, and its closure would read the host's variables, not the region's. Regions that
    use one get their own copy of the definition instead, traced with the rest of the region."""
    binds: dict[str, int] = {}
    for n in nodes:
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
            binds[n.id] = binds.get(n.id, 0) + 1
        elif isinstance(n, ast.FunctionDef) and n is not fn:
            binds[n.name] = binds.get(n.name, 0) + 1
    out: dict[str, ast.stmt] = {}
    for n in nodes:
        if isinstance(n, ast.FunctionDef) and n is not fn:
            out[n.name] = n
        elif (
            isinstance(n, ast.Assign)
            and len(n.targets) == 1
            and isinstance(n.targets[0], ast.Name)
            and isinstance(n.value, ast.Lambda)
            and binds.get(n.targets[0].id) == 1
        ):
            out[n.targets[0].id] = n
    return out


def ir_params(fn: ast.FunctionDef) -> list[str]:
    a = fn.args
    names = [x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]]
    if a.vararg:
        names.append(a.vararg.arg)
    if a.kwarg:
        names.append(a.kwarg.arg)
    return names
