"""Collision-free fresh names for synthesized temporaries and regions."""

from __future__ import annotations

import ast
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

    def fresh(self, prefix: str) -> str:
        counter = self._counters.setdefault(prefix, itertools.count())
        while True:
            name = f"{prefix}_{next(counter)}"
            if name not in self._taken:
                self._taken.add(name)
                return name
