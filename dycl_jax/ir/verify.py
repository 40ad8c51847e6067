"""Invariants of the program IR, checked after each stage that produces or transforms one.

``verify(program)`` raises :class:`~dycl_jax.errors.InternalError` (stage "verify") naming the
program and the broken invariant:

1. every region call names a region of the program, every region is called, and a call's
   arguments and targets are the region's live-in and live-out;
2. every region live-in is assigned on every path that reaches the call (the host presets the
   program's ``undefined`` names);
3. regions hold only branch-free tensor code: no return/raise/try/yield, no break/continue
   outside a loop of their own, no call into the runtime library;
4. host statements do no tensor compute: no arithmetic, comparison or method call (other than a
   container method) on a local the analysis typed as a tensor (``tensor_locals``).

The checks are cheap (one parse of the host source, one CFG and definite-assignment pass) and run
on every conversion when ``Config.verify`` is on (the test suite turns it on everywhere).
"""

from __future__ import annotations

import ast

from dycl_jax.analysis import aliasing, cfg, definite, facts
from dycl_jax.errors import InternalError, SourceLocation
from dycl_jax.ir import emit
from dycl_jax.ir.code import to_ast
from dycl_jax.ir.program import RUNTIME, If, Program, Simple, While, walk

# Methods a host statement may call on a tensor-typed local: reads back to Python (``.item()``),
# and container methods (a list or dict that holds tensors is typed as a tensor).
_HOST_METHODS = (
    facts.CONVERSION_METHODS
    | facts.CONTAINER_MUTATORS
    | frozenset({"index", "count", "copy", "keys", "values", "items", "get"})
)


def verify(program: Program, tensor_locals: frozenset[str] = frozenset()) -> None:
    _check_calls(program)
    _check_defined(program)
    for r in program.regions:
        _check_region_body(program, r.name)
    if tensor_locals:
        _check_host_compute(program, tensor_locals)


def _fail(program: Program, msg: str, line: int | None = None) -> InternalError:
    loc = SourceLocation(program.filename, line or program.lineno, function=program.name)
    return InternalError(f"{program.qualname}: {msg}", loc, stage="verify")


def _check_calls(program: Program) -> None:
    names = [r.name for r in program.regions]
    if len(set(names)) != len(names):
        raise _fail(program, f"duplicate region names {names}")
    called: dict[str, int] = {}
    for c in program.calls():
        if c.region not in names:
            raise _fail(program, f"call of unknown region {c.region}", c.line)
        r = program.region(c.region)
        if c.args != r.live_in or c.outs != r.live_out:
            raise _fail(
                program,
                f"call of {c.region} passes {c.args} -> {c.outs}, region has "
                f"{r.live_in} -> {r.live_out}",
                c.line,
            )
        called[c.region] = called.get(c.region, 0) + 1
    for r in program.regions:
        if called.get(r.name) != 1:
            raise _fail(program, f"region {r.name} is called {called.get(r.name, 0)} times")


def _check_defined(program: Program) -> None:
    tree = ast.parse(emit.host_source(program))
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    graph = cfg.build(fn)
    defs = definite.analyze(graph, {*program.param_names, RUNTIME, *program.undefined})
    regions = {r.name for r in program.regions}
    for node in graph.nodes:
        s = node.ast_node
        call = s.value if isinstance(s, ast.Assign | ast.Expr) else None
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id in regions
        ):
            continue
        have = defs.defined_in(node)
        missing = [a.id for a in call.args if isinstance(a, ast.Name) and a.id not in have]
        if missing:
            raise _fail(
                program, f"{call.func.id} reads {missing}, not assigned on every path before it"
            )


def _check_region_body(program: Program, name: str) -> None:
    r = program.region(name)

    def visit(node: ast.AST, in_loop: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.Lambda | ast.ClassDef):
            return  # nested definitions run as ordinary Python when called
        bad = None
        if isinstance(node, ast.Return | ast.Raise | ast.Try | ast.Yield | ast.YieldFrom):
            bad = type(node).__name__.lower()
        elif isinstance(node, ast.Global | ast.Nonlocal):
            bad = type(node).__name__.lower()
        elif isinstance(node, ast.Break | ast.Continue) and not in_loop:
            bad = f"{type(node).__name__.lower()} outside a loop of the region"
        elif isinstance(node, ast.Name) and node.id == RUNTIME:
            bad = "a call into the runtime library"
        if bad is not None:
            raise _fail(program, f"region {name} contains {bad}", getattr(node, "lineno", None))
        loop = in_loop or isinstance(node, ast.For | ast.While)
        for child in ast.iter_child_nodes(node):
            visit(child, loop)

    for code in r.body:
        for s in to_ast(code):
            visit(s, False)


def _check_host_compute(program: Program, tensors: frozenset[str]) -> None:
    def is_tensor(e: ast.AST) -> bool:
        return isinstance(e, ast.Name) and e.id in tensors

    for s in walk(program.body):
        if isinstance(s, Simple):
            # a def made on the host computes nothing until called
            defs = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
            nodes = [
                n
                for st in to_ast(s.code)
                if not isinstance(st, defs)
                for n in aliasing.walk_no_defs(st)
            ]
            line = s.code.line
        elif isinstance(s, If | While):
            nodes = list(ast.walk(ast.parse(s.test, mode="eval")))
            line = s.line
        else:
            continue
        for n in nodes:
            what = None
            if isinstance(n, ast.BinOp) and (is_tensor(n.left) or is_tensor(n.right)):
                what = "arithmetic"
            elif isinstance(n, ast.UnaryOp) and not isinstance(n.op, ast.Not):
                what = "arithmetic" if is_tensor(n.operand) else None
            elif isinstance(n, ast.Compare) and not all(
                isinstance(o, ast.Is | ast.IsNot | ast.In | ast.NotIn) for o in n.ops
            ):
                if any(is_tensor(x) for x in (n.left, *n.comparators)):
                    what = "a comparison"
            elif (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and is_tensor(n.func.value)
                and n.func.attr not in _HOST_METHODS
            ):
                what = f"a .{n.func.attr}() call"
            if what is not None:
                raise _fail(program, f"host statement does {what} on a tensor", line)
