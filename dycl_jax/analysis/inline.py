"""Inline the local functions that change forward's variables (closures writing what they read).

A function defined inside forward is traced into each region that calls it
(``rewrite.regions``): a write it makes to one of forward's variables (``outs.append(h)`` on a
list of forward, ``lengths[i] = k``, ``self.steps = n``) would then happen once, at capture, on a
traced copy, and be lost without a word. The IBM seq2seq ``DecoderRNN`` collects its outputs this
way (``def decode(...): decoder_outputs.append(step_output)``). Such a function is inlined at
every call that is a statement of forward (``decode(...)`` or ``target = decode(...)``): the call
becomes assignments binding its parameters, then its body with its local names renamed apart
(``_dy_decode_1_step``), so the analyses see each write where it happens. Any other use of it (a
call inside an expression, the function passed as a value, a call before its ``def``) is refused
at its line, as is a function that cannot be inlined this way (a ``return`` before its last
statement, ``*args``, nested functions or classes, recursion).
"""

from __future__ import annotations

import ast
import copy
import itertools
from collections.abc import Iterator

from dycl_jax.analysis.aliasing import chain_root
from dycl_jax.analysis.facts import CONTAINER_MUTATORS
from dycl_jax.errors import SourceLocation, UnsupportedConstructError

# Methods that change the object they are called on: containers' (deques' too); tensors'
# in-place ops end in _ (see _writes_free).
_MUTATORS = CONTAINER_MUTATORS | {
    "appendleft", "extendleft", "popleft", "rotate", "__setitem__", "__delitem__",
}  # fmt: skip

_HINT = (
    "make it a method that returns what it computes (and update forward's variables in "
    "forward), or call it as a statement (`f(...)` or `y = f(...)`)"
)


def inline_closures(fn: ast.FunctionDef, filename: str) -> None:
    """Inline, in place, every local function of ``fn`` that writes one of ``fn``'s variables."""
    defs: dict[str, ast.FunctionDef] = {}
    for d in _local_functions(fn):
        defs.setdefault(d.name, d)
    writing = _writing(defs)
    if not writing:
        return
    for name in writing:  # bound once: the def every call reaches is known
        binds = [
            n
            for n in _outside(fn, defs[name])
            if (isinstance(n, ast.Name) and n.id == name and not isinstance(n.ctx, ast.Load))
            or (isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name and n is not fn)
        ]
        if binds:
            raise UnsupportedConstructError(
                f"{name}, a function defined inside {fn.name} that changes its variables, is "
                "bound more than once",
                SourceLocation(filename, binds[0].lineno, None, fn.name),
                hint=_HINT,
            )
    counter = itertools.count(1)
    order = sorted(writing, key=lambda n: defs[n].lineno)
    for name in order:
        _check_inlinable(
            defs[name], name, SourceLocation(filename, defs[name].lineno, None, fn.name)
        )
    # A writer's inlined body may call another writer (inlined earlier): again, to a fixpoint
    # (recursion is refused, so each round removes a level of nesting).
    for _ in range(len(order) + 1):
        made = 0
        for name in order:
            inliner = _Inliner(defs[name], filename, fn.name, counter)
            inliner.block_of(fn)
            made += inliner.made
        if not made:
            break
    for name in order:
        d = defs[name]
        others = [defs[w] for w in writing if w != name]  # inlined too: their bodies never run
        for node in _outside(fn, d, *others):
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load):
                raise UnsupportedConstructError(
                    f"{name}, a function defined inside {fn.name}, changes {fn.name}'s variables "
                    "and is used here other than as a statement call",
                    SourceLocation(filename, node.lineno, node.col_offset, fn.name),
                    hint=_HINT,
                )


