"""The call graph of a model's forward and the user code it reaches, and which functions are
*dynamic* (need a host program of their own).

Nodes are (function, bound owner) pairs — the model's forward, helper methods, submodules with a
Python forward — each parsed, checked for refused constructs and typed once. Edges come from
resolving every call site against the live module (``Typer.user_callees``).

A function is dynamic when normalizing it leaves host code (a tensor-dependent branch, a
conversion, a side effect, ...), and calling a dynamic function is itself host code. So dynamic-ness
is the least fixpoint of "normalize with the current answers for callees", computed callees first;
a function is normalized again only when one of its callees turns dynamic after it was normalized
(recursion), and each function turns dynamic at most once, so the loop ends.

``build(fn, owner, normalize)`` returns a :class:`CallGraph` with every function's analysis and
normalized body. ``normalize(parsed, typer) -> result with .reasons`` is the rewriter's entry
point, passed in so analysis does not import a later stage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from dycl_jax.analysis import source, support
from dycl_jax.analysis.dependence import Typer
from dycl_jax.errors import internal_stage

Key = tuple[Any, int]  # (function, id(owner))
N = TypeVar("N")


def key_of(fn: Any, owner: Any) -> Key:
    return (fn, id(owner))


@dataclasses.dataclass
class FunctionNode(Generic[N]):
    fn: Any
    owner: Any
    parsed: source.ParsedFunction
    callees: list[Key]
    typer: Typer | None  # the discovery Typer, used for the first normalization
    normalized: N | None = None
    dynamic: bool = False


class CallGraph(Generic[N]):
    """Functions reachable from a root, their callees, and which are dynamic."""

    def __init__(self, normalize: Callable[[source.ParsedFunction, Typer], N]) -> None:
        self._normalize = normalize
        self.nodes: dict[Key, FunctionNode[N]] = {}

    def is_dynamic(self, fn: Any, owner: Any) -> bool:
        node = self.nodes.get(key_of(fn, owner))
        return node is not None and node.dynamic

    def node(self, fn: Any, owner: Any) -> FunctionNode[N]:
        return self.nodes[key_of(fn, owner)]

    def _typer(self, parsed: source.ParsedFunction, owner: Any) -> Typer:
        return Typer(parsed, owner, dynamic=self.is_dynamic)

    def add(self, fn: Any, owner: Any) -> FunctionNode[N]:
        """Analyse ``fn`` and every function it reaches; returns its node (normalized)."""
        root = key_of(fn, owner)
        if root in self.nodes:
            return self.nodes[root]
        order: list[Key] = []
        self._discover(fn, owner, order)
        self._solve(order)
        return self.nodes[root]

    def _discover(self, fn: Any, owner: Any, order: list[Key]) -> None:
        """Depth-first discovery; ``order`` receives new nodes callees first (post-order)."""
        stack: list[tuple[Any, Any, bool]] = [(fn, owner, False)]
        while stack:
            f, o, expanded = stack.pop()
            k = key_of(f, o)
            if expanded:
                order.append(k)
                continue
            if k in self.nodes:
                continue
            parsed = source.parse(f)
            with internal_stage("kind inference", parsed.location()):
                support.check(parsed)
                typer = self._typer(parsed, o)
                callees = typer.user_callees()
            self.nodes[k] = FunctionNode(
                f, o, parsed, [key_of(cf, co) for cf, co in callees], typer
            )
            stack.append((f, o, True))
            for cf, co in reversed(callees):
                if key_of(cf, co) not in self.nodes:
                    stack.append((cf, co, False))

    def _solve(self, order: list[Key]) -> None:
        callers: dict[Key, list[Key]] = {}
        for k, node in self.nodes.items():
            for c in node.callees:
                callers.setdefault(c, []).append(k)
        todo = list(order)
        queued = set(todo)
        while todo:
            k = todo.pop(0)
            queued.discard(k)
            node = self.nodes[k]
            # A fresh Typer for a second run: normalization declares its temporaries in it.
            typer = node.typer or self._typer(node.parsed, node.owner)
            node.typer = None
            with internal_stage("normalize", node.parsed.location()):
                node.normalized = self._normalize(node.parsed, typer)
            dynamic = bool(getattr(node.normalized, "reasons", ()))
            if dynamic and not node.dynamic:
                node.dynamic = True
                for caller in callers.get(k, ()):
                    if self.nodes[caller].normalized is not None and caller not in queued:
                        todo.append(caller)
                        queued.add(caller)

    def dynamic_nodes(self) -> list[FunctionNode[N]]:
        return [n for n in self.nodes.values() if n.dynamic]
