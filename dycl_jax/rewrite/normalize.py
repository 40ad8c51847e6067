"""Normalization: pull every host-only operation out of expressions, before regions are split.

After this pass each statement of the function is either

  * **trace** — pure tensor code with only static control flow inside; consecutive trace
    statements become one branch-free region, or
  * **host** — Python control flow and the few operations that must run on the host:
    reading a condition (``__dy.truth(c)``), conversions (``t.item()``, ``int(t)``), calls into
    dynamic callees (``__dy.call(self.block, x)``), side effects (``outs.append(t)``,
    ``self.count += 1``), ``return``/``break``/``continue``/``raise``.

Host expressions never compute on tensors: every tensor sub-expression a host statement needs is
first assigned to a fresh temporary by a trace statement (ANF-style), in evaluation order.
Short-circuit ``and``/``or``, ``not t`` and ``a if t else b`` on tensors become host ``if``s, and
``while <tensor cond>`` becomes ``while True`` with the condition computed at the top of the body
(so ``continue`` re-evaluates it, as in Python).

Consumes a ParsedFunction and its Typer; produces :class:`Normalized`.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import enum
from collections.abc import Iterator
from typing import Any

from dycl_jax.analysis.dependence import HOST, AbsVal, CallKind, Kind, Typer
from dycl_jax.analysis.source import ParsedFunction
from dycl_jax.errors import SourceLocation, UnsupportedConstructError
from dycl_jax.rewrite.naming import Namer

RUNTIME = "_dy"
# Tensor methods whose result is boolean (so indexing with it selects by mask).
_MASK_METHODS = frozenset(
    {
        "bool",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "isnan",
        "isinf",
        "isfinite",
        "logical_and",
        "logical_or",
        "logical_not",
        "logical_xor",
    }
)


class SplitKind(enum.Enum):
    TENSOR_IF = "if on a tensor value"
    TENSOR_WHILE = "while on a tensor value"
    TENSOR_LOOP_BOUND = "loop bound read from a tensor"
    CONVERSION = "tensor converted to a Python value"
    TENSOR_INDEX = "tensor used as a Python index"
    DYNAMIC_CALL = "call into code with tensor-dependent control flow"
    DATA_DEPENDENT_SHAPE = "op whose output shape depends on tensor values"
    HOST_COMPARE = "Python builtin comparing tensors (max/min/sorted)"
    EFFECT = "side effect that must run on every call"
    BOOL_OP = "and/or/not/conditional expression on a tensor"
    CONTROL = "return/break/continue/raise"


@dataclasses.dataclass(frozen=True)
class SplitReason:
    kind: SplitKind
    location: SourceLocation
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value} at {self.location}" + (
            f" ({self.detail})" if self.detail else ""
        )


@dataclasses.dataclass
class Normalized:
    body: list[ast.stmt]
    trace_ids: set[int]  # id() of statements that run inside regions
    reasons: list[SplitReason]  # why host code exists at all (empty: the function is static)
    stmt_reasons: dict[int, SplitReason]  # host statement id -> why it is on the host
    # (object, attribute) pairs forward writes on the host: module state that regions must read
    # as inputs, not as constants baked in at capture time.
    state_attrs: list[tuple[Any, str]] = dataclasses.field(default_factory=list)


def _runtime_call(fn: str, *args: ast.expr) -> ast.expr:
    return ast.Call(ast.Attribute(ast.Name(RUNTIME, ast.Load()), fn, ast.Load()), list(args), [])


def truth(e: ast.expr) -> ast.expr:
    return _runtime_call("truth", e)


def _store(name: str) -> ast.Name:
    return ast.Name(name, ast.Store())


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


class Normalizer:
    def __init__(self, parsed: ParsedFunction, typer: Typer, namer: Namer) -> None:
        self.parsed = parsed
        self.typer = typer
        self.namer = namer
        self.trace_ids: set[int] = set()
        self.reasons: list[SplitReason] = []
        self.stmt_reasons: dict[int, SplitReason] = {}
        self._out: list[list[ast.stmt]] = []
        self.state_attrs: list[tuple[Any, str]] = []
        self._mask_names: set[str] = set()
        self._mask_names = self._find_mask_names()

    def _find_mask_names(self) -> set[str]:
        values: dict[str, list[ast.expr]] = {}
        for n in ast.walk(self.parsed.node):
            if isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.For | ast.NamedExpr):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                value = n.value if not isinstance(n, ast.For) else None
                for t in targets:
                    for name in ast.walk(t):
                        if isinstance(name, ast.Name):
                            plain = isinstance(t, ast.Name) and not isinstance(n, ast.AugAssign)
                            # Anything but `name = value` counts as a non-mask assignment.
                            seen = value if plain and value is not None else ast.Constant(None)
                            values.setdefault(name.id, []).append(seen)
        masks: set[str] = set()
        for _ in range(3):  # masks built from masks
            self._mask_names = masks
            masks = {name for name, vs in values.items() if all(self._is_mask(v) for v in vs)}
        return masks

    def run(self) -> Normalized:
        body = self.block(self.parsed.node.body)
        return Normalized(body, self.trace_ids, self.reasons, self.stmt_reasons, self.state_attrs)

    # ---- emission ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _into(self, stmts: list[ast.stmt]) -> Iterator[None]:
        self._out.append(stmts)
        try:
            yield
        finally:
            self._out.pop()

    def _emit(
        self, stmt: ast.stmt, origin: ast.AST, trace: bool, reason: SplitReason | None = None
    ) -> None:
        ast.copy_location(stmt, origin)
        ast.fix_missing_locations(stmt)
        for sub in ast.walk(stmt):
            if not hasattr(sub, "lineno") or sub.lineno is None:
                ast.copy_location(sub, origin)
        if trace:
            self.trace_ids.add(id(stmt))
        elif reason is not None:
            self.stmt_reasons[id(stmt)] = reason
        self._out[-1].append(stmt)

    def _reason(self, kind: SplitKind, node: ast.AST, detail: str = "") -> SplitReason:
        r = SplitReason(kind, self.parsed.location(node), detail)
        self.reasons.append(r)
        return r

    def _temp(self, kind: AbsVal, prefix: str = "_t") -> str:
        name = self.namer.fresh(prefix)
        self.typer.env[name] = kind
        self.typer.locals.add(name)
        return name

    # ---- classification ----------------------------------------------------------------------

    def _is_local_name(self, e: ast.expr) -> bool:
        return isinstance(e, ast.Name) and e.id in self.typer.locals

    def host_atom_reason(self, e: ast.AST, local_effects_ok: bool = False) -> SplitKind | None:
        """Why ``e`` itself must be evaluated on the host (None when it can be traced)."""
        k = self.typer.kind
        if isinstance(e, ast.Call):
            ck = self.typer.call_kind(e)
            if ck is CallKind.CONVERSION:
                return SplitKind.CONVERSION
            if ck is CallKind.DYNAMIC:
                return SplitKind.DYNAMIC_CALL
            if ck is CallKind.EAGER:
                return SplitKind.DATA_DEPENDENT_SHAPE
            if ck is CallKind.HOST_BUILTIN:
                return SplitKind.HOST_COMPARE
            if ck is CallKind.EFFECT:
                func = e.func
                if (
                    local_effects_ok
                    and isinstance(func, ast.Attribute)
                    and self._is_local_name(func.value)
                ):
                    return None
                return SplitKind.EFFECT
        elif isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
            if k(e.operand).kind == Kind.TENSOR:
                return SplitKind.BOOL_OP
        elif isinstance(e, ast.BoolOp):
            if any(k(v).kind == Kind.TENSOR for v in e.values):
                return SplitKind.BOOL_OP
        elif isinstance(e, ast.IfExp):
            if k(e.test).kind == Kind.TENSOR:
                return SplitKind.BOOL_OP
        elif isinstance(e, ast.Subscript):
            if k(e.value).kind in (Kind.OBJ, Kind.PY) and k(e.slice).kind == Kind.TENSOR:
                return SplitKind.TENSOR_INDEX
            if (
                isinstance(e.ctx, ast.Load)
                and k(e.value).kind == Kind.TENSOR
                and self._is_mask(e.slice)
            ):
                return SplitKind.DATA_DEPENDENT_SHAPE  # x[mask]: shape depends on the mask
        return None

    def _is_mask(self, e: ast.expr) -> bool:
        """True when ``e`` is visibly a boolean tensor (a comparison, a logical combination of
        them, ``.bool()``, or a local only ever assigned such). A mask that is missed is refused
        at capture with the user's line; one wrongly assumed only runs in PyTorch on the host."""
        if isinstance(e, ast.Compare):
            return self.typer.kind(e).kind == Kind.TENSOR
        if isinstance(e, ast.BinOp) and isinstance(e.op, ast.BitAnd | ast.BitOr | ast.BitXor):
            return self._is_mask(e.left) or self._is_mask(e.right)
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Invert):
            return self._is_mask(e.operand)
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute):
            return e.func.attr in _MASK_METHODS and self.typer.kind(e).kind == Kind.TENSOR
        if isinstance(e, ast.Name):
            return e.id in self._mask_names
        return False

    def has_host_atom(self, node: ast.AST, local_effects_ok: bool = False) -> bool:
        for sub in _walk_expr(node):
            if self.host_atom_reason(sub, local_effects_ok) is not None:
                return True
        return False

    def _is_nonlocal_store(self, target: ast.expr) -> bool:
        """Stores that mutate state outside the function: ``self.x = ...``, ``cfg[k] = ...``."""
        if isinstance(target, ast.Attribute):
            return True
        if isinstance(target, ast.Subscript):
            return self.typer.kind(target.value).kind != Kind.TENSOR and not self._is_local_name(
                target.value
            )
        if isinstance(target, ast.Tuple | ast.List):
            return any(self._is_nonlocal_store(t) for t in target.elts)
        if isinstance(target, ast.Starred):
            return self._is_nonlocal_store(target.value)
        return False

    def compound_needs_host(self, s: ast.stmt) -> bool:
        """True when a compound statement cannot be traced whole into a region."""
        loops = 0

        def visit(n: ast.AST, in_loop: bool) -> bool:
            if isinstance(
                n, ast.Return | ast.Raise | ast.Global | ast.Nonlocal | ast.Delete | ast.Try
            ):
                return True
            if isinstance(n, ast.Break | ast.Continue) and not in_loop:
                return True
            if isinstance(n, ast.If | ast.While) and self.typer.kind(n.test).dependent:
                return True
            if isinstance(n, ast.For) and self.typer.kind(n.iter).kind == Kind.HOST:
                return True
            if isinstance(n, ast.While):
                return True  # a static while with a tensor body: keep the loop on the host
            if isinstance(n, ast.Assert) and self.typer.kind(n.test).dependent:
                return True
            if isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                if any(self._is_nonlocal_store(t) for t in targets):
                    return True
            if isinstance(n, ast.expr):
                return self.has_host_atom(n, local_effects_ok=True)
            if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Lambda):
                return False
            child_loop = in_loop or isinstance(n, ast.For | ast.While)
            return any(visit(c, child_loop) for c in ast.iter_child_nodes(n))

        del loops
        return visit(s, False)

    # ---- expressions -------------------------------------------------------------------------

    def lift(self, e: ast.expr) -> ast.expr:
        """``e`` made traceable: host-only parts replaced by temporaries computed before."""
        if not self.has_host_atom(e):
            return e
        if isinstance(e, ast.ListComp | ast.GeneratorExp):
            return self._comprehension(e)
        reason = self.host_atom_reason(e)
        if reason is not None:
            kind = self.typer.kind(e)
            h = self.host_form(e, reason)
            if isinstance(h, ast.Name):
                return h
            tmp = self._temp(kind if reason is not SplitKind.CONVERSION else HOST)
            self._emit(ast.Assign([_store(tmp)], h), e, trace=False, reason=self._reason(reason, e))
            return _load(tmp)
        return _map_children(e, self.lift)

    def as_host(self, e: ast.expr) -> ast.expr:
        """``e`` made evaluable on the host: tensor work moved into a preceding trace statement."""
        if isinstance(e, ast.Tuple | ast.List) and not any(
            isinstance(x, ast.Starred) for x in e.elts
        ):
            return ast.copy_location(type(e)([self.as_host(x) for x in e.elts], ast.Load()), e)
        if isinstance(e, ast.Dict) and all(k is not None for k in e.keys):
            keys: list[ast.expr | None] = [self.as_host(k) for k in e.keys if k is not None]
            return ast.copy_location(ast.Dict(keys, [self.as_host(v) for v in e.values]), e)
        e2 = self.lift(e)
        if isinstance(e2, ast.Name) or not self.typer.reads_tensor(e2):
            return e2
        tmp = self._temp(self.typer.kind(e))
        self._emit(ast.Assign([_store(tmp)], e2), e, trace=True)
        return _load(tmp)

    def as_test(self, e: ast.expr) -> ast.expr:
        kind = self.typer.kind(e).kind
        h = self.as_host(e)
        return truth(h) if kind == Kind.TENSOR else h

    def _comprehension(self, e: ast.ListComp | ast.GeneratorExp) -> ast.expr:
        """A comprehension with host work inside becomes an explicit loop building a list."""
        tmp = self._temp(self.typer.kind(e))
        append = ast.Expr(ast.Call(ast.Attribute(_load(tmp), "append", ast.Load()), [e.elt], []))
        body: ast.stmt = append
        for gen in reversed(e.generators):
            for cond in reversed(gen.ifs):
                body = ast.If(cond, [body], [])
            body = ast.For(gen.target, gen.iter, [body], [])
        ast.fix_missing_locations(ast.copy_location(body, e))
        for sub in ast.walk(body):
            if isinstance(sub, ast.stmt):
                ast.copy_location(sub, e)
        self._emit(ast.Assign([_store(tmp)], ast.List([], ast.Load())), e, trace=False)
        for gen in e.generators:
            self.typer._bind(gen.target, self.typer.iter_element(gen.iter))
        self.stmt(body)
        return _load(tmp)

    def host_form(self, e: ast.expr, reason: SplitKind) -> ast.expr:
        if isinstance(e, ast.Call):
            func = e.func
            if reason is SplitKind.DYNAMIC_CALL:
                func_h: ast.expr = self.as_host(func)
                args = [self._host_arg(a) for a in e.args]
                kws = [ast.keyword(k.arg, self.as_host(k.value)) for k in e.keywords]
                call = _runtime_call("call", func_h, *args)
                call.keywords = kws  # type: ignore[attr-defined]
                return call
            if (
                reason is SplitKind.CONVERSION
                and isinstance(func, ast.Attribute)
                and func.attr == "numpy"
            ):
                # jax arrays have no .numpy(); the runtime makes the same host copy.
                return _runtime_call("numpy", self.as_host(func.value))
            if reason is SplitKind.DATA_DEPENDENT_SHAPE:
                # PyTorch itself runs the op on the host: exact semantics, concrete shapes.
                if (
                    isinstance(func, ast.Attribute)
                    and self.typer.kind(func.value).kind == Kind.TENSOR
                ):
                    head = [self.as_host(func.value), ast.Constant(func.attr)]
                    call = _runtime_call(
                        "eager_method", *head, *[self._host_arg(a) for a in e.args]
                    )
                else:
                    call = _runtime_call(
                        "eager", self.as_host(func), *[self._host_arg(a) for a in e.args]
                    )
                call.keywords = [ast.keyword(k.arg, self.as_host(k.value)) for k in e.keywords]  # type: ignore[attr-defined]
                return call
            if isinstance(func, ast.Attribute):
                func = ast.Attribute(self.as_host(func.value), func.attr, ast.Load())
            else:
                func = self.as_host(func)
            return ast.Call(
                func,
                [self._host_arg(a) for a in e.args],
                [ast.keyword(k.arg, self.as_host(k.value)) for k in e.keywords],
            )
        if isinstance(e, ast.UnaryOp):
            return ast.UnaryOp(ast.Not(), truth(self.as_host(e.operand)))
        if isinstance(e, ast.BoolOp):
            tmp = self._temp(self.typer.kind(e))
            self._emit(ast.Assign([_store(tmp)], self.as_host(e.values[0])), e, trace=False)
            for v in e.values[1:]:
                body: list[ast.stmt] = []
                with self._into(body):
                    self._emit(ast.Assign([_store(tmp)], self.as_host(v)), v, trace=False)
                test = truth(_load(tmp))
                if isinstance(e.op, ast.Or):
                    test = ast.UnaryOp(ast.Not(), test)
                self._emit(
                    ast.If(test, body, []),
                    e,
                    trace=False,
                    reason=self._reason(SplitKind.BOOL_OP, e),
                )
            return _load(tmp)
        if isinstance(e, ast.IfExp):
            tmp = self._temp(self.typer.kind(e))
            test = truth(self.as_host(e.test))
            then: list[ast.stmt] = []
            orelse: list[ast.stmt] = []
            for branch, stmts in ((e.body, then), (e.orelse, orelse)):
                with self._into(stmts):
                    self._emit(ast.Assign([_store(tmp)], self.as_host(branch)), branch, trace=False)
            self._emit(
                ast.If(test, then, orelse),
                e,
                trace=False,
                reason=self._reason(SplitKind.BOOL_OP, e),
            )
            return _load(tmp)
        if isinstance(e, ast.Subscript) and reason is SplitKind.DATA_DEPENDENT_SHAPE:
            return _runtime_call("eager_getitem", self.as_host(e.value), self.as_host(e.slice))
        if isinstance(e, ast.Subscript):
            return ast.Subscript(self.as_host(e.value), self.as_host(e.slice), ast.Load())
        raise AssertionError(f"no host form for {ast.dump(e)}")

    def _host_arg(self, a: ast.expr) -> ast.expr:
        if isinstance(a, ast.Starred):
            return ast.Starred(self.as_host(a.value), ast.Load())
        return self.as_host(a)

    # ---- statements --------------------------------------------------------------------------

    def block(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        with self._into(out):
            for s in stmts:
                self.stmt(s)
        if not out:
            out.append(ast.copy_location(ast.Pass(), stmts[0] if stmts else self.parsed.node))
        return out

    def stmt(self, s: ast.stmt) -> None:
        method = getattr(self, f"_s_{type(s).__name__}", None)
        if method is not None:
            method(s)
            return
        # Anything else (pass, nested def, import, ...) runs on the host as written.
        if isinstance(s, ast.FunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom | ast.Pass):
            self._emit(s, s, trace=False)
            return
        raise UnsupportedConstructError(
            f"statement {type(s).__name__} is not supported in forward", self.parsed.location(s)
        )

    def _simple(self, s: ast.stmt, targets: list[ast.expr], value: ast.expr | None) -> None:
        if any(self._is_nonlocal_store(t) for t in targets):
            reason = self._reason(SplitKind.EFFECT, s, "write to an attribute or outer container")
            self._record_state(targets)
            new = _replace_value(s, self.as_host(value) if value is not None else None)
            new = _map_targets(new, self._host_target)
            self._emit(new, s, trace=False, reason=reason)
            return
        v2 = self.lift(value) if value is not None else None
        new = _replace_value(s, v2)
        trace = self.typer.reads_tensor(new) and not self.has_host_atom(new)
        if trace and isinstance(s, ast.Assign) and _is_rename(s.targets, v2):
            trace = False  # `a = b` moves a reference: a host assignment, not a region
        if not trace and self.has_host_atom(new):
            new = _map_targets(new, self._host_target)
        self._emit(new, s, trace=trace)

    def _record_state(self, targets: list[ast.expr]) -> None:
        for t in targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):
                    base = self.typer.kind(sub.value)
                    for obj in base.values or ():
                        if (obj, sub.attr) not in self.state_attrs:
                            self.state_attrs.append((obj, sub.attr))

    def _host_target(self, t: ast.expr) -> ast.expr:
        if isinstance(t, ast.Attribute):
            return ast.Attribute(self.as_host(t.value), t.attr, ast.Store())
        if isinstance(t, ast.Subscript):
            return ast.Subscript(self.as_host(t.value), self.as_host(t.slice), ast.Store())
        return t

    def _s_Assign(self, s: ast.Assign) -> None:
        self._simple(s, s.targets, s.value)

    def _s_AugAssign(self, s: ast.AugAssign) -> None:
        self._simple(s, [s.target], s.value)

    def _s_AnnAssign(self, s: ast.AnnAssign) -> None:
        if s.value is None:
            return
        self._simple(ast.copy_location(ast.Assign([s.target], s.value), s), [s.target], s.value)

    def _s_Expr(self, s: ast.Expr) -> None:
        e = s.value
        if isinstance(e, ast.Constant):
            return  # docstring / bare constant
        reason = self.host_atom_reason(e)
        if reason is not None and isinstance(e, ast.Call):
            h = self.host_form(e, reason)
            self._emit(ast.Expr(h), s, trace=False, reason=self._reason(reason, e))
            return
        e2 = self.lift(e)
        trace = self.typer.reads_tensor(e2)
        self._emit(ast.Expr(e2), s, trace=trace)

    def _s_Return(self, s: ast.Return) -> None:
        value = self.as_host(s.value) if s.value is not None else None
        self._emit(
            ast.Return(value),
            s,
            trace=False,
            reason=SplitReason(SplitKind.CONTROL, self.parsed.location(s), "return"),
        )

    def _s_Raise(self, s: ast.Raise) -> None:
        exc = self.as_host(s.exc) if s.exc is not None else None
        cause = self.as_host(s.cause) if s.cause is not None else None
        self._emit(ast.Raise(exc, cause), s, trace=False)

    def _s_Break(self, s: ast.stmt) -> None:
        self._emit(s, s, trace=False)

    _s_Continue = _s_Break

    def _s_Delete(self, s: ast.Delete) -> None:
        self._emit(s, s, trace=False)

    def _s_Assert(self, s: ast.Assert) -> None:
        if not self.typer.reads_tensor(s) and not self.has_host_atom(s):
            self._emit(s, s, trace=False)
            return
        if self.typer.kind(s.test).dependent:
            self._reason(SplitKind.TENSOR_IF, s, "assert")
        test = self.as_test(s.test)
        msg = self.as_host(s.msg) if s.msg is not None else None
        self._emit(ast.Assert(test, msg), s, trace=False)

    def _compound(self, s: ast.stmt) -> bool:
        """Emit ``s`` whole as a trace statement when possible; True if done."""
        if not self.compound_needs_host(s) and self.typer.reads_tensor(s):
            self._emit(s, s, trace=True)
            return True
        return False

    def _s_If(self, s: ast.If) -> None:
        if self._compound(s):
            return
        reason = None
        if self.typer.kind(s.test).dependent:
            reason = self._reason(SplitKind.TENSOR_IF, s.test)
        test = self.as_test(s.test)
        self._emit(
            ast.If(test, self.block(s.body), self.block(s.orelse) if s.orelse else []),
            s,
            trace=False,
            reason=reason,
        )

    def _s_While(self, s: ast.While) -> None:
        dependent = self.typer.kind(s.test).dependent
        pre: list[ast.stmt] = []
        with self._into(pre):
            test = self.as_test(s.test)
        if not pre:
            self._emit(
                ast.While(test, self.block(s.body), self.block(s.orelse) if s.orelse else []),
                s,
                trace=False,
            )
            return
        reason = self._reason(SplitKind.TENSOR_WHILE if dependent else SplitKind.CONVERSION, s.test)
        if s.orelse:
            raise UnsupportedConstructError(
                "while ... else with a condition computed from tensors is not supported",
                self.parsed.location(s),
                hint="move the else branch after the loop and track a flag",
            )
        exit_if = ast.copy_location(
            ast.If(ast.UnaryOp(ast.Not(), test), [ast.copy_location(ast.Break(), s)], []), s
        )
        self.stmt_reasons[id(exit_if)] = reason
        body = [*pre, exit_if, *self.block(s.body)]
        true = ast.copy_location(ast.Constant(True), s)
        self._emit(ast.While(true, body, []), s, trace=False, reason=reason)

    def _s_For(self, s: ast.For) -> None:
        if self._compound(s):
            return
        reason = None
        if self.typer.kind(s.iter).kind == Kind.HOST:
            reason = self._reason(SplitKind.TENSOR_LOOP_BOUND, s.iter)
        it = self.as_host(s.iter)
        self._emit(
            ast.For(s.target, it, self.block(s.body), self.block(s.orelse) if s.orelse else []),
            s,
            trace=False,
            reason=reason,
        )

    def _s_With(self, s: ast.With) -> None:
        if self._compound(s):
            return
        items = [ast.withitem(self.as_host(i.context_expr), i.optional_vars) for i in s.items]
        self._emit(ast.With(items, self.block(s.body)), s, trace=False)

    def _s_Try(self, s: ast.Try) -> None:
        handlers = []
        for h in s.handlers:
            typ = self.as_host(h.type) if h.type is not None else None
            handlers.append(
                ast.copy_location(ast.ExceptHandler(typ, h.name, self.block(h.body)), h)
            )
        new = ast.Try(
            self.block(s.body),
            handlers,
            self.block(s.orelse) if s.orelse else [],
            self.block(s.finalbody) if s.finalbody else [],
        )
        self._emit(new, s, trace=False)