def bind_defaults(fn: ast.FunctionDef) -> None:
    """In place: each default of a function defined inside ``fn`` (a ``def``, or a ``lambda``
    bound to a name) that is not a constant is computed into a fresh local just before the
    definition (``_dy_default_1 = x.max()``; ``f = lambda z, s=_dy_default_1: ...``). Python
    evaluates defaults once, where the function is defined; regions re-create the local functions
    they use (see ``rewrite.regions``), which would evaluate the default again, on the values
    its names hold then."""
    taken = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
    counter = itertools.count(1)

    def fresh() -> str:
        while (name := f"_dy_default_{next(counter)}") in taken:
            pass
        taken.add(name)
        return name

    def args_of(s: ast.stmt) -> ast.arguments | None:
        if isinstance(s, ast.FunctionDef) and s is not fn:
            return s.args
        if (
            isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name)
            and isinstance(s.value, ast.Lambda)
        ):
            return s.value.args
        return None

    def block(stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            args = args_of(s)
            if args is not None:
                for values in (args.defaults, args.kw_defaults):
                    for i, v in enumerate(values):
                        if v is None or isinstance(v, ast.Constant):
                            continue
                        name = fresh()
                        out.append(ast.copy_location(ast.Assign([_store(name)], v), s))
                        values[i] = ast.copy_location(ast.Name(name, ast.Load()), v)
            if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                for field in ("body", "orelse", "finalbody"):
                    nested = getattr(s, field, None)
                    if isinstance(nested, list) and nested and isinstance(nested[0], ast.stmt):
                        setattr(s, field, block(nested))
                if isinstance(s, ast.Try):
                    for h in s.handlers:
                        h.body = block(h.body)
            out.append(s)
        return out

    fn.body = block(fn.body)
    ast.fix_missing_locations(fn)


def _store(name: str) -> ast.Name:
    return ast.Name(name, ast.Store())


def _local_functions(fn: ast.FunctionDef) -> Iterator[ast.FunctionDef]:
    """The defs in ``fn``'s blocks (not those inside another def or class), in source order."""

    def block(stmts: list[ast.stmt]) -> Iterator[ast.FunctionDef]:
        for s in stmts:
            if isinstance(s, ast.FunctionDef):
                yield s
                continue
            if isinstance(s, ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for field in ("body", "orelse", "finalbody"):
                inner = getattr(s, field, None)
                if isinstance(inner, list):
                    yield from block(inner)
            for h in getattr(s, "handlers", ()):
                yield from block(h.body)
            for case in getattr(s, "cases", ()):
                yield from block(case.body)

    yield from block(fn.body)


def _locals(d: ast.FunctionDef) -> set[str]:
    a = d.args
    names = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
    names |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
    for node in ast.walk(d):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.arg) and node not in (*a.posonlyargs, *a.args, *a.kwonlyargs):
            names.add(node.arg)  # a lambda's parameter: renamed with its uses
    return names


def _writes_free(d: ast.FunctionDef, local: set[str], writers: set[str]) -> bool:
    """Whether ``d`` changes an object it does not make: one a name it does not bind holds,
    or one passed in as an argument (``def add(lst, h): lst.append(h)``), directly or by
    calling a writer."""
    a = d.args
    params = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
    rebound = {
        n.id
        for n in ast.walk(d)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del)
    }
    outside = local - (params - rebound)  # names bound to objects made inside

    def free(e: ast.expr) -> bool:
        r = chain_root(e)
        return r is not None and r not in outside

    for node in ast.walk(d):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and free(f.value):
                if f.attr in _MUTATORS or (f.attr.endswith("_") and not f.attr.startswith("_")):
                    return True
            if isinstance(f, ast.Name) and f.id in writers:
                return True
            if any(k.arg == "out" and free(k.value) for k in node.keywords):
                return True
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for t in targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Attribute | ast.Subscript) and free(sub):
                    return True
    return False


def _writing(defs: dict[str, ast.FunctionDef]) -> set[str]:
    """The local functions that write a variable they do not bind (to a fixpoint: calling one
    that does counts)."""
    writers: set[str] = set()
    grew = True
    while grew:
        grew = False
        for name, d in defs.items():
            if name not in writers and _writes_free(d, _locals(d), writers):
                writers.add(name)
                grew = True
    return writers


