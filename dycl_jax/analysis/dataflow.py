"""A worklist fixpoint engine over a :mod:`cfg` graph, in the style of AutoGraph's
``cfg.GraphVisitor``.

Terms:
  * **state**: the fact an analysis keeps per node, before (``in_``) and after (``out``) it. States
    form a lattice of finite height (sets of names, for the analyses here).
  * **forward** analysis: a node's state is computed from its predecessors' (definite
    assignment); **reverse**: from its successors' (liveness).
  * **fixpoint**: a visit of any node changes nothing.

A subclass defines ``init_state(node)`` (the starting state of ``in_`` and ``out``) and
``visit_node(node) -> bool`` (recompute the node's states from its neighbours'; return whether
anything changed). ``visit_forward()`` / ``visit_reverse()`` visit every node once, in source
order or its reverse, then revisit the successors (predecessors) of every node that changed until
nothing changes.

Termination: for a monotone transfer function each node's state changes at most ``h`` times, where
``h`` is the lattice height (``lattice_height()``), so there are at most ``N + h * E`` visits for
``N`` nodes and ``E`` edges. The engine allows twice that and then raises
:class:`~dycl_jax.errors.InternalError` naming the analysis and the function: a visitor that does
not converge is a bug, never silently cut short.

Also the shared type of the per-node override analyses accept (``EffectFn``).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

from dycl_jax.analysis.cfg import Graph, Node
from dycl_jax.errors import InternalError

# (uses, kills) of one node: the names it reads before any write, and the names it binds on every
# path through it (see liveness / definite).
Effect = tuple[frozenset[str], frozenset[str]]
# A per-node override of an analysis' effects; None for a node means "use the default".
EffectFn = Callable[[Node], Effect | None]

S = TypeVar("S")


class GraphVisitor(Generic[S]):
    """Base of a dataflow analysis: per-node states ``in_`` / ``out``, iterated to a fixpoint."""

    stage: ClassVar[str] = "dataflow"

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.in_: dict[Node, S] = {}
        self.out: dict[Node, S] = {}

    def init_state(self, node: Node) -> S:
        raise NotImplementedError

    def visit_node(self, node: Node) -> bool:
        """Recompute ``node``'s states; True when they changed."""
        raise NotImplementedError

    def lattice_height(self) -> int:
        """How many times one node's state can change (an upper bound); e.g. the name count."""
        return len(self.graph.nodes)

    def visit_forward(self) -> None:
        self._visit(forward=True)

    def visit_reverse(self) -> None:
        self._visit(forward=False)

    def _visit(self, forward: bool) -> None:
        order = self.graph.nodes if forward else self.graph.nodes[::-1]
        for node in order:
            self.in_[node] = self.init_state(node)
            self.out[node] = self.init_state(node)
        edges = sum(len(node.next) for node in order)
        limit = 2 * (len(order) + (self.lattice_height() + 1) * (edges + 1))
        work = collections.deque(order)
        queued = set(order)
        visits = 0
        while work:
            node = work.popleft()
            queued.discard(node)
            visits += 1
            if visits > limit:
                raise InternalError(
                    f"{self.stage} did not converge on {self.graph.name} after {limit} node "
                    f"visits ({len(order)} nodes, {edges} edges)",
                    stage=self.stage,
                )
            if self.visit_node(node):
                for other in node.next if forward else node.prev:
                    if other not in queued:
                        queued.add(other)
                        work.append(other)
