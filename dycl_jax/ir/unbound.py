"""Reads of unassigned locals on the host: ``UnboundLocalError`` where Python raises it.

The host program presets the locals a region may take before they are assigned (the
``undefined`` names) to ``_dy.UNDEFINED``, a marker that raises on use. Host code that only moves
the value (``self.last = i`` after a loop that never ran, ``d["i"] = i``, ``f(i)``, ``i is None``)
would carry the marker on where the original raised. This pass puts ``_dy.bound(name, ...)``
before each host statement that reads such a name where it is not assigned on every path.
"""

from __future__ import annotations

import ast
import dataclasses

from dycl_jax.ir.facts import Facts, host_function
from dycl_jax.ir.program import (
    RUNTIME,
    Block,
    CallRegion,
    Code,
    For,
    If,
    Program,
    Region,
    Return,
    Simple,
    Stmt,
    While,
    With,
    line_of,
    map_blocks,
)


def check_unbound(program: Program) -> Program:
    """``program`` with a ``_dy.bound`` check before every host statement that may read one of
    its UNDEFINED presets unassigned (unchanged when there is none)."""
    if not program.undefined:
        return program
    fn = host_function(program)
    _passed_through_unassigned(fn, {r.name for r in program.regions})
    facts = Facts.of(program, fn, presets=())
    if facts is None:
        return program
    reads = {r.name: _definite_reads(r) for r in program.regions}
    pass_ = _Pass(frozenset(program.undefined), facts, reads)
    body = pass_.block(program.body)
    return dataclasses.replace(program, body=body) if pass_.changed else program


def _passed_through_unassigned(fn: ast.FunctionDef, regions: set[str]) -> None:
    """Rewrite ``fn`` (for the analysis only) so that a region call does not count as assigning
    the names it takes and hands back (``h, i = _region_0(n, h, i)``: a loop in the region that
    never ran gives the marker back as it came)."""
    for node in ast.walk(fn):
        if not (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id in regions
        ):
            continue
        args = {a.id for a in node.value.args if isinstance(a, ast.Name)}
        for target in node.targets:
            elts = target.elts if isinstance(target, ast.Tuple) else [target]
            for i, t in enumerate(elts):
                if isinstance(t, ast.Name) and t.id in args:
                    elts[i] = ast.Name("_dy_passed", ast.Store())


class _Pass:
    def __init__(
        self, undefined: frozenset[str], facts: Facts, region_reads: dict[str, frozenset[str]]
    ) -> None:
        self.region_reads = region_reads
        self.undefined = undefined
        self.facts = facts
        self.changed = False

    def block(self, block: Block) -> Block:
        out: list[Stmt] = []
        for s in block:
            maybe = self.unassigned_reads(s)
            if maybe:
                self.changed = True
                line = line_of(s)
                args = ", ".join(f"({n!r}, {n})" for n in maybe)
                out.append(Simple(Code(f"{RUNTIME}.bound({args})", (line,))))
            out.append(map_blocks(s, self.block))
        return tuple(out)

    def unassigned_reads(self, s: Stmt) -> tuple[str, ...]:
        """The preset names ``s`` itself reads (not its nested blocks; of a region call, the
        live-ins its statements read on every path) that may be unassigned there."""
        defined = self.facts.defined_before.get(id(s))
        if defined is None:
            return ()
        if isinstance(s, CallRegion):
            read = [n for n in s.args if n in self.region_reads.get(s.region, ())]
        else:
            read = _reads(s)
        reads = [n for n in read if n in self.undefined and n not in defined]
        return tuple(dict.fromkeys(reads))


def _reads(s: Stmt) -> list[str]:
    texts: list[str] = []
    if isinstance(s, Simple):
        texts.append(s.code.text)
    elif isinstance(s, If | While):
        texts.append(s.test)
    elif isinstance(s, For):
        texts.append(s.iter)
    elif isinstance(s, With):
        texts.append(s.items)
    elif isinstance(s, Return) and s.value is not None:
        texts.append(s.value)
    out: list[str] = []
    for text in texts:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue  # not a whole statement or expression: nothing to check
        _loads(tree, out)
    return out


def _definite_reads(region: Region) -> frozenset[str]:
    """The live-ins ``region`` reads whatever path its own Python takes: names loaded by its
    top-level statements (and the tests and iterables of its compound ones) before anything in
    it assigns them. A read inside a loop or branch of the region may not happen (a loop over a
    Python range that is empty), so it is not one. A staged region computes an ``if`` as a
    select: what its branches read is read on one path only, so none counts."""
    if region.staged is not None:
        return frozenset()
    out: set[str] = set()
    assigned: set[str] = set()
    for stmt in (a for c in region.body for a in ast.parse(c.text).body):
        heads: list[ast.AST]
        if isinstance(stmt, ast.If | ast.While):
            heads = [stmt.test]
        elif isinstance(stmt, ast.For):
            heads = [stmt.iter]
        elif isinstance(stmt, ast.With):
            heads = [i.context_expr for i in stmt.items]
        elif isinstance(stmt, ast.Try | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            heads = []
        else:
            heads = [stmt]
        loads: list[str] = []
        for h in heads:
            _loads(h, loads)
        out.update(n for n in loads if n not in assigned)
        assigned.update(
            n.id
            for n in ast.walk(stmt)
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
        )
    return frozenset(out & set(region.live_in))


def _loads(node: ast.AST, out: list[str]) -> None:
    """Names ``node`` loads, outside nested functions, lambdas and comprehensions (they read
    later or conditionally, if ever)."""
    if isinstance(
        node,
        ast.FunctionDef
        | ast.AsyncFunctionDef
        | ast.Lambda
        | ast.ClassDef
        | ast.ListComp
        | ast.SetComp
        | ast.DictComp
        | ast.GeneratorExp,
    ):
        return
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        out.append(node.id)
    # what Python may not evaluate: the arms of `a if c else b`, the operands of `and` / `or`
    # after the first, the comparisons of a chain after the first
    if isinstance(node, ast.IfExp):
        children: list[ast.AST] = [node.test]
    elif isinstance(node, ast.BoolOp):
        children = [*node.values[:1]]
    elif isinstance(node, ast.Compare):
        children = [node.left, *node.comparators[:1]]
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        _loads(child, out)
