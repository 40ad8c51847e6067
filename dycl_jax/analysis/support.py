"""Constructs dycl_jax refuses, each with a reason and a hint. Checked before any rewriting."""

from __future__ import annotations

import ast

from dycl_jax.analysis.source import ParsedFunction
from dycl_jax.errors import UnsupportedConstructError

_REFUSED: dict[type, tuple[str, str]] = {
    ast.Yield: ("generator (yield) in forward", "return a list or tuple instead of yielding"),
    ast.YieldFrom: ("generator (yield from) in forward", "return a list or tuple instead"),
    ast.Global: ("write to a global variable", "keep state on the module or return it"),
    ast.Nonlocal: ("nonlocal write", "return the value instead of writing an enclosing scope"),
    ast.Await: ("await in forward", "forward must be synchronous"),
    ast.AsyncFor: ("async for in forward", "forward must be synchronous"),
    ast.AsyncWith: ("async with in forward", "forward must be synchronous"),
}


def check(parsed: ParsedFunction) -> None:
    """Raise UnsupportedConstructError for the first refused construct in ``parsed``."""
    for node in parsed.nodes:
        if (
            isinstance(node, ast.FunctionDef | ast.Lambda | ast.ClassDef)
            and node is not parsed.node
        ):
            # Nested definitions are compiled as ordinary Python; their bodies are not forward's.
            continue
        refused = _REFUSED.get(type(node))
        if isinstance(node, ast.Global) and not set(node.names) & parsed.assigned_names():
            continue  # `global CALLS` read only: the declaration changes nothing
        if refused is not None:
            what, hint = refused
            raise UnsupportedConstructError(
                f"{what} is not supported", parsed.location(node), hint=hint
            )
