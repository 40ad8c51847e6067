"""Dataflow facts of a host program, per IR statement: what is live after it and what is
definitely assigned before it (``analysis.liveness`` and ``analysis.definite`` run on the CFG of
the printed host function). Passes over the IR (``ir.stage``, ``ir.unbound``) read them."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable, Iterator

from dycl_jax.analysis import cfg, definite, liveness
from dycl_jax.ir import emit
from dycl_jax.ir.program import RUNTIME, Program, walk


def host_function(program: Program) -> ast.FunctionDef:
    """The host function of ``program`` as parsed source."""
    fn = ast.parse(emit.host_source(program)).body[0]
    assert isinstance(fn, ast.FunctionDef)
    return fn


def ast_walk(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of ``body`` and its nested blocks in source order (as ``program.walk``)."""
    for s in body:
        yield s
        if isinstance(s, ast.If | ast.While | ast.For):
            yield from ast_walk(s.body)
            yield from ast_walk(s.orelse)
        elif isinstance(s, ast.With):
            yield from ast_walk(s.body)
        elif isinstance(s, ast.Try):
            yield from ast_walk(s.body)
            for h in s.handlers:
                yield from ast_walk(h.body)
            yield from ast_walk(s.orelse)
            yield from ast_walk(s.finalbody)


@dataclasses.dataclass
class Facts:
    """Liveness and definite assignment of the host program, per IR statement (by identity)."""

    live_after: dict[int, frozenset[str]]
    defined_before: dict[int, frozenset[str]]

    @classmethod
    def of(
        cls, program: Program, fn: ast.FunctionDef, presets: Iterable[str] | None = None
    ) -> Facts | None:
        """The facts of ``program`` from ``fn``, its host function as parsed source; names in
        ``presets`` count as assigned on entry (default: the program's UNDEFINED presets, as
        the host function runs them). None where IR and source do not correspond one to one."""
        body = fn.body[1:] if program.undefined else fn.body  # the UNDEFINED preset line
        preset: tuple[str, ...] = program.undefined
        if presets is not None:  # analysed without the preset line
            fn = ast.FunctionDef(**{**vars(fn), "body": body})
            preset = tuple(presets)
        graph = cfg.build(fn)
        live = liveness.analyze(graph)
        defs = definite.analyze(graph, {*program.param_names, RUNTIME, *preset})
        ir_stmts = list(walk(program.body))
        ast_stmts = list(ast_walk(body))
        if len(ir_stmts) != len(ast_stmts):
            return None  # a statement printed as several: never guess
        facts = cls({}, {})
        for s, a in zip(ir_stmts, ast_stmts):
            facts.live_after[id(s)] = live.live_after(a)
            facts.defined_before[id(s)] = defs.defined_before(a)
        return facts