def _check_inlinable(d: ast.FunctionDef, name: str, where: SourceLocation) -> None:
    def refuse(why: str, node: ast.AST | None = None) -> None:
        line = getattr(node, "lineno", None) or where.lineno
        loc = SourceLocation(where.filename, line, None, where.function)
        raise UnsupportedConstructError(
            f"{name}, a function defined inside {where.function}, changes "
            f"{where.function}'s variables and {why}",
            loc,
            hint="make it a method that returns what it computes, and update the variables in "
            f"{where.function}",
        )

    if d.decorator_list:
        refuse("is decorated")
    if d.args.vararg or d.args.kwarg:
        refuse("takes *args or **kwargs")
    if any(not isinstance(v, ast.Constant) for v in (*d.args.defaults, *d.args.kw_defaults) if v):
        refuse("has a default that is not a constant")
    for i, s in enumerate(d.body):
        for node in ast.walk(s):
            if node is not d and isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Import
                | ast.ImportFrom | ast.Global | ast.Nonlocal | ast.Yield | ast.YieldFrom
            ):  # fmt: skip
                refuse(f"holds a {type(node).__name__} statement", node)
            if isinstance(node, ast.Return) and not (i == len(d.body) - 1 and node is s):
                refuse("returns before its last statement", node)
            if isinstance(node, ast.Name) and node.id == name:
                refuse("calls itself", node)


def _outside(fn: ast.FunctionDef, *skip: ast.FunctionDef) -> Iterator[ast.AST]:
    """Every node of ``fn`` except those inside the local functions ``skip``."""
    todo: list[ast.AST] = [fn]
    while todo:
        node = todo.pop()
        if any(node is d for d in skip):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.names.get(node.arg, node.arg)
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.ExceptHandler:
        if node.name:
            node.name = self.names.get(node.name, node.name)
        self.generic_visit(node)
        return node


class _Replace(ast.NodeTransformer):
    """Replaces one node (by identity) with another."""

    def __init__(self, old: ast.AST, new: ast.AST) -> None:
        self.old = old
        self.new = new

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if node is self.old:
            return self.new
        return super().generic_visit(node)


