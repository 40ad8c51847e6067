"""Collision-free fresh names for synthesized temporaries and regions."""

from __future__ import annotations

import ast
import itertools


class Namer:
    """Hands out ``prefix_N`` names that never collide with names in the user's function."""

    def __init__(self, fn_node: ast.AST) -> None:
        self._taken = {n.id for n in ast.walk(fn_node) if isinstance(n, ast.Name)}
        self._taken |= {a.arg for a in ast.walk(fn_node) if isinstance(a, ast.arg)}
        self._counters: dict[str, itertools.count[int]] = {}

    def fresh(self, prefix: str) -> str:
        counter = self._counters.setdefault(prefix, itertools.count())
        while True:
            name = f"{prefix}_{next(counter)}"
            if name not in self._taken:
                self._taken.add(name)
                return name
