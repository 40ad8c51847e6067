"""Collision-free fresh names for synthesized temporaries and regions."""

from __future__ import annotations

import ast
import itertools


class Namer:
    """Hands out ``prefix_N`` names that never collide with names in the user's function."""

    def __init__(self, fn_node: ast.AST) -> None:
        self._taken = {n.id for n in ast.walk(fn_node) if isinstance(n, ast.Name)}
        self._taken |= {a.arg for a in ast.walk(fn_node) if isinstance(a, ast.arg)}
        self._counter = itertools.count()

    def fresh(self, prefix: str) -> str:
        while True:
            name = f"{prefix}_{next(self._counter)}"
            if name not in self._taken:
                self._taken.add(name)
                return name
