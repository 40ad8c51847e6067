"""Which names a statement reads, binds and mutates.

Terms (all are sets of names of the *analysed* function's scope):
  * **reads**: names loaded. Reads inside a lambda, comprehension or nested ``def``/``class``
    count only for free names (a comprehension's targets and a lambda's parameters are local to
    it; so are a nested function's parameters and assignments).
  * **writes**: names the statement definitely (re)binds when it completes: plain name targets
    (also inside tuple/list/starred unpacking), ``for`` targets, ``with ... as``, ``except ... as``,
    imports, ``def``/``class`` names, ``case`` captures, unconditional walrus targets, and names
    unbound by ``del x`` (also listed in **deleted**). ``x += 1`` reads and writes ``x``.
  * **may_writes**: ``writes``, plus names the statement may bind (a walrus under ``and``/``or``,
    a conditional expression or a comprehension), plus ``mutated``.
  * **mutated**: names whose *object* is changed in place: ``x[i] = v``, ``x.a = v``, ``del x[i]``,
    ``x[i] += v``, a call of a container mutator (``x.append(v)``, ``x.update(d)``, ...) or of an
    in-place tensor method (a name ending in ``_``: ``x.add_(1)``), also through a chain
    (``self.buf.add_(1)`` mutates ``self``).
  * **composite_reads / composite_writes**: attribute/subscript chains rooted at a name, rendered
    by ``ast.unparse`` (``self.x``, ``self.blocks[i]``, ``d[k]``); every composite prefix of a read
    chain is read. A composite is written when it is a store/del target or mutated in place.

``activity_of`` looks at one CFG node: a simple statement, or only the *header* of a compound
statement (``if``/``while``: the test; ``for``: the iterable and target; ``with``: the items;
``except``: the type and name; ``match``: the subject; ``case``: pattern and guard).
``activity_of_block`` covers a list of statements with all nested bodies.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from dycl_jax.analysis.facts import CONTAINER_MUTATORS

# Methods that mutate their receiver (list / dict / set); `add` and `sort` are also the names of
# out-of-place tensor methods, counted anyway (over-approximating mutation is safe).
MUTATING_METHODS = CONTAINER_MUTATORS


@dataclasses.dataclass(frozen=True)
class Activity:
    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    may_writes: frozenset[str] = frozenset()
    mutated: frozenset[str] = frozenset()
    deleted: frozenset[str] = frozenset()
    composite_reads: frozenset[str] = frozenset()
    composite_writes: frozenset[str] = frozenset()


def _mutates(method: str) -> bool:
    return method in MUTATING_METHODS or (method.endswith("_") and not method.startswith("_"))


class _Ctx(NamedTuple):
    local: frozenset[str] = frozenset()  # names local to an enclosing lambda / comprehension
    conditional: bool = False  # a walrus here may not run
    in_lambda: bool = False  # a walrus here binds the lambda's scope, not ours


_TOP = _Ctx()


def _root(e: ast.expr) -> ast.expr:
    while isinstance(e, ast.Attribute | ast.Subscript):
        e = e.value
    return e


def _mentions(e: ast.expr, names: frozenset[str]) -> bool:
    """Does ``e`` read one of ``names`` (then ``e`` means nothing outside their scope)?"""
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(e))


class _Scan:
    """Accumulates activity over one or more statements."""

    def __init__(self) -> None:
        self.reads: set[str] = set()
        self.writes: set[str] = set()
        self.maybe: set[str] = set()  # conditional walrus bindings
        self.mutated: set[str] = set()
        self.deleted: set[str] = set()
        self.creads: set[str] = set()
        self.cwrites: set[str] = set()
        self.declared: set[str] = set()  # global / nonlocal

    def activity(self) -> Activity:
        return Activity(
            frozenset(self.reads),
            frozenset(self.writes),
            frozenset(self.writes | self.maybe | self.mutated),
            frozenset(self.mutated),
            frozenset(self.deleted),
            frozenset(self.creads),
            frozenset(self.cwrites),
        )

    # -- expressions -----------------------------------------------------------------------------

    def _composite(self, e: ast.expr, ctx: _Ctx, into: set[str]) -> str | None:
        """Record ``e`` (an attribute/subscript chain) in ``into``; returns its root name."""
        root = _root(e)
        if not isinstance(root, ast.Name) or root.id in ctx.local:
            return None
        if e is not root and not (ctx.local and _mentions(e, ctx.local)):
            into.add(ast.unparse(e))
        return root.id

    def _mutate(self, obj: ast.expr, ctx: _Ctx) -> None:
        root = self._composite(obj, ctx, self.cwrites)
        if root is not None:
            self.mutated.add(root)

    def load(self, e: ast.expr, ctx: _Ctx = _TOP) -> None:
        if isinstance(e, ast.Name):
            if e.id not in ctx.local:
                self.reads.add(e.id)
        elif isinstance(e, ast.Attribute | ast.Subscript):
            self._composite(e, ctx, self.creads)
            self.load(e.value, ctx)
            if isinstance(e, ast.Subscript):
                self.load(e.slice, ctx)
        elif isinstance(e, ast.Call):
            if isinstance(e.func, ast.Attribute) and _mutates(e.func.attr):
                self._mutate(e.func.value, ctx)
            self.load(e.func, ctx)
            for arg in e.args:
                self.load(arg, ctx)
            for kw in e.keywords:
                self.load(kw.value, ctx)
        elif isinstance(e, ast.NamedExpr):
            self.load(e.value, ctx)
            assert isinstance(e.target, ast.Name)
            if not ctx.in_lambda:
                (self.maybe if ctx.conditional else self.writes).add(e.target.id)
        elif isinstance(e, ast.BoolOp):
            self.load(e.values[0], ctx)
            for v in e.values[1:]:
                self.load(v, ctx._replace(conditional=True))
        elif isinstance(e, ast.IfExp):
            self.load(e.test, ctx)
            self.load(e.body, ctx._replace(conditional=True))
            self.load(e.orelse, ctx._replace(conditional=True))
        elif isinstance(e, ast.Lambda):
            self._defaults(e.args, ctx)
            inner = _Ctx(ctx.local | _arg_names(e.args), True, True)
            self.load(e.body, inner)
        elif isinstance(e, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            self._comprehension(e, ctx)
        else:
            for child in ast.iter_child_nodes(e):
                if isinstance(child, ast.expr):
                    self.load(child, ctx)

    def _comprehension(
        self, e: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp, ctx: _Ctx
    ) -> None:
        # The first iterable is evaluated in the enclosing scope; the rest inside the comprehension.
        self.load(e.generators[0].iter, ctx)
        local = set(ctx.local)
        for i, gen in enumerate(e.generators):
            inner = _Ctx(frozenset(local), True, ctx.in_lambda)
            if i:
                self.load(gen.iter, inner)
            local |= bound_names(gen.target)
            inner = _Ctx(frozenset(local), True, ctx.in_lambda)
            for cond in gen.ifs:
                self.load(cond, inner)
        if isinstance(e, ast.DictComp):
            self.load(e.key, inner)
            self.load(e.value, inner)
        else:
            self.load(e.elt, inner)

    def _defaults(self, args: ast.arguments, ctx: _Ctx) -> None:
        for d in [*args.defaults, *args.kw_defaults]:
            if d is not None:
                self.load(d, ctx)

    # -- targets ---------------------------------------------------------------------------------

    def store(self, t: ast.expr, ctx: _Ctx = _TOP) -> None:
        if isinstance(t, ast.Name):
            self.writes.add(t.id)
        elif isinstance(t, ast.Tuple | ast.List):
            for elt in t.elts:
                self.store(elt, ctx)
        elif isinstance(t, ast.Starred):
            self.store(t.value, ctx)
        elif isinstance(t, ast.Attribute | ast.Subscript):
            self._mutate(t, ctx)
            self.load(t.value, ctx)
            if isinstance(t, ast.Subscript):
                self.load(t.slice, ctx)
        else:  # not a valid target; evaluate it
            self.load(t, ctx)

    def delete(self, t: ast.expr) -> None:
        if isinstance(t, ast.Name):
            # `del h` needs h bound (NameError otherwise): a use as well as a kill, so a region
            # that computes h hands it to the host statement that deletes it
            self.reads.add(t.id)
            self.writes.add(t.id)
            self.deleted.add(t.id)
        elif isinstance(t, ast.Tuple | ast.List):
            for elt in t.elts:
                self.delete(elt)
        else:
            self.store(t)

    # -- statements ------------------------------------------------------------------------------

    def header(self, s: ast.AST) -> None:
        """Activity of ``s`` alone (a compound statement: its header only)."""
        if isinstance(s, ast.Assign):
            self.load(s.value)
            for t in s.targets:
                self.store(t)
        elif isinstance(s, ast.AugAssign):
            self.load(s.value)
            self.load(s.target)
            self.store(s.target)
        elif isinstance(s, ast.AnnAssign):
            if s.value is not None:
                self.load(s.value)
                self.store(s.target)
        elif isinstance(s, ast.Delete):
            for t in s.targets:
                self.delete(t)
        elif isinstance(s, ast.For | ast.AsyncFor):
            self.load(s.iter)
            self.store(s.target)
        elif isinstance(s, ast.If | ast.While):
            self.load(s.test)
        elif isinstance(s, ast.With | ast.AsyncWith):
            for item in s.items:
                self.load(item.context_expr)
                if item.optional_vars is not None:
                    self.store(item.optional_vars)
        elif isinstance(s, ast.ExceptHandler):
            if s.type is not None:
                self.load(s.type)
            if s.name is not None:
                self.writes.add(s.name)
        elif isinstance(s, ast.Match):
            self.load(s.subject)
        elif isinstance(s, ast.match_case):
            captures: set[str] = set()
            self._pattern(s.pattern, captures)
            if s.guard is not None:
                self.load(s.guard, _Ctx(frozenset(captures), True))
            self.writes |= captures
        elif isinstance(s, ast.Import | ast.ImportFrom):
            for alias in s.names:
                if alias.name != "*":
                    self.writes.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self._definition(s)
        elif isinstance(s, ast.Global | ast.Nonlocal):
            self.declared.update(s.names)
        elif isinstance(s, ast.Assert):
            self.load(s.test)
            if s.msg is not None:
                self.load(s.msg, _Ctx(conditional=True))
        elif isinstance(s, ast.Try | ast.TryStar):
            pass  # the entry node does nothing
        else:  # Expr, Return, Raise, Pass, Break, Continue, ...: evaluate the expressions
            for child in ast.iter_child_nodes(s):
                if isinstance(child, ast.expr):
                    self.load(child)

    def _pattern(self, p: ast.pattern, captures: set[str]) -> None:
        if isinstance(p, ast.MatchValue):
            self.load(p.value)
        elif isinstance(p, ast.MatchClass):
            self.load(p.cls)
        elif isinstance(p, ast.MatchMapping):
            for key in p.keys:
                self.load(key)
            if p.rest is not None:
                captures.add(p.rest)
        elif isinstance(p, ast.MatchStar | ast.MatchAs) and p.name is not None:
            captures.add(p.name)
        for child in ast.iter_child_nodes(p):
            if isinstance(child, ast.pattern):
                self._pattern(child, captures)

    def _definition(self, s: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        for dec in s.decorator_list:
            self.load(dec)
        body = _Scan()
        body.block(s.body)
        if isinstance(s, ast.ClassDef):
            for base in s.bases:
                self.load(base)
            for kw in s.keywords:
                self.load(kw.value)
            # A class body reads enclosing names until it binds its own, and its methods do not
            # see class-level names: every read may be one of ours (over-approximated).
            self.reads |= body.reads
        else:
            self._defaults(s.args, _TOP)
            for a in _all_args(s.args):
                if a.annotation is not None:
                    self.load(a.annotation)
            if s.returns is not None:
                self.load(s.returns)
            local = (_arg_names(s.args) | body.writes | body.maybe) - body.declared
            self.reads |= body.reads - local
        self.writes.add(s.name)

    def block(self, stmts: Iterable[ast.stmt]) -> None:
        for s in stmts:
            self.header(s)
            if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for field in ("body", "orelse", "finalbody"):
                self.block(getattr(s, field, ()))
            if isinstance(s, ast.Try | ast.TryStar):
                for handler in s.handlers:
                    self.header(handler)
                    self.block(handler.body)
            elif isinstance(s, ast.Match):
                for case in s.cases:
                    self.header(case)
                    self.block(case.body)


def _all_args(args: ast.arguments) -> list[ast.arg]:
    extra = [a for a in (args.vararg, args.kwarg) if a is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *extra]


def _arg_names(args: ast.arguments) -> frozenset[str]:
    return frozenset(a.arg for a in _all_args(args))


def bound_names(target: ast.expr) -> frozenset[str]:
    """Names a store to ``target`` binds (``a, (b, *c)`` -> a, b, c; ``x.y`` binds none)."""
    if isinstance(target, ast.Name):
        return frozenset((target.id,))
    if isinstance(target, ast.Tuple | ast.List):
        return frozenset().union(*(bound_names(e) for e in target.elts))
    if isinstance(target, ast.Starred):
        return bound_names(target.value)
    return frozenset()


def iteration_bindings(node: ast.AST) -> frozenset[str]:
    """Names a ``for`` header or ``case`` binds only on entry to its body (see ``cfg``)."""
    if isinstance(node, ast.For | ast.AsyncFor):
        return bound_names(node.target)
    if isinstance(node, ast.match_case):
        captures: set[str] = set()
        _Scan()._pattern(node.pattern, captures)
        return frozenset(captures)
    return frozenset()


def activity_of(node: ast.AST) -> Activity:
    """Activity of one simple statement, or of a compound statement's header only."""
    scan = _Scan()
    scan.header(node)
    return scan.activity()


def activity_of_block(stmts: Sequence[ast.stmt]) -> Activity:
    """Activity of ``stmts`` including every nested body (reads are all reads, not only the
    upward-exposed ones)."""
    scan = _Scan()
    scan.block(stmts)
    return scan.activity()
