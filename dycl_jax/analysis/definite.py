"""Definite assignment: which names are bound on *every* path from the function entry to a point.

Terms:
  * A name is **defined** at a point when every path from the entry binds it (and does not
    ``del`` it afterwards). It is a *must* property: the join is intersection; the entry has only
    the parameters. A name read where it is not defined may raise ``NameError`` /
    ``UnboundLocalError`` (e.g. assigned in only one branch of an ``if``).
  * **defined_in(node)**: defined before ``node``; ``defined_before(stmt)`` is the same for a
    statement (a compound one: before its header).
  * Each node adds its **writes** (names it binds on every path; ``activity.Activity.writes``
    minus deletions) and removes the names it ``del``-etes.

Points to know:
  * A ``for`` header (and a ``case``) binds its target only on the edge into its body, so after
    ``for i in xs: ...`` ``i`` is defined only if it was before the loop.
  * An ``except`` clause is reached from every node of its ``try`` body (see ``cfg``), so only
    names defined at every point of the body count there: in practice those defined before the
    ``try``.
  * Unreachable nodes keep the starting state, *every* name (vacuously true on no paths).
  * An ``except ... as e`` clause unbinds ``e`` at its end in Python; this analysis does not model
    that unbinding (a read of ``e`` after the clause is rare and fails loudly in Python).
  * ``activity`` overrides take liveness' ``(uses, kills)`` shape: the kills are taken as the
    names the node binds on every path; an override cannot express a ``del``.

Example::

    fn = ast.parse(src).body[0]
    d = analyze(cfg.build(fn), params={"x"})
    d.defined_before(fn.body[-1])  # frozenset({'x', 'y'})
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping

from dycl_jax.analysis.activity import activity_of, iteration_bindings
from dycl_jax.analysis.cfg import Graph, Node
from dycl_jax.analysis.dataflow import EffectFn, GraphVisitor

_EMPTY: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, eq=False)
class DefiniteAssignment:
    """Result of :func:`analyze`: the names bound on every path to each node of ``graph``."""

    graph: Graph
    _in: Mapping[Node, frozenset[str]]

    def defined_in(self, node: Node) -> frozenset[str]:
        return self._in[node]

    def defined_before(self, stmt: ast.AST) -> frozenset[str]:
        """Defined before ``stmt`` (a compound statement: before its header)."""
        return self._in[self.graph.node_of[stmt]]


class _Analysis(GraphVisitor[frozenset[str]]):
    stage = "definite assignment"

    def __init__(self, graph: Graph, params: frozenset[str], activity: EffectFn | None) -> None:
        super().__init__(graph)
        self.params = params
        # node -> (names bound, names unbound); FOR / CASE: bound on the exit edges, separately.
        self.gen: dict[Node, frozenset[str]] = {}
        self.removed: dict[Node, frozenset[str]] = {}
        self.exit_gen: dict[Node, frozenset[str]] = {}
        universe = set(params)
        for node in graph.nodes:
            effect = activity(node) if activity is not None else None
            if effect is not None:
                gen, removed = effect[1], _EMPTY
            elif node.ast_node is not None:
                act = activity_of(node.ast_node)
                gen, removed = act.writes - act.deleted, act.deleted
            else:
                gen, removed = _EMPTY, _EMPTY
            self.gen[node], self.removed[node] = gen, removed
            universe |= gen
            if node.binds_into is not None and node.ast_node is not None:
                self.exit_gen[node] = gen - iteration_bindings(node.ast_node)
        self.universe = frozenset(universe)

    def lattice_height(self) -> int:
        return len(self.universe) + 1

    def init_state(self, node: Node) -> frozenset[str]:
        return self.params if node is self.graph.entry else self.universe

    def _edge(self, src: Node, dst: Node) -> frozenset[str]:
        gen = self.gen[src]
        if src.binds_into is not None and dst is not src.binds_into:
            gen = self.exit_gen[src]
        return (self.in_[src] - self.removed[src]) | gen

    def visit_node(self, node: Node) -> bool:
        if node is self.graph.entry or not node.prev:
            return False
        preds = iter(node.prev)
        defined = self._edge(next(preds), node)
        for pred in preds:
            defined &= self._edge(pred, node)
        if defined == self.in_[node]:
            return False
        self.in_[node] = defined
        return True


def analyze(
    graph: Graph, params: set[str] | frozenset[str], activity: EffectFn | None = None
) -> DefiniteAssignment:
    """Names defined on every path to each node of ``graph``, the entry defining ``params``."""
    analysis = _Analysis(graph, frozenset(params), activity)
    analysis.visit_forward()
    return DefiniteAssignment(graph, analysis.in_)