class _Inliner:
    """Replaces the statement calls of one local function ``d`` in a function's blocks."""

    def __init__(
        self, d: ast.FunctionDef, filename: str, function: str, counter: Iterator[int]
    ) -> None:
        self.d = d
        self.filename = filename
        self.function = function
        self.counter = counter
        self.local = _locals(d)
        self.params = [x.arg for x in (*d.args.posonlyargs, *d.args.args)]
        self.kwonly = [x.arg for x in d.args.kwonlyargs]
        positional_defaults = dict(
            zip(self.params[len(self.params) - len(d.args.defaults) :], d.args.defaults)
        )
        kw_defaults = {k: v for k, v in zip(self.kwonly, d.args.kw_defaults) if v is not None}
        self.defaults: dict[str, ast.expr] = {**positional_defaults, **kw_defaults}
        self.seen_def = False
        self.made = 0  # calls inlined

    def block_of(self, node: ast.AST) -> None:
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                setattr(node, field, self.block(stmts))
        for h in getattr(node, "handlers", ()):
            h.body = self.block(h.body)
        for case in getattr(node, "cases", ()):
            case.body = self.block(case.body)

    def block(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            if s is self.d:
                self.seen_def = True
                out.append(s)
                continue
            if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                out.append(s)  # another scope: a use of d in it is refused by the caller
                continue
            call, target = self._call(s)
            if call is None:
                self.block_of(s)
                out.append(s)
                continue
            self.made += 1
            if not self.seen_def:
                raise UnsupportedConstructError(
                    f"{self.d.name} is called before its def",
                    SourceLocation(self.filename, s.lineno, s.col_offset, self.function),
                )
            if not (isinstance(s, ast.Expr | ast.Assign) and s.value is call):
                # `return f(x), outs`, `t += f(x)`, `y: T = f(x) * 2`: the result in a
                # temporary first, then the statement with the temporary in the call's place
                tmp = f"_dy_{self.d.name}_ret{next(self.counter)}"
                out.extend(self._expand(call, ast.Name(tmp, ast.Store()), s))
                hole = ast.copy_location(ast.Name(tmp, ast.Load()), call)
                rest = _Replace(call, hole).visit(s)
                out.append(rest)
            else:
                out.extend(self._expand(call, target, s))
        return out

    def _call(self, s: ast.stmt) -> tuple[ast.Call | None, ast.expr | None]:
        value: ast.expr | None = None
        target: ast.expr | None = None
        if isinstance(s, ast.Expr):
            value = s.value
        elif isinstance(s, ast.Assign) and len(s.targets) == 1:
            value, target = s.value, s.targets[0]
        elif isinstance(s, ast.AugAssign | ast.AnnAssign | ast.Return):
            value = s.value  # the result goes through a temporary, then the statement runs
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id == self.d.name
        ):
            return value, target
        if isinstance(s, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Return | ast.Expr):
            inner = self._sole_call(s.value)
            if inner is not None:
                return inner, None  # hoisted (see block)
        return None, None

    def _sole_call(self, e: ast.expr | None) -> ast.Call | None:
        """The one call of d inside ``e`` when everything else in ``e`` is names, constants
        and operators (``return step(x), outs``, ``y = step(x) * 2``): evaluating the call
        first changes nothing a closure could observe (it cannot rebind forward's names)."""
        if e is None:
            return None
        calls = [n for n in ast.walk(e) if isinstance(n, ast.Call)]
        if len(calls) != 1 or not isinstance(calls[0].func, ast.Name):
            return None
        call = calls[0]
        if call.func.id != self.d.name:  # type: ignore[attr-defined]
            return None
        inside = {id(n) for n in ast.walk(call)}
        pure = (
            ast.Name, ast.Constant, ast.Tuple, ast.List, ast.BinOp, ast.UnaryOp, ast.Compare,
            ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.Starred,
        )  # fmt: skip
        if all(id(n) in inside or isinstance(n, pure) for n in ast.walk(e)):
            return call
        return None

    def _expand(self, call: ast.Call, target: ast.expr | None, s: ast.stmt) -> list[ast.stmt]:
        k = next(self.counter)
        names = {n: f"_dy_{self.d.name}_{k}_{n}" for n in self.local}
        where = SourceLocation(self.filename, s.lineno, s.col_offset, self.function)
        if any(isinstance(a, ast.Starred) for a in call.args) or any(
            kw.arg is None for kw in call.keywords
        ):
            raise UnsupportedConstructError(
                f"call of {self.d.name} with *args or **kwargs (it changes "
                f"{self.function}'s variables, so dycl_jax inlines it)",
                where,
                hint=_HINT,
            )
        if len(call.args) > len(self.params):
            raise UnsupportedConstructError(f"too many arguments to {self.d.name}", where)
        bound: dict[str, ast.expr] = dict(zip(self.params, call.args))
        for kw in call.keywords:
            assert kw.arg is not None
            if kw.arg in bound or kw.arg not in (*self.params, *self.kwonly):
                raise UnsupportedConstructError(
                    f"argument {kw.arg!r} of {self.d.name} given twice or unknown", where
                )
            bound[kw.arg] = kw.value
        out: list[ast.stmt] = []
        for p, value in bound.items():  # in the call's order: positional, then keywords
            out.append(_at(ast.Assign([ast.Name(names[p], ast.Store())], value), s))
        for p in (*self.params, *self.kwonly):
            if p not in bound:
                if p not in self.defaults:
                    raise UnsupportedConstructError(
                        f"{self.d.name}() missing argument {p!r}", where
                    )
                default = copy.deepcopy(self.defaults[p])
                out.append(_at(ast.Assign([ast.Name(names[p], ast.Store())], default), s))
        body = [_Rename(names).visit(copy.deepcopy(b)) for b in self.d.body]
        result: ast.expr | None = None
        if body and isinstance(body[-1], ast.Return):
            ret = body.pop()
            result = ret.value
            if result is not None and target is None:
                body.append(ast.copy_location(ast.Expr(result), ret))
        out.extend(body)
        if target is not None:
            value = result if result is not None else ast.Constant(None)
            out.append(_at(ast.Assign([target], value), s))
        return out


def _at(stmt: ast.stmt, where: ast.stmt) -> ast.stmt:
    """``stmt`` at ``where``'s line (its new nodes too; moved ones keep their own)."""
    ast.copy_location(stmt, where)
    return ast.fix_missing_locations(stmt)
