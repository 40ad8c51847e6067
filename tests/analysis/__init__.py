"""Analysis unit tests: tiny inline functions, no tensors, compared as sets of names.

Shared helpers: ``parse`` a function from source, ``find`` one of its statements by its source
text (a compound statement by its header line, e.g. ``"if e > 0:"``).
"""

from __future__ import annotations

import ast
import textwrap


def parse(src: str) -> ast.FunctionDef:
    fn = ast.parse(textwrap.dedent(src)).body[0]
    assert isinstance(fn, ast.FunctionDef)
    return fn


def _position(node: ast.AST) -> tuple[int, int]:
    if isinstance(node, ast.match_case):  # has no position of its own
        node = node.pattern
    return node.lineno, node.col_offset  # type: ignore[attr-defined]


def find(fn: ast.AST, text: str, nth: int = 0) -> ast.AST:
    """The ``nth`` statement (or except clause / match case) whose first source line is ``text``."""
    found = sorted(
        (
            node
            for node in ast.walk(fn)
            if isinstance(node, ast.stmt | ast.ExceptHandler | ast.match_case)
            and node is not fn
            and ast.unparse(node).splitlines()[0] == text
        ),
        key=_position,
    )
    assert len(found) > nth, f"{text!r} not found: {len(found)} matches"
    return found[nth]
