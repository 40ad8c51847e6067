"""Statements as :class:`~dycl_jax.ir.program.Code` and back, keeping the user's line numbers.

``code_of(stmt)`` unparses a statement and records, for each line of the text, the user line it
came from; ``to_ast(code)`` parses the text again and restores those line numbers on every node,
so a region compiled from IR text still reports the user's file:line in tracebacks and in the
stack traces of captured ATen nodes.
"""

from __future__ import annotations

import ast

from dycl_jax.ir.program import Code

# What a host expression that computes nothing may contain: names, constants, attributes and
# operators on them (no calls, lambdas, walrus or subscripts). The passes that move or stage
# host assignments (``ir.stage``, ``ir.sink``) accept only these.
PURE_NODES = (
    ast.Name,
    ast.Constant,
    ast.Attribute,
    ast.BoolOp,
    ast.UnaryOp,
    ast.BinOp,
    ast.Compare,
    ast.IfExp,
    ast.Tuple,
    ast.expr_context,
    ast.boolop,
    ast.unaryop,
    ast.operator,
    ast.cmpop,
)


def code_of(stmt: ast.stmt) -> Code:
    text = ast.unparse(stmt)
    default = getattr(stmt, "lineno", 1) or 1
    lines = [0] * (text.count("\n") + 1)
    try:
        again = ast.parse(text).body[0]
    except SyntaxError:  # pragma: no cover - unparse output always parses
        again = None
    if again is not None:
        # ast.unparse round-trips the structure, so walking both trees in step pairs each new
        # node with the one it was printed from; the first (outermost) node on a line names it.
        for old, new in zip(ast.walk(stmt), ast.walk(again)):
            old_line = getattr(old, "lineno", None)
            new_line = getattr(new, "lineno", None)
            if old_line and new_line and not lines[new_line - 1]:
                lines[new_line - 1] = old_line
    filled = []
    last = default
    for ln in lines:
        last = ln or last
        filled.append(last)
    return Code(text, tuple(filled))


def expr_text(e: ast.expr) -> str:
    return ast.unparse(e)


def target_text(t: ast.expr) -> str:
    """A for-loop target as written in a header (``i, blk``, not ``(i, blk)``)."""
    if isinstance(t, ast.Tuple) and t.elts:
        parts = [ast.unparse(e) for e in t.elts]
        return parts[0] + "," if len(parts) == 1 else ", ".join(parts)
    return ast.unparse(t)


def to_ast(code: Code) -> list[ast.stmt]:
    """The statements of ``code`` with the user's line numbers on every node."""
    tree = ast.parse(code.text)
    n = len(code.lines)
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt | ast.expr | ast.excepthandler | ast.arg | ast.keyword):
            line = code.lines[min(node.lineno, n) - 1]
            end = node.end_lineno
            node.lineno = line
            node.end_lineno = max(line, code.lines[min(end, n) - 1]) if end else line
    return tree.body
