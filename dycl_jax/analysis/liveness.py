"""Liveness: which names may still be read, before being rebound, after each point of a function.

Terms:
  * A name is **live** at a point when some path from that point reads it before any statement
    rebinds it. Liveness is a *may* property: the join is union, the function exit has nothing
    live (a returned value is read by its ``return`` node).
  * **uses** of a node: the names it reads (an in-place mutation ``x.append(v)`` / ``x[i] = v``
    counts as a read of ``x``: the object must survive); **kills**: the names it binds on every
    path through it. ``live_in = uses | (live_out - kills)``.
  * **live_in(node)** / **live_out(node)**: live before / after a CFG node; ``live_out`` is the
    union of the successors' ``live_in``. For a compound statement, ``live_before(stmt)`` is live
    before its header and ``live_after(stmt)`` is live at its follow set (after the whole
    statement), not after the header.

Free names (globals, builtins such as ``range``) are tracked like locals; a caller that wants only
the function's own variables intersects with them.

A ``for`` header (and a ``case``) kills its target only on the edge into its body: on the exit
edge the old binding of the target survives (``for i in []: ...`` leaves ``i`` unchanged).

Callers that summarise a region of statements as one node pass ``activity``: a function from a
node to ``(uses, kills)``, or None for the default. For a region, uses are its upward-exposed
reads and kills the names it binds on every path; a name it binds on only some paths must not be
a kill, so it stays live through the region.

Example::

    fn = ast.parse(src).body[0]
    live = analyze(cfg.build(fn))
    live.live_after(fn.body[0])  # frozenset({'a', 'x'})
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping

from dycl_jax.analysis.activity import activity_of, iteration_bindings
from dycl_jax.analysis.cfg import Graph, Node, NodeKind
from dycl_jax.analysis.dataflow import Effect, EffectFn, GraphVisitor

_EMPTY: frozenset[str] = frozenset()


def default_effect(node: Node) -> Effect:
    """(uses, kills) of a node from its statement: reads plus mutated names, and writes."""
    if node.ast_node is None:
        return _EMPTY, _EMPTY
    act = activity_of(node.ast_node)
    return act.reads | act.mutated, act.writes


@dataclasses.dataclass(frozen=True, eq=False)
class Liveness:
    """Result of :func:`analyze`: live names before / after each node of ``graph``."""

    graph: Graph
    _in: Mapping[Node, frozenset[str]]
    _out: Mapping[Node, frozenset[str]]

    def live_in(self, node: Node) -> frozenset[str]:
        return self._in[node]

    def live_out(self, node: Node) -> frozenset[str]:
        return self._out[node]

    def live_before(self, stmt: ast.AST) -> frozenset[str]:
        """Live before ``stmt`` (a compound statement: before its header)."""
        return self._in[self.graph.node_of[stmt]]

    def live_after(self, stmt: ast.AST) -> frozenset[str]:
        """Live just after ``stmt`` completes (a compound statement: after all of it)."""
        node = self.graph.node_of[stmt]
        if node.kind is NodeKind.STMT:
            return self._out[node]
        return _EMPTY.union(*(self._in[n] for n in self.graph.follow[stmt]))


class _Analysis(GraphVisitor[frozenset[str]]):
    stage = "liveness"

    def __init__(self, graph: Graph, activity: EffectFn | None) -> None:
        super().__init__(graph)
        self.effects: dict[Node, Effect] = {}
        # FOR / CASE nodes: kills on the edges that do not enter the body.
        self.exit_kills: dict[Node, frozenset[str]] = {}
        names: set[str] = set()
        for node in graph.nodes:
            effect = activity(node) if activity is not None else None
            uses, kills = default_effect(node) if effect is None else effect
            self.effects[node] = (uses, kills)
            names |= uses | kills
            if node.binds_into is not None and node.ast_node is not None:
                self.exit_kills[node] = kills - iteration_bindings(node.ast_node)
        self.height = len(names) + 1

    def lattice_height(self) -> int:
        return self.height

    def init_state(self, node: Node) -> frozenset[str]:
        return _EMPTY

    def visit_node(self, node: Node) -> bool:
        uses, kills = self.effects[node]
        body = node.binds_into
        if body is None:
            out = _EMPTY.union(*(self.in_[n] for n in node.next))
            live = uses | (out - kills)
        else:
            rest = _EMPTY.union(*(self.in_[n] for n in node.next if n is not body))
            out = self.in_[body] | rest
            live = uses | (self.in_[body] - kills) | (rest - self.exit_kills[node])
        self.out[node] = out
        if live == self.in_[node]:
            return False
        self.in_[node] = live
        return True


def analyze(graph: Graph, activity: EffectFn | None = None) -> Liveness:
    """Live names before and after every node of ``graph``; ``activity`` overrides per node."""
    analysis = _Analysis(graph, activity)
    analysis.visit_reverse()
    return Liveness(graph, analysis.in_, analysis.out)
