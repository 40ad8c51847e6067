"""Read a function's source and parse it, keeping the user's file and line numbers on every node.

``parse(fn)`` returns a :class:`ParsedFunction`: the ``ast.FunctionDef`` (line numbers already
shifted to the real file), the file name, and the namespaces the body resolves names in (the
function's globals plus a snapshot of its closure cells).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
from typing import Any

from dycl_jax.analysis.inline import bind_defaults, inline_closures
from dycl_jax.errors import SourceLocation, SourceUnavailableError


@dataclasses.dataclass(frozen=True)
class ParsedFunction:
    fn: types.FunctionType
    node: ast.FunctionDef
    filename: str
    globals: dict[str, Any]
    closure: dict[str, Any]
    # Every node of the parsed function (ast.walk order), walked once: the analyses that scan the
    # whole function share it.
    nodes: tuple[ast.AST, ...] = ()
    # The decorators written on the def (removed from ``node``), as source text.
    decorators: tuple[str, ...] = ()

    @property
    def qualname(self) -> str:
        return self.fn.__qualname__

    def location(self, node: ast.AST | None = None) -> SourceLocation:
        lineno = getattr(node, "lineno", None) or self.node.lineno
        return SourceLocation(
            self.filename, lineno, getattr(node, "col_offset", None), self.fn.__name__
        )

    def assigned_names(self) -> set[str]:
        """Every name the function binds: assignment targets (and ``del``), ``except ... as``,
        imports, nested ``def``/``class`` names, match captures."""
        names: set[str] = set()
        for node in self.nodes:
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
                names.add(node.id)
            else:
                names.update(self._binds(node))
        return names

    def _binds(self, node: ast.AST) -> list[str]:
        """The names ``node`` binds other than as an ``ast.Name`` target: ``except ... as``,
        imports, nested ``def``/``class`` names, match captures."""
        if isinstance(node, ast.ExceptHandler) and node.name:
            return [node.name]
        if isinstance(node, ast.Import | ast.ImportFrom):
            return [a.asname or a.name.split(".")[0] for a in node.names if a.name != "*"]
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node is not self.node:
            return [node.name]
        if isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            return [node.name]  # `case other:` binds other
        if isinstance(node, ast.MatchMapping) and node.rest:
            return [node.rest]
        return []

    def assignments(self, name: str, unpacked: bool = False) -> list[ast.expr] | None:
        """The values local ``name`` is assigned, when every binding of it is a plain assignment
        (``name = v``; with ``unpacked``, also its place in ``a, b = v1, v2``); None when it is a
        parameter or has another binding (a loop target, ``del``, ``+=``, ``with ... as``, an
        unpacked call result)."""
        a = self.node.args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *(x for x in (a.vararg, a.kwarg) if x)]
        if any(p.arg == name for p in params):
            return None
        values: list[ast.expr] = []
        bindings = 0
        for n in self.nodes:
            if isinstance(n, ast.Name):
                bindings += n.id == name and not isinstance(n.ctx, ast.Load)
            elif name in self._binds(n):
                return None
            elif isinstance(n, ast.Assign):
                for t in n.targets:
                    if isinstance(t, ast.Name) and t.id == name:
                        values.append(n.value)
                    elif (  # `outs, steps = [], []`
                        unpacked
                        and isinstance(t, ast.Tuple)
                        and isinstance(n.value, ast.Tuple)
                        and len(t.elts) == len(n.value.elts)
                    ):
                        values += [
                            v
                            for x, v in zip(t.elts, n.value.elts)
                            if isinstance(x, ast.Name) and x.id == name
                        ]
        return values if values and len(values) == bindings else None


def unwrap(fn: Any) -> types.FunctionType:
    """The plain Python function behind a bound method / function, or SourceUnavailableError."""
    f = getattr(fn, "__func__", fn)
    f = inspect.unwrap(f)
    if not isinstance(f, types.FunctionType):
        raise SourceUnavailableError(
            f"{fn!r} is not a Python function (a builtin or C extension?); dycl_jax needs source",
            hint="convert a torch.nn.Module whose forward is written in Python",
        )
    return f


def _explicit_super(fn: ast.FunctionDef) -> None:
    """``super()`` -> ``super(__class__, self)``: the rewritten code runs outside the class body,
    where the zero-argument form has no ``__class__`` cell (the cell's value is in the closure)."""
    args = [*fn.args.posonlyargs, *fn.args.args]
    if not args:
        return
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "super"
            and not node.args
        ):
            node.args = [
                ast.copy_location(ast.Name("__class__", ast.Load()), node),
                ast.copy_location(ast.Name(args[0].arg, ast.Load()), node),
            ]


def parse(fn: Any) -> ParsedFunction:
    """Parse ``fn``'s source. Raises SourceUnavailableError when there is none to read."""
    f = unwrap(fn)
    code = f.__code__
    where = SourceLocation(code.co_filename, code.co_firstlineno, function=f.__name__)
    if f.__name__ == "<lambda>":
        raise SourceUnavailableError(
            "cannot convert a lambda", where, hint="write the computation as a def or a forward"
        )
    try:
        lines, first = inspect.getsourcelines(f)
    except (OSError, TypeError) as e:
        raise SourceUnavailableError(
            f"source of {f.__qualname__} is not available ({e})",
            where,
            hint="define the model in a file (not a REPL, exec or notebook cell without source)",
        ) from None
    src = textwrap.dedent("".join(lines))
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        raise SourceUnavailableError(
            f"cannot parse source of {f.__qualname__}: {e}", where
        ) from None
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        raise SourceUnavailableError(
            f"{f.__qualname__} is not a plain def (async or decorated oddly?)", where
        )
    ast.increment_lineno(tree, first - 1)
    decorators = tuple(ast.unparse(d) for d in node.decorator_list)
    node.decorator_list = []
    _explicit_super(node)
    bind_defaults(node)
    inline_closures(node, code.co_filename)
    closure = {}
    if f.__closure__:
        for name, cell in zip(code.co_freevars, f.__closure__):
            try:
                closure[name] = cell.cell_contents
            except ValueError:  # empty cell
                pass
    return ParsedFunction(
        f, node, code.co_filename, f.__globals__, closure, tuple(ast.walk(node)), decorators
    )