def _walk_expr(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk that does not enter nested function bodies / lambdas."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        if isinstance(n, ast.Lambda | ast.FunctionDef | ast.ClassDef) and n is not node:
            continue
        todo.extend(ast.iter_child_nodes(n))


def _map_children(e: ast.expr, f) -> ast.expr:  # type: ignore[no-untyped-def]
    """A copy of ``e`` with each direct expression child replaced by ``f(child)`` (in order)."""
    if isinstance(e, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        return e  # comprehensions are traced or run whole
    new = type(e)()
    for field, value in ast.iter_fields(e):
        if isinstance(value, ast.expr):
            setattr(new, field, f(value))
        elif isinstance(value, list):
            setattr(
                new, field, [f(v) if isinstance(v, ast.expr) else _map_keyword(v, f) for v in value]
            )
        else:
            setattr(new, field, value)
    return ast.copy_location(new, e)


def _map_keyword(v, f):  # type: ignore[no-untyped-def]
    if isinstance(v, ast.keyword):
        return ast.keyword(v.arg, f(v.value))
    return v


def _is_rename(targets: list[ast.expr], value: ast.expr | None) -> bool:
    def names(e: ast.expr | None) -> bool:
        if isinstance(e, ast.Name):
            return True
        return isinstance(e, ast.Tuple | ast.List) and all(isinstance(x, ast.Name) for x in e.elts)

    return len(targets) == 1 and names(targets[0]) and names(value)


def _replace_value(s: ast.stmt, value: ast.expr | None) -> ast.stmt:
    assert value is not None
    if isinstance(s, ast.Assign):
        return ast.Assign(s.targets, value)
    if isinstance(s, ast.AugAssign):
        return ast.AugAssign(s.target, s.op, value)
    raise AssertionError(type(s))


def _map_targets(s: ast.stmt, f) -> ast.stmt:  # type: ignore[no-untyped-def]
    if isinstance(s, ast.Assign):
        s.targets = [f(t) for t in s.targets]
    elif isinstance(s, ast.AugAssign):
        s.target = f(s.target)
    return s
