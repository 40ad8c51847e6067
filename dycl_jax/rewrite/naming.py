"""Collision-free fresh names for synthesized temporaries and regions."""

from __future__ import annotations

import ast
import copy
import itertools
from collections.abc import Iterable


class Namer:
    """Hands out ``prefix_N`` names that never collide with names in the user's function."""

    def __init__(self, fn_node: ast.AST, nodes: Iterable[ast.AST] | None = None) -> None:
        """``nodes``: every node of ``fn_node`` when already walked (default: walk it)."""
        self._taken: set[str] = set()
        for n in ast.walk(fn_node) if nodes is None else nodes:
            if isinstance(n, ast.Name):
                self._taken.add(n.id)
            elif isinstance(n, ast.arg):
                self._taken.add(n.arg)
        self._counters: dict[str, itertools.count[int]] = {}
        self._made: set[str] = set()

    def made(self, name: str) -> bool:
        """Whether ``name`` is a temporary this namer handed out (not the user's)."""
        return name in self._made

    def fresh(self, prefix: str) -> str:
        counter = self._counters.setdefault(prefix, itertools.count())
        while True:
            name = f"{prefix}_{next(counter)}"
            if name not in self._taken:
                self._taken.add(name)
                self._made.add(name)
                return name


def rename_free(node: ast.expr, mapping: dict[str, str]) -> ast.expr:
    """A copy of ``node`` with the free occurrences of ``mapping``'s names renamed (occurrences
    inside a nested lambda or comprehension that binds the name again are left alone)."""
    if not mapping:
        return node
    out: ast.expr = _Rename(mapping).visit(copy.deepcopy(node))
    return out


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.m = mapping

    def _without(self, bound: set[str]) -> _Rename:
        return _Rename({k: v for k, v in self.m.items() if k not in bound})

    def visit_Name(self, n: ast.Name) -> ast.AST:
        if n.id in self.m:
            return ast.copy_location(ast.Name(self.m[n.id], n.ctx), n)
        return n

    def visit_Lambda(self, n: ast.Lambda) -> ast.AST:
        a = n.args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, [a.vararg, a.kwarg])]
        a.defaults = [self.visit(d) for d in a.defaults]  # evaluated where the lambda is made
        a.kw_defaults = [self.visit(d) if d is not None else None for d in a.kw_defaults]
        n.body = self._without({p.arg for p in params}).visit(n.body)
        return n

    def _comprehension(
        self, n: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
    ) -> ast.AST:
        gens = n.generators
        bound = {x.id for g in gens for x in ast.walk(g.target) if isinstance(x, ast.Name)}
        gens[0].iter = self.visit(gens[0].iter)  # evaluated outside the comprehension's scope
        inner = self._without(bound)
        for i, g in enumerate(gens):
            g.target = inner.visit(g.target)
            if i:
                g.iter = inner.visit(g.iter)
            g.ifs = [inner.visit(c) for c in g.ifs]
        if isinstance(n, ast.DictComp):
            n.key, n.value = inner.visit(n.key), inner.visit(n.value)
        else:
            n.elt = inner.visit(n.elt)
        return n

    def visit_ListComp(self, n: ast.ListComp) -> ast.AST:
        return self._comprehension(n)

    def visit_SetComp(self, n: ast.SetComp) -> ast.AST:
        return self._comprehension(n)

    def visit_DictComp(self, n: ast.DictComp) -> ast.AST:
        return self._comprehension(n)

    def visit_GeneratorExp(self, n: ast.GeneratorExp) -> ast.AST:
        return self._comprehension(n)
