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
import builtins
import contextlib
import copy
import dataclasses
import functools
import re
from collections.abc import Iterator
from typing import Any

import torch

from dycl_jax.analysis import aliasing, facts
from dycl_jax.analysis.dependence import HOST, PY, AbsVal, Kind, Typer
from dycl_jax.analysis.dependence import TENSOR as TENSOR_ABS
from dycl_jax.analysis.placement import Placement
from dycl_jax.analysis.source import ParsedFunction
from dycl_jax.errors import UnsupportedConstructError
from dycl_jax.ir.program import RUNTIME, SplitKind, SplitReason
from dycl_jax.rewrite.naming import Namer, rename_free


@dataclasses.dataclass(frozen=True)
class Trace:
    """A statement that runs inside a region (tensor code with only static control flow)."""

    stmt: ast.stmt


@dataclasses.dataclass(frozen=True)
class Host:
    """A statement that runs on the host. A compound one (``if``/``while``/``for``/``with``/
    ``try``) has empty nested bodies in ``stmt``; its normalized blocks are in ``blocks``, keyed by
    field name (``body``, ``orelse``, ``finalbody``, ``handlers.<i>`` for an except clause)."""

    stmt: ast.stmt
    reason: SplitReason | None = None
    blocks: tuple[tuple[str, list[Item]], ...] = ()


Item = Trace | Host


@dataclasses.dataclass(frozen=True)
class Normalized:
    body: list[Item]
    reasons: tuple[SplitReason, ...]  # why host code exists at all (empty: the function is static)
    locals: frozenset[str]  # local names, synthesized temporaries included
    host_names: frozenset[str]  # locals holding Python scalars read back from tensors
    tensor_names: frozenset[str]  # locals holding tensors (or containers of tensors)
    python_names: frozenset[str]  # locals holding only Python values (no tensor inside)
    # (object, attribute) pairs forward writes on the host: module state that regions must read
    # as inputs, not as constants baked in at capture time.
    state_attrs: tuple[tuple[Any, str], ...]
    namer: Namer  # hands out further fresh names (regions) that never collide with these
    # Calls in trace statements to user functions that write some of their arguments in place:
    # call -> the local names passed there (their objects change).
    call_writes: dict[ast.Call, frozenset[str]]
    # Calls in trace statements that may return one of their arguments itself or a view of it
    # (nn.Identity, dropout in eval, a helper ending `return t[:, :2]`): call -> its position.
    returns_input: dict[ast.Call, int]
    # Calls among those returning a tuple display whose elements each may be only some of the
    # arguments: call -> per element, those argument expressions (see aliasing._RETURNS_PARTS).
    returns_parts: dict[ast.Call, aliasing.Parts]
    # Locals only ever bound to one tensor made by torch (``keep = torch.zeros(n)``): a write
    # ``keep[i] = v`` copies v's values, it does not make ``keep`` hold ``v``.
    plain_tensors: frozenset[str] = frozenset()
    # Calls in trace statements that may change Python state the analysis does not follow
    # (``hooks["exit"](xs, i)``, ``ap(v)`` with ``ap = xs.append``; see
    # ``Typer.may_change_state``): a region holding one is kept even when nothing reads its
    # outputs, and its capture checks the lists and dicts it reaches.
    opaque_calls: frozenset[ast.Call] = frozenset()


def _builtin_call(fn: str, *args: ast.expr) -> ast.expr:
    return ast.Call(ast.Name(fn, ast.Load()), list(args), [])


# Builtins that iterate positional arguments (a tensor among those goes through _dy.rows).
_ITERATING = frozenset({enumerate, zip, reversed, list, tuple, sorted, max, min, sum, iter})
_CONSUMING = frozenset({list, tuple, sorted, max, min, sum})


_CONTAINER_DISPLAYS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)


def _runtime_call(fn: str, *args: ast.expr) -> ast.expr:
    return ast.Call(ast.Attribute(ast.Name(RUNTIME, ast.Load()), fn, ast.Load()), list(args), [])


def truth(e: ast.expr) -> ast.expr:
    return _runtime_call("truth", e)


def _store(name: str) -> ast.Name:
    return ast.Name(name, ast.Store())


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


_INPLACE_BITWISE = {
    ast.BitOr: "bitwise_or_",
    ast.BitAnd: "bitwise_and_",
    ast.BitXor: "bitwise_xor_",
    ast.LShift: "bitwise_left_shift_",
    ast.RShift: "bitwise_right_shift_",
}

_Comp = ast.ListComp | ast.GeneratorExp | ast.SetComp | ast.DictComp

_TORCH_MODULES = ("torch", "torch.functional", "torch.nn.functional")
_ITERATING_BUILTINS = tuple(getattr(builtins, n) for n in facts.ITERATING_BUILTINS)


def normalize(parsed: ParsedFunction, typer: Typer) -> Normalized:
    """The stage's entry point: ``parsed``'s body as trace and host statements."""
    _check_reserved_names(parsed)
    return Normalizer(parsed, typer, Namer(parsed.node, parsed.nodes)).run()


_RESERVED = re.compile(rf"{RUNTIME}|{RUNTIME}_select|{RUNTIME}_(then|else)_\d+")


def _check_reserved_names(parsed: ParsedFunction) -> None:
    """Refuse a function using the names its host program gives the runtime library and staged
    selects (``_dy``, ``_dy_select``, ``_dy_then_3``): the program would read the user's value."""
    for n in parsed.nodes:
        name = n.id if isinstance(n, ast.Name) else n.arg if isinstance(n, ast.arg) else None
        if name is not None and _RESERVED.fullmatch(name):
            raise UnsupportedConstructError(
                f"the name {name!r} is reserved for dycl_jax's host programs ({RUNTIME!r}, "
                f"{RUNTIME}_select, {RUNTIME}_then_<n>, {RUNTIME}_else_<n>)",
                parsed.location(n),
                hint="rename the variable",
            )


class Normalizer:
    def __init__(self, parsed: ParsedFunction, typer: Typer, namer: Namer) -> None:
        self.parsed = parsed
        self.typer = typer
        self.namer = namer
        self.reasons: list[SplitReason] = []
        self.call_writes: dict[ast.Call, frozenset[str]] = {}
        self.returns_input: dict[ast.Call, int] = {}
        self.opaque_calls: set[ast.Call] = set()
        self.returns_parts: dict[ast.Call, aliasing.Parts] = {}
        # a dynamic call's parts, and the temporaries bound to such a call
        self._call_parts: dict[ast.Call, aliasing.Parts] = {}
        self._temp_parts: dict[str, aliasing.Parts] = {}
        self._containers: set[str] = set()  # temporaries this normalizer binds to a new list
        self._out: list[list[Item]] = []
        self.state_attrs: list[tuple[Any, str]] = []
        self.place = Placement(parsed, typer)

    def run(self) -> Normalized:
        body = self.block(self.parsed.node.body)
        env = self.typer.env
        host = frozenset(n for n, v in env.items() if v.kind == Kind.HOST)
        tensors = frozenset(
            n for n, v in env.items() if v.kind == Kind.TENSOR and n in self.typer.locals
        )
        python = frozenset(
            n for n, v in env.items() if v.kind == Kind.PY and n in self.typer.locals
        )
        return Normalized(
            body,
            tuple(self.reasons),
            frozenset(self.typer.locals),
            host,
            tensors,
            python,
            tuple(self.state_attrs),
            self.namer,
            self.call_writes,
            dict(self.returns_input),
            dict(self.returns_parts),
            self._plain_tensors(),
            frozenset(self.opaque_calls),
        )

    def _plain_tensors(self) -> frozenset[str]:
        """Locals every binding of which (in the source, comprehensions aside) is ``name = <a
        torch function or tensor method returning one tensor>``, or arithmetic on such a value
        or name: ``t[i] = v`` copies ``v`` into such a name, it never holds ``v``."""
        values: dict[str, list[ast.expr]] = {}
        bad: set[str] = set()
        fn = self.parsed.node
        a = fn.args
        bad |= {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
        bad |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
        seen: set[int] = set()  # target names of the assignments judged here
        for n in aliasing.walk_no_defs(fn):
            if (
                isinstance(n, ast.Assign)
                and len(n.targets) == 1
                and isinstance(n.targets[0], ast.Name)
            ):
                values.setdefault(n.targets[0].id, []).append(n.value)
                seen.add(id(n.targets[0]))
            elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
                seen.add(id(n.target))  # `t += v` keeps a tensor a tensor (and a list a list)
            elif id(n) in seen:
                continue
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
                bad.add(n.id)  # any other binding: unpacking, loops, with, walrus, del
            elif isinstance(n, ast.Global | ast.Nonlocal):
                bad |= set(n.names)
            elif isinstance(n, ast.ExceptHandler) and n.name:
                bad.add(n.name)
            elif isinstance(n, ast.MatchAs | ast.MatchStar) and n.name:
                bad.add(n.name)
            elif isinstance(n, ast.MatchMapping) and n.rest:
                bad.add(n.rest)
        plain = set(values) - bad
        changed = True
        while changed:  # the largest set whose bindings are all tensors given the set
            changed = False
            for name in sorted(plain):
                if not all(self._one_tensor(v, plain) for v in values[name]):
                    plain.discard(name)
                    changed = True
        return frozenset(plain)

    def _one_tensor(self, e: ast.expr, plain: set[str]) -> bool:
        if isinstance(e, ast.Name):
            return e.id in plain
        if isinstance(e, ast.BinOp):  # a tensor and anything but a list: a tensor
            displays = (ast.List, ast.Tuple, ast.ListComp, ast.Set, ast.Dict)
            if isinstance(e.left, displays) or isinstance(e.right, displays):
                return False  # `[z] * n` is a list even when n is a tensor
            return self._one_tensor(e.left, plain) or self._one_tensor(e.right, plain)
        if isinstance(e, ast.UnaryOp):
            return self._one_tensor(e.operand, plain)
        if not isinstance(e, ast.Call):
            return False
        f = e.func
        cands = self.typer.callee_objects(f) or ()
        if cands:
            # torch's functions give tensors, or tuples (split, topk), which take no writes
            return all(
                getattr(c, "__module__", None) in _TORCH_MODULES and c is not torch.Tensor.tolist
                for c in cands
            )
        return (
            isinstance(f, ast.Attribute)
            and f.attr in facts.TENSOR_RESULT_METHODS
            and self.typer.kind(f.value).kind == Kind.TENSOR
        )

    @functools.cached_property
    def _local_functions(self) -> dict[str, list[ast.FunctionDef | ast.Lambda]]:
        """The functions defined in forward, by the names they are bound to (a ``def``, a
        lambda assigned to a name)."""
        out: dict[str, list[ast.FunctionDef | ast.Lambda]] = {}
        for n in self.parsed.nodes:
            if isinstance(n, ast.FunctionDef) and n is not self.parsed.node:
                out.setdefault(n.name, []).append(n)
            elif isinstance(n, ast.Assign) and isinstance(n.value, ast.Lambda):
                for t in n.targets:
                    if isinstance(t, ast.Name):
                        out.setdefault(t.id, []).append(n.value)
        return out

    def _local_returned_arg(self, call: ast.Call) -> int | None:
        """``returned_arg`` for a function defined in forward (``def g(t): return t``, a
        lambda bound to a name or called where it is written)."""
        f = call.func
        fns: list[ast.FunctionDef | ast.Lambda] = []
        if isinstance(f, ast.Lambda):
            fns = [f]
        elif isinstance(f, ast.Name):
            fns = self._local_functions.get(f.id, [])
        returned = [aliasing.returned_params(fn) | self._returned_through_calls(fn) for fn in fns]
        found = {
            i
            for fn, names in zip(fns, returned)
            for i in aliasing.positions(fn, names)
            if i < len(call.args)
        }
        by_keyword = any(
            kw.arg is None or kw.arg in names for names in returned for kw in call.keywords
        ) or (bool(found) and any(isinstance(a, ast.Starred) for a in call.args))
        if len(found) == 1 and not by_keyword:
            return min(found)
        # `lambda a, b: a if c else b`, or a returned parameter passed by keyword: any of them
        return aliasing.ANY_ARGUMENT if found or by_keyword else None

    def _returned_through_calls(self, fn: ast.FunctionDef | ast.Lambda) -> frozenset[str]:
        """Parameters of a function defined in forward that it may return through a call that
        hands back its argument (``def g(t): return self.drop(t)``, eval dropout)."""
        params = aliasing.all_params(fn)
        if isinstance(fn, ast.Lambda):
            returns: list[ast.expr] = [fn.body]
        else:
            returns = [
                n.value
                for n in aliasing.walk_no_defs(fn)
                if isinstance(n, ast.Return) and n.value is not None
            ]
        out: set[str] = set()
        for e in returns:
            for c in ast.walk(e):
                if not isinstance(c, ast.Call):
                    continue
                k = self.typer.returned_arg(c)
                if k is None:
                    continue
                args = [a.value if isinstance(a, ast.Starred) else a for a in c.args]
                args += [kw.value for kw in c.keywords]
                for a in args if k == aliasing.ANY_ARGUMENT else args[k : k + 1]:
                    root = aliasing.view_root(a)
                    if root in params:
                        out.add(root)
        return frozenset(out)

    # ---- emission ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _into(self, stmts: list[Item]) -> Iterator[None]:
        self._out.append(stmts)
        try:
            yield
        finally:
            self._out.pop()

    def _emit(
        self,
        stmt: ast.stmt,
        origin: ast.AST,
        trace: bool,
        reason: SplitReason | None = None,
        **blocks: list[Item],
    ) -> None:
        ast.copy_location(stmt, origin)
        ast.fix_missing_locations(stmt)
        for sub in ast.walk(stmt):
            if not hasattr(sub, "lineno") or sub.lineno is None:
                ast.copy_location(sub, origin)
        if trace:
            for n in aliasing.walk_no_defs(stmt):
                if (
                    isinstance(n, ast.Call)
                    and isinstance(n.func, ast.Attribute)
                    and n.func.attr == "from_numpy"
                    and self.typer.callee_objects(n.func) == (torch.from_numpy,)
                ):
                    # in a region the host's numpy array arrives as a tensor: as_tensor keeps
                    # its dtype, as from_numpy does
                    n.func = ast.copy_location(
                        ast.Attribute(n.func.value, "as_tensor", ast.Load()), n.func
                    )
                if isinstance(n, ast.Call):
                    names = self.typer.call_mutations(n)
                    if names:
                        self.call_writes[n] = names
                    if self.typer.may_change_state(n):
                        self.opaque_calls.add(n)
        for n in aliasing.walk_no_defs(stmt):  # on the host too: a dynamic helper's result
            if isinstance(n, ast.Call):
                arg = self.typer.returned_arg(n)
                if arg is None:
                    arg = self._local_returned_arg(n)
                if arg is not None:
                    self.returns_input[n] = arg
                parts = self.typer.returned_parts(n)
                if parts is not None and any(parts):  # (each element: fresh and apart)
                    self.returns_parts[n] = parts
        if trace:
            self._out[-1].append(Trace(stmt))
        else:
            self._out[-1].append(Host(stmt, reason, tuple(blocks.items())))

    def _reason(self, kind: SplitKind, node: ast.AST, detail: str = "") -> SplitReason:
        r = SplitReason(kind, self.parsed.location(node), detail)
        self.reasons.append(r)
        return r

    def _temp(self, kind: AbsVal, prefix: str = "_t") -> str:
        name = self.namer.fresh(prefix)
        self.typer.declare(name, kind)
        return name

    # ---- expressions -------------------------------------------------------------------------

    def lift(self, e: ast.expr) -> ast.expr:
        """``e`` made traceable: host-only parts replaced by temporaries computed before."""
        if not self.place.has_host_atom(e):
            return e
        if isinstance(e, _Comp):
            return self._comprehension(e)
        first = self._first(e)
        if first is not None:
            return first
        reason = self.place.atom_reason(e)
        if reason is None and isinstance(e, ast.IfExp | ast.BoolOp):
            # Host work inside `a if c else b` / `a and b` runs only when Python would evaluate
            # it (`s.pop() if s else x`): a host if, not each operand lifted before the test.
            reason = SplitKind.BOOL_OP
        if isinstance(e, ast.Subscript) and self.place.has_scalar_index(e):
            return self._scalar_indices(e, self.lift(e.value))
        if isinstance(e, ast.Slice) and reason is SplitKind.TENSOR_INDEX:
            return ast.copy_location(
                ast.Slice(*(self._index_bound(b) for b in (e.lower, e.upper, e.step))), e
            )
        if reason is not None:
            kind = self.typer.kind(e)
            h = self.host_form(e, reason)
            if isinstance(h, ast.Name):
                return h
            tmp = self._temp(kind if reason is not SplitKind.CONVERSION else HOST)
            if h in self._call_parts:
                self._temp_parts[tmp] = self._call_parts[h]  # type: ignore[index]
            self._emit(ast.Assign([_store(tmp)], h), e, trace=False, reason=self._reason(reason, e))
            return _load(tmp)
        return _map_children(e, self.lift)

    def _scalar_indices(self, e: ast.Subscript, value: ast.expr) -> ast.Subscript:
        """``p[0, k]`` / ``y[k]`` with ``k`` a 0-d index tensor: ``k`` read back as an int."""
        if isinstance(e.slice, ast.Tuple):
            elts = [
                self._index_read(x) if self.place.is_scalar_index(x) else self.lift(x)
                for x in e.slice.elts
            ]
            index: ast.expr = ast.copy_location(ast.Tuple(elts, ast.Load()), e.slice)
        else:
            index = self._index_read(e.slice)
        return ast.copy_location(ast.Subscript(value, index, e.ctx), e)  # type: ignore[arg-type]

    def _scalar_index_target(self, t: ast.expr) -> ast.expr:
        if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Subscript):
            inner = t.value
            if (
                self.place.is_sequence(inner.value)
                and not isinstance(inner.slice, ast.Slice | ast.Tuple)
                and self._is_tensor(inner.slice)
            ):
                # hs[k][0, 0] = v with k a one-element tensor: k read back as a Python index
                # first, then a store into the entry (a tensor), as for hs[1][0, 0] = v
                picked = ast.Subscript(inner.value, self._index_read(inner.slice), ast.Load())
                t = ast.copy_location(
                    ast.Subscript(ast.copy_location(picked, inner), t.slice, t.ctx), t
                )
        if isinstance(t, ast.Subscript) and self.place.has_scalar_index(t):
            return self._scalar_indices(t, t.value)
        return t

    def _index_bound(self, b: ast.expr | None) -> ast.expr | None:
        """A slice bound: a tensor one is read back as a Python int before the region."""
        if b is None or self.typer.kind(b).kind != Kind.TENSOR:
            return self.lift(b) if b is not None else None
        return self._index_read(b)

    def _index_read(self, b: ast.expr) -> ast.expr:
        """``b`` (a tensor) read back as a Python int on the host, before the region."""
        tmp = self._temp(HOST)
        self._emit(
            ast.Assign([_store(tmp)], _runtime_call("index", self.as_host(b))),
            b,
            trace=False,
            reason=self._reason(SplitKind.TENSOR_INDEX, b),
        )
        return _load(tmp)

    def as_host(self, e: ast.expr) -> ast.expr:
        """``e`` made evaluable on the host: tensor work moved into a preceding trace statement."""
        if isinstance(e, ast.Tuple | ast.List) and not any(
            isinstance(x, ast.Starred) for x in e.elts
        ):
            return ast.copy_location(type(e)([self.as_host(x) for x in e.elts], ast.Load()), e)
        if isinstance(e, ast.Dict) and all(k is not None for k in e.keys):
            keys: list[ast.expr | None] = [self.as_host(k) for k in e.keys if k is not None]
            return ast.copy_location(ast.Dict(keys, [self.as_host(v) for v in e.values]), e)
        if isinstance(e, ast.JoinedStr):
            # An f-string is formatted on the host, each value computed first (a value read back
            # with .item() formats as the Python number it is, like in eager PyTorch).
            parts: list[ast.expr] = [
                ast.FormattedValue(self._shown(v.value), v.conversion, v.format_spec)
                if isinstance(v, ast.FormattedValue)
                else v
                for v in e.values
            ]
            return ast.copy_location(ast.JoinedStr(parts), e)
        if isinstance(e, ast.Lambda):
            # made on the host (`fixed_point(lambda z: self.f(z, x), z0)`): its body runs where
            # it is called; made in a region, the function would be an output holding tensors
            return e
        e2 = self.lift(e)
        if isinstance(e2, ast.Name) or not self.typer.reads_tensor(e2):
            return e2
        if isinstance(e2, ast.Call) and self._iterates(e2) and not getattr(e, "_dy_drained", 0):
            # enumerate(hs) / zip(a, b) / d.items(): the iterator is made on the host over the
            # containers regions produced (made in a region, it would be a capture constant).
            func = e2.func
            if isinstance(func, ast.Attribute):
                func = ast.Attribute(self.as_host(func.value), func.attr, ast.Load())
            consumed = self._consumed_positions(e2)
            args = self._items_as_tensors(
                e2,
                [
                    self._host_arg(self._drained(a) if i in consumed else _materialized(a))
                    for i, a in enumerate(e2.args)
                ],
            )
            return ast.copy_location(
                ast.Call(
                    func,
                    args,
                    [ast.keyword(k.arg, self.as_host(k.value)) for k in e2.keywords],
                ),
                e2,
            )
        tmp = self._temp(self.typer.kind(e))
        self._emit(ast.Assign([_store(tmp)], e2), e, trace=True)
        return _load(tmp)

    def _iterates(self, call: ast.Call) -> bool:
        """A builtin that only iterates or restructures its arguments (enumerate, zip, reversed,
        iter, list, tuple), or ``.items()`` / ``.keys()`` / ``.values()`` of a dict."""
        if isinstance(call.func, ast.Attribute):
            return call.func.attr in ("items", "keys", "values") and not call.args
        cands = self.typer.callee_objects(call.func) or ()
        return bool(cands) and all(c in _ITERATING_BUILTINS for c in cands)

    def as_test(self, e: ast.expr) -> ast.expr:
        kind = self.typer.kind(e).kind
        h = self.as_host(e)
        return truth(h) if kind == Kind.TENSOR else h

    def _comprehension(self, e: _Comp) -> ast.expr:
        """A comprehension with host work inside becomes an explicit loop building a list (a set,
        a dict). Its targets get fresh names: a comprehension has its own scope, so
        ``[f(x) for x in xs]`` must not rebind the function's own ``x``."""
        e = self._fresh_targets(e)
        tmp = self._temp(self.typer.kind(e))
        self._containers.add(tmp)
        inner: ast.stmt
        if isinstance(e, ast.DictComp):
            start: ast.expr = ast.Dict([], [])
            key = ast.Subscript(_load(tmp), e.key, ast.Store())
            inner = ast.Assign([key], e.value)
        else:
            start = (
                ast.Call(ast.Name("set", ast.Load()), [], [])
                if isinstance(e, ast.SetComp)
                else ast.List([], ast.Load())
            )
            add = "add" if isinstance(e, ast.SetComp) else "append"
            inner = ast.Expr(ast.Call(ast.Attribute(_load(tmp), add, ast.Load()), [e.elt], []))
        self._emit(ast.Assign([_store(tmp)], start), e, trace=False)
        self.stmt(_loop(e, inner, e))
        return _load(tmp)

    def _shown(self, e: ast.expr) -> ast.expr:
        """``e`` on the host, as a value to show as text: a tensor is handed over as a torch
        tensor (``_dy.shown``), so it prints and formats as PyTorch does (``tensor(3.)``)."""
        if isinstance(e, ast.Starred):
            return ast.Starred(self._shown(e.value), ast.Load())
        h = self.as_host(e)
        if self.typer.kind(e).kind == Kind.TENSOR:
            return _runtime_call("shown", h)
        return h

    def _displays(self, e: ast.Call) -> bool:
        """Whether the call shows its arguments as text (print, str, logging, "{}".format)."""
        f = e.func
        if isinstance(f, ast.Attribute) and f.attr == "format":
            if isinstance(f.value, ast.Constant) and isinstance(f.value.value, str):
                return True
        cands = self.typer.callee_objects(f) or ()
        return bool(cands) and all(facts.is_display_callee(c) for c in cands)

    def host_form(self, e: ast.expr, reason: SplitKind) -> ast.expr:
        if isinstance(e, ast.JoinedStr):
            return self.as_host(e)
        tensor = self._is_tensor
        if (
            reason is SplitKind.TENSOR_INDEX
            and isinstance(e, ast.Subscript)
            and isinstance(e.ctx, ast.Load)
            and not isinstance(e.slice, ast.Slice | ast.Tuple)
            and tensor(e.slice)
        ):
            # experts[ei] with ei a one-element index tensor: read as its __index__, PyTorch's
            # rule (a numpy or jax array converts only when 0-d)
            return _runtime_call("at", self.as_host(e.value), self.as_host(e.slice))
        if (
            reason is SplitKind.TENSOR_LOOP_BOUND
            and isinstance(e, ast.Call)
            and not e.keywords
            and not any(isinstance(a, ast.Starred) for a in e.args)
        ):  # range(n) with n a tensor: its __index__
            return ast.Call(
                self.as_host(e.func),
                [
                    _runtime_call("index", self.as_host(a)) if tensor(a) else self.as_host(a)
                    for a in e.args
                ],
                [],
            )
        if isinstance(e, ast.Compare) and self.place.is_membership_test(e):
            test: ast.expr = _runtime_call(
                "contains", self.as_host(e.comparators[0]), self.as_host(e.left)
            )
            return ast.UnaryOp(ast.Not(), test) if isinstance(e.ops[0], ast.NotIn) else test
        if isinstance(e, ast.Compare) and self.place.is_identity_test(e):
            return ast.Compare(
                self.as_host(e.left), list(e.ops), [self.as_host(c) for c in e.comparators]
            )
        if isinstance(e, ast.Call) and reason is SplitKind.HOST_COMPARE:
            by_key = self._compare_by_key(e)
            if by_key is not None:
                return by_key
        if isinstance(e, ast.Call) and reason is SplitKind.CONVERSION:
            quantified = self._any_all(e)
            if quantified is not None:
                return quantified
            cands = self.typer.callee_objects(e.func) or ()
            if (
                len(cands) == 1
                and cands[0] in (int, float, complex)
                and len(e.args) == 1
                and not e.keywords
            ):
                # int(t) of any one-element tensor, as PyTorch allows (jax: 0-d arrays only)
                return _runtime_call("scalar", e.func, self.as_host(e.args[0]))
            if len(cands) == 1 and cands[0] is bool and len(e.args) == 1 and not e.keywords:
                return truth(self.as_host(e.args[0]))  # PyTorch's rules and exceptions
        if isinstance(e, ast.Call):
            func = e.func
            if reason is SplitKind.DYNAMIC_CALL:
                func_h: ast.expr = self.as_host(func)
                args = [self._host_arg(a) for a in e.args]
                kws = [ast.keyword(k.arg, self.as_host(k.value)) for k in e.keywords]
                call = _runtime_call("call", func_h, *args)
                call.keywords = kws  # type: ignore[attr-defined]
                # (an attribute it sets on an argument, or a Python method that changes it, such
                # as `cache.update(k, v, i)`, changes the caller's object too: the helper's host
                # program is given that object)
                written = self.typer.call_mutations(e, attributes=False, objects=False)
                if written:  # the callee writes these arguments in place (checked in split)
                    self.call_writes[call] = written  # type: ignore[index]
                returned = self.typer.returned_arg(e)
                if returned is not None:  # `_dy.call(f, *args)`: the argument one further on
                    self.returns_input[call] = (  # type: ignore[index]
                        returned if returned == aliasing.ANY_ARGUMENT else returned + 1
                    )
                parts = self.typer.returned_parts(e)
                if parts is not None and any(parts):  # in terms of the host call's arguments
                    new = {id(a): b for a, b in zip(e.args, args)} | {
                        id(a.value): b.value for a, b in zip(e.keywords, kws)
                    }
                    self._call_parts[call] = tuple(  # type: ignore[index]
                        tuple(a if isinstance(a, int) else new.get(id(a), a) for a in part)
                        for part in parts
                    )
                return call
            if (
                reason is SplitKind.CONVERSION
                and isinstance(func, ast.Attribute)
                and func.attr == "numpy"
            ):
                # jax arrays have no .numpy(); the runtime makes the same host copy.
                return _runtime_call("numpy", self.as_host(func.value))
            if (
                reason is SplitKind.CONVERSION
                and isinstance(func, ast.Attribute)
                and func.attr == "item"
                and not e.args
                and not e.keywords
            ):
                # PyTorch's exception for a tensor of several elements (numpy: ValueError)
                return _runtime_call("item", self.as_host(func.value))
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
            if reason is SplitKind.EFFECT and self.typer.rng_call(e):
                # a generator's state read or set: `_dy.rng(torch.manual_seed, 42)`, which
                # per_sample refuses (one seed per group of rows is not one per row)
                call = _runtime_call(
                    "rng", self.as_host(func), *[self._host_arg(a) for a in e.args]
                )
                call.keywords = [ast.keyword(k.arg, self.as_host(k.value)) for k in e.keywords]  # type: ignore[attr-defined]
                return call
            if isinstance(func, ast.Attribute) and reason is SplitKind.EFFECT:
                if func.attr in facts.CONTAINER_MUTATORS:
                    self._record_held(func.value, mutated=True)
                func = ast.Attribute(self._receiver(func.value), func.attr, ast.Load())
            elif isinstance(func, ast.Attribute):
                func = ast.Attribute(self.as_host(func.value), func.attr, ast.Load())
            else:
                func = self.as_host(func)
            show = self._shown if self._displays(e) else self._host_arg
            consumed = self._consumed_positions(e)
            # max(h(x).max() for h in heads): the generator as a list a region can return
            args = [show(self._drained(a) if i in consumed else a) for i, a in enumerate(e.args)]
            if (
                isinstance(e.func, ast.Attribute)
                and isinstance(func, ast.Attribute)
                and e.func.attr in ("pop", "insert")
                and e.args
                and not isinstance(e.args[0], ast.Starred)
            ):  # names.pop(t): its __index__
                args[0] = self._host_key(e.func.value, func.value, e.args[0], args[0])
            args = self._items_as_tensors(e, args)
            kws = [ast.keyword(k.arg, show(k.value)) for k in e.keywords]
            if (
                reason is SplitKind.EFFECT
                and isinstance(e.func, ast.Attribute)
                and isinstance(func, ast.Attribute)
                and e.func.attr in facts.CONTAINER_MUTATORS
                and not self._known_container(e.func.value)
            ):
                # `obj.update(h)` on a value that may be another object than a list, dict or
                # set: `_dy.effect` tells at run time (a helper's method runs in PyTorch)
                call = _runtime_call("effect", func.value, ast.Constant(func.attr), *args)
                call.keywords = kws  # type: ignore[attr-defined]
                # (`[h].pop()`: what it hands back may be any of its arguments' objects)
                self.returns_input[call] = aliasing.ANY_ARGUMENT  # type: ignore[index]
                return call
            return ast.Call(func, args, kws)
        if isinstance(e, ast.BinOp):  # "%.2f" % t, formatted on the host
            return ast.BinOp(self.as_host(e.left), e.op, self._shown(e.right))
        if isinstance(e, ast.UnaryOp):
            return ast.UnaryOp(ast.Not(), truth(self.as_host(e.operand)))
        if isinstance(e, ast.Compare):  # a chained comparison on tensors
            operands = [e.left, *e.comparators]
            middle = [self.as_host(o) for o in operands[1:-1]]  # each evaluated once
            ends = [operands[0], *middle, operands[-1]]
            pairs: list[ast.expr] = [
                ast.copy_location(ast.Compare(ends[i], [op], [ends[i + 1]]), e)
                for i, op in enumerate(e.ops)
            ]
            chain = ast.copy_location(ast.BoolOp(ast.And(), pairs), e)
            return self.host_form(chain, SplitKind.BOOL_OP)
        if isinstance(e, ast.BoolOp):
            tmp = self._temp(self.typer.kind(e))
            self._emit(ast.Assign([_store(tmp)], self.as_host(e.values[0])), e, trace=False)
            for v in e.values[1:]:
                body: list[Item] = []
                with self._into(body):
                    self._emit(ast.Assign([_store(tmp)], self.as_host(v)), v, trace=False)
                test = truth(_load(tmp))
                if isinstance(e.op, ast.Or):
                    test = ast.UnaryOp(ast.Not(), test)
                self._emit(
                    ast.If(test, [], []),
                    e,
                    trace=False,
                    reason=self._reason(SplitKind.BOOL_OP, e),
                    body=body,
                )
            return _load(tmp)
        if isinstance(e, ast.IfExp):
            tmp = self._temp(self.typer.kind(e))
            test = truth(self.as_host(e.test))
            then: list[Item] = []
            orelse: list[Item] = []
            for branch, stmts in ((e.body, then), (e.orelse, orelse)):
                with self._into(stmts):
                    self._emit(ast.Assign([_store(tmp)], self.as_host(branch)), branch, trace=False)
            self._emit(
                ast.If(test, [], []),
                e,
                trace=False,
                reason=self._reason(SplitKind.BOOL_OP, e),
                body=then,
                orelse=orelse,
            )
            return _load(tmp)
        if isinstance(e, ast.Subscript) and reason is SplitKind.DATA_DEPENDENT_SHAPE:
            index = e.slice
            if isinstance(index, ast.Tuple):  # x[:, mask]: the slices as slice() objects
                index = ast.Tuple([_slice_object(i) for i in index.elts], ast.Load())
            return _runtime_call("eager_getitem", self.as_host(e.value), self.as_host(index))
        if isinstance(e, ast.Subscript):
            return ast.Subscript(self.as_host(e.value), self.as_host(e.slice), ast.Load())
        raise AssertionError(f"no host form for {ast.dump(e)}")

    def _known_container(self, e: ast.expr) -> bool:
        """Whether ``e`` is surely a list, dict, set or deque: an object the analysis names that
        is one, a subscript of a dict or list of such (``self.cache["k"]``), or a local (not a
        parameter) every assignment of which builds one (``outs = []``, ``seen = set()``)."""
        if isinstance(e, _CONTAINER_DISPLAYS) or (
            isinstance(e, ast.Name) and e.id in self._containers
        ):
            return True
        values = self.typer.kind(e).values
        if values:
            return all(isinstance(v, facts.CONTAINER_TYPES) for v in values)
        made = self.parsed.assignments(e.id, unpacked=True) if isinstance(e, ast.Name) else None
        return made is not None and all(map(self._builds_container, made))

    def _builds_container(self, v: ast.expr) -> bool:
        if isinstance(v, _CONTAINER_DISPLAYS):
            return True
        if isinstance(v, ast.BinOp) and isinstance(v.op, ast.Add | ast.Mult):
            return self._builds_container(v.left) or self._builds_container(v.right)
        if isinstance(v, ast.Call):
            cands = self.typer.callee_objects(v.func) or ()
            return bool(cands) and all(
                isinstance(c, type) and issubclass(c, facts.CONTAINER_TYPES) for c in cands
            )
        return False

    def _receiver(self, e: ast.expr) -> ast.expr:
        """The container a method like ``append`` mutates, evaluated on the host: subscripts and
        attributes of Python containers stay plain Python (``state["trace"]``, ``t[0]``). Lifted
        into a region, the receiver would come back as a copy and the mutation be lost."""
        if isinstance(e, ast.Subscript):
            return ast.copy_location(
                ast.Subscript(self._receiver(e.value), self.as_host(e.slice), ast.Load()), e
            )
        if isinstance(e, ast.Attribute):
            return ast.copy_location(ast.Attribute(self._receiver(e.value), e.attr, ast.Load()), e)
        return self.as_host(e)

    def _any_all(self, e: ast.Call) -> ast.expr | None:
        """``any(o > t for o in outs)`` / ``all(...)``: a host loop reading each item's truth and
        stopping at the first that decides, as Python does (items computed in regions)."""
        cands = self.typer.callee_objects(e.func) or ()
        if len(cands) != 1 or cands[0] not in (any, all) or len(e.args) != 1 or e.keywords:
            return None
        arg = e.args[0]
        if not isinstance(arg, ast.GeneratorExp | ast.ListComp) or len(arg.generators) != 1:
            return None
        is_any = cands[0] is any
        comp = self._fresh_targets(arg)
        assert isinstance(comp, ast.GeneratorExp | ast.ListComp)
        tmp = self._temp(PY)
        self._emit(ast.Assign([_store(tmp)], ast.Constant(not is_any)), e, trace=False)
        test: ast.expr = comp.elt if is_any else ast.UnaryOp(ast.Not(), comp.elt)
        decide = ast.If(test, [ast.Assign([_store(tmp)], ast.Constant(is_any)), ast.Break()], [])
        self.stmt(_loop(comp, decide, e))
        return _load(tmp)

    def _first(self, e: ast.expr) -> ast.expr | None:
        """``next(o for o in outs if o.sum() > 0)`` / ``next(gen, default)`` whose generator has
        host work: a host loop stopping at the first item, as the lazy generator would (items
        after it are never computed); with no item, the default, or ``StopIteration``."""
        if not (isinstance(e, ast.Call) and e.args and len(e.args) <= 2 and not e.keywords):
            return None
        gen = e.args[0]
        if not isinstance(gen, ast.GeneratorExp) or not self.place.has_host_atom(gen):
            return None
        if (self.typer.callee_objects(e.func) or ()) != (next,):
            return None
        default = self.lift(e.args[1]) if len(e.args) == 2 else None
        comp = self._fresh_targets(gen)
        assert isinstance(comp, ast.GeneratorExp)
        tmp = self._temp(self.typer.kind(comp.elt))
        found = self._temp(PY)
        self._emit(ast.Assign([_store(found)], ast.Constant(False)), e, trace=False)
        take = [
            ast.Assign([_store(tmp)], comp.elt),
            ast.Assign([_store(found)], ast.Constant(True)),
            ast.Break(),
        ]
        body: list[ast.stmt] = take
        for i, g in enumerate(reversed(comp.generators)):
            if i:  # an inner loop broke at the first item: so does this one
                body = [*body, ast.If(_load(found), [ast.Break()], [])]
            for cond in reversed(g.ifs):
                body = [ast.If(cond, body, [])]
            body = [ast.For(g.target, g.iter, body, [])]
        self.stmt(_loop(ast.GeneratorExp(comp.elt, []), body, e))
        none: ast.stmt = (
            ast.Assign([_store(tmp)], default)
            if default is not None
            else ast.Raise(ast.Call(ast.Name("StopIteration", ast.Load()), [], []), None)
        )
        self.stmt(ast.copy_location(ast.If(ast.UnaryOp(ast.Not(), _load(found)), [none], []), e))
        return _load(tmp)

    def _fresh_targets(self, e: _Comp) -> _Comp:
        """``e`` with its targets renamed to fresh locals (bound in the typer), for running it
        as an explicit loop in the function's own scope."""
        mapping: dict[str, str] = {}
        gens = []
        for gen in e.generators:
            # each iterable sees the targets of the generators before it, not its own
            it = rename_free(gen.iter, mapping)
            for n in ast.walk(gen.target):
                if isinstance(n, ast.Name):
                    mapping[n.id] = self.namer.fresh(f"_{n.id}")
            gens.append(
                ast.comprehension(
                    rename_free(gen.target, mapping),
                    it,
                    [rename_free(c, mapping) for c in gen.ifs],
                    gen.is_async,
                )
            )
        out: _Comp
        if isinstance(e, ast.DictComp):
            out = ast.DictComp(rename_free(e.key, mapping), rename_free(e.value, mapping), gens)
        else:
            out = type(e)(rename_free(e.elt, mapping), gens)
        for gen in gens:
            self.typer.bind_local(gen.target, self.typer.iter_element(gen.iter))
        return ast.fix_missing_locations(ast.copy_location(out, e))

    def _compare_by_key(self, e: ast.Call) -> ast.expr | None:
        """``max(seq, key=f)`` / ``min`` / ``sorted(seq, key=f, reverse=r)`` whose keys do tensor
        work: the keys are computed first, in order (``[f(x) for x in seq]``, a ``lambda``'s body
        inlined, its tensor work in regions), then the builtin picks among indices by those keys on
        the host: the same comparisons on the same key values, so the same first maximum and the
        same stable order as Python's."""
        kw = {k.arg: k.value for k in e.keywords}
        if "key" not in kw or set(kw) - {"key", "reverse"} or not e.args:
            return None
        if any(isinstance(a, ast.Starred) for a in e.args):
            return None
        cands = self.typer.callee_objects(e.func) or ()
        if len(cands) != 1 or cands[0] not in (max, min, sorted):
            return None
        builtin = cands[0]
        if "reverse" in kw and builtin is not sorted:
            return None
        seq = self._temp(self.typer.kind(e.args[0]) if len(e.args) == 1 else TENSOR_ABS)
        items = (
            self.as_host(self._drained(e.args[0]))
            if len(e.args) == 1
            else self.as_host(ast.copy_location(ast.Tuple(list(e.args), ast.Load()), e))
        )
        if len(e.args) == 1 and self._is_tensor(e.args[0]):
            items = _runtime_call("rows", items)  # its items as tensors (see _iterated)
        self._emit(ast.Assign([_store(seq)], _builtin_call("list", items)), e, trace=False)
        key = kw["key"]
        if (
            isinstance(key, ast.Lambda)
            and len(key.args.args) == 1
            and not (key.args.posonlyargs or key.args.kwonlyargs or key.args.vararg)
            and not (key.args.kwarg or key.args.defaults)
        ):
            fresh = self.namer.fresh(f"_{key.args.args[0].arg}")
            target: ast.expr = _store(fresh)
            elt = rename_free(key.body, {key.args.args[0].arg: fresh})
        else:
            v = self.namer.fresh("_k")
            target, elt = _store(v), ast.Call(key, [_load(v)], [])
        comp = ast.comprehension(target, _load(seq), [], 0)
        keys_comp = ast.copy_location(ast.ListComp(elt, [comp]), e)
        ast.fix_missing_locations(keys_comp)
        self.typer.bind_local(target, self.typer.iter_element(_load(seq)))
        keys = self.as_host(keys_comp)
        order = ast.Call(
            ast.Name(builtin.__name__, ast.Load()),
            [_builtin_call("range", _builtin_call("len", _load(seq)))],
            [ast.keyword("key", ast.Attribute(keys, "__getitem__", ast.Load()))]
            + ([ast.keyword("reverse", self.as_host(kw["reverse"]))] if "reverse" in kw else []),
        )
        if builtin is sorted:
            i = self.namer.fresh("_i")
            return ast.ListComp(
                ast.Subscript(_load(seq), _load(i), ast.Load()),
                [ast.comprehension(_store(i), order, [], 0)],
            )
        return ast.Subscript(_load(seq), order, ast.Load())

    def _host_arg(self, a: ast.expr) -> ast.expr:
        if isinstance(a, ast.Starred):
            return ast.Starred(self.as_host(a.value), ast.Load())
        return self.as_host(a)

    # ---- statements --------------------------------------------------------------------------

    def block(self, stmts: list[ast.stmt]) -> list[Item]:
        out: list[Item] = []
        with self._into(out):
            for s in stmts:
                self.stmt(s)
        if not out:
            out.append(Host(ast.copy_location(ast.Pass(), stmts[0] if stmts else self.parsed.node)))
        return out

    def stmt(self, s: ast.stmt) -> None:
        method = getattr(self, f"_s_{type(s).__name__}", None)
        if method is not None:
            method(s)
            return
        # Anything else (pass, nested def, import, a read-only `global` declaration, ...) runs
        # on the host as written (a `global` the function writes is refused by support.check).
        if isinstance(
            s, ast.FunctionDef | ast.ClassDef | ast.Import | ast.ImportFrom | ast.Pass | ast.Global
        ):
            self._emit(s, s, trace=False)
            return
        raise UnsupportedConstructError(
            f"statement {type(s).__name__} is not supported in forward", self.parsed.location(s)
        )

    def _simple(self, s: ast.stmt, targets: list[ast.expr], value: ast.expr | None) -> None:
        for t in targets:
            if (
                isinstance(t, ast.Attribute)
                and t.attr == "data"
                and self.typer.kind(t.value).kind == Kind.TENSOR
            ):
                # the object keeps its identity with new storage: every name and container
                # holding it sees the new values, views made before do not
                raise UnsupportedConstructError(
                    "assigning a tensor's .data in forward is not supported (the tensor object "
                    "would take new storage, which a compiled region cannot express)",
                    self.parsed.location(s),
                    hint="rebind the name to the new value (`h = h * 3`) or write in place "
                    "(`h.mul_(3)`)",
                )
        if (
            isinstance(s, ast.AugAssign)
            and isinstance(s.target, ast.Subscript)
            and self.typer.kind(s.target.value).kind == Kind.TENSOR
            and self.place.has_mask_index(s.target.slice)
        ):
            # out[mask] += v is out[mask] = out[mask] + v (PyTorch's __getitem__, __iadd__,
            # __setitem__): the masked read then runs on the host like any x[mask]
            read = ast.copy_location(
                ast.Subscript(s.target.value, s.target.slice, ast.Load()), s.target
            )
            value = ast.copy_location(ast.BinOp(read, s.op, s.value), s)
            s = ast.copy_location(ast.Assign([s.target], value), s)
            targets = s.targets
        if any(self.place.is_host_store(t, isinstance(s, ast.AugAssign)) for t in targets):
            reason = self._reason(SplitKind.EFFECT, s, "write to an attribute or outer container")
            self._record_state(targets)
            for t in targets:
                if self._is_buffer(t):
                    assert isinstance(t, ast.Attribute)
                    raise UnsupportedConstructError(
                        f"assignment to the registered buffer '{t.attr}' in forward: buffers "
                        "are inputs of the compiled regions, read once per call",
                        self.parsed.location(s),
                        hint="keep running state in a plain attribute (`self.mu = ...` without "
                        "register_buffer), or update it outside forward",
                    )
            for t in aliasing.flat_targets(targets):
                self._refuse_write_into_stored_tensor(t, s)
            if (
                isinstance(s, ast.AugAssign)
                and isinstance(s.target, ast.Attribute)
                and self._held_tensor(s.target)
            ):
                # `self.hits += v` adds into the tensor the module holds now (every other
                # reference to it sees the change): a write into memory that outlives the call.
                # (A tensor stored on an object made in this call is a value of no object.)
                held = ast.unparse(s.target)
                op = ast.unparse(ast.BinOp(ast.Name("a"), s.op, ast.Name("b")))[2:-2]
                raise UnsupportedConstructError(
                    f"in-place update of {held}, a tensor that outlives the call (`{held} {op}= "
                    "...` writes into that tensor's memory)",
                    self.parsed.location(s),
                    hint=f"store a new tensor instead (`{held} = {held} {op} ...`)",
                )
            new = _replace_value(s, self.as_host(value) if value is not None else None)
            new = _map_targets(new, self._host_target)
            self._emit(new, s, trace=False, reason=reason)
            return
        if (
            isinstance(s, ast.Assign)
            and isinstance(value, ast.Call)
            and self.place.atom_reason(value) is SplitKind.DATA_DEPENDENT_SHAPE
            and all(_is_plain_target(t) for t in s.targets)
        ):
            # `w, idx = torch.topk(...)` run by PyTorch on the host: assigned directly, since its
            # results are fresh tensors (through a temporary, w and idx would look like views
            # of one object to the alias check)
            h = self.host_form(value, SplitKind.DATA_DEPENDENT_SHAPE)
            reason = self._reason(SplitKind.DATA_DEPENDENT_SHAPE, value)
            self._emit(ast.Assign(s.targets, h), s, False, reason)
            return
        v2 = self.lift(value) if value is not None else None
        # lg[:, k] = 0 with k = t.argmax(): k is read back first
        new = _map_targets(_replace_value(s, v2), self._scalar_index_target)
        # `x += y` reads its target: on a tensor it is an in-place op, so it runs in a region.
        # `x[m] = 0.5` writes into a tensor: a region, even though the value is Python; host
        # work in its index (`x[x < torch.topk(x, k)[0]] = v`) is computed before it.
        writes_tensor = any(self._tensor_entry(t) for t in aliasing.flat_targets(targets))
        if writes_tensor:
            new = _map_targets(new, self._lift_tensor_entry)
        reads = (
            self.typer.reads_tensor(new)
            or writes_tensor
            or (isinstance(s, ast.AugAssign) and self.typer.kind(s.target).kind == Kind.TENSOR)
        )
        trace = reads and not self.place.has_host_atom(new)
        if trace and isinstance(s, ast.Assign) and _is_rename(s.targets, v2):
            trace = False  # `a = b` moves a reference: a host assignment, not a region
        if not trace and self.place.has_host_atom(new):
            new = _map_targets(new, self._host_target)
        if (
            not trace
            and isinstance(new, ast.Assign)
            and any(isinstance(t, ast.Tuple | ast.List) for t in new.targets)
            and value is not None
            and self._is_tensor(value)
        ):  # `a, b = x` on the host iterates x: its items as tensors (see rows)
            rows = _runtime_call("rows", new.value)
            if isinstance(new.value, ast.Name) and new.value.id in self._temp_parts:
                # `a, b = self.helper(x, h)` with `return f(x), h`: each target is what its
                # own element may be (see aliasing._RETURNS_PARTS)
                self.returns_parts[rows] = self._temp_parts[new.value.id]  # type: ignore[index]
            new = ast.copy_location(ast.Assign(new.targets, rows), new)
        self._emit(new, s, trace=trace)

    def _tensor_entry(self, t: ast.expr) -> bool:
        """``t`` stores into a tensor local (``x[i] = v``), not into a Python container."""
        return (
            isinstance(t, ast.Subscript)
            and self.typer.kind(t.value).kind == Kind.TENSOR
            and not self.place.is_host_store(t)
        )

    def _lift_tensor_entry(self, t: ast.expr) -> ast.expr:
        if not self._tensor_entry(t):
            return t
        assert isinstance(t, ast.Subscript)
        return ast.copy_location(ast.Subscript(t.value, self.lift(t.slice), ast.Store()), t)

    def _is_buffer(self, t: ast.expr) -> bool:
        """``t`` is ``obj.name`` where ``name`` is a registered buffer of every candidate ``obj``."""
        if not isinstance(t, ast.Attribute):
            return False
        objs = self.typer.kind(t.value).values or ()
        return bool(objs) and all(
            isinstance(o, torch.nn.Module) and t.attr in o._buffers for o in objs
        )

    def _record_state(self, targets: list[ast.expr]) -> None:
        for t in targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):
                    base = self.typer.kind(sub.value)
                    for obj in base.values or ():
                        self._add_state(obj, sub.attr)
            if isinstance(t, ast.Subscript):
                self._record_held(t.value)  # self.cache["k"] = h, self.buf[i] = h

    def _record_held(self, e: ast.expr, mutated: bool = False) -> None:
        """Record the module attribute holding the container ``e`` (a mutator's receiver or a
        subscript store's base: ``self.cache["k"]``, ``self.block.outs``): its contents change
        during the call and outlive it, so regions read it as an input (like ``self.h = ...``),
        never as a constant baked in at capture. ``mutated``: a mutator is called on ``e``, so
        the attribute right above it holds a container whatever it holds now (``None`` until
        the user sets it after convert)."""
        nearest = True
        while isinstance(e, ast.Subscript | ast.Attribute):
            if isinstance(e, ast.Attribute):
                for obj in self.typer.kind(e.value).values or ():
                    if (
                        isinstance(obj, torch.nn.Module)
                        and not facts.registered(obj, e.attr)
                        and ((mutated and nearest) or facts.held_state(obj.__dict__.get(e.attr)))
                    ):
                        self._add_state(obj, e.attr)
                nearest = False
            e = e.value

    def _add_state(self, obj: Any, attr: str) -> None:
        if (obj, attr) not in self.state_attrs:
            self.state_attrs.append((obj, attr))

    def _held_tensor(self, t: ast.Attribute) -> bool:
        """Whether ``t`` (``self.hits``) names a tensor a live object holds now."""
        base = self.typer.kind(t.value)
        if base.kind != Kind.OBJ or not base.values:
            return False
        for obj in base.values:
            try:
                if isinstance(getattr(obj, t.attr), torch.Tensor):
                    return True
            except Exception:  # (a property raising: not a held tensor)
                continue
        return False

    def _refuse_write_into_stored_tensor(self, t: ast.expr, s: ast.stmt) -> None:
        """``self.mask[i] = False`` where this function also stores a tensor in ``self.mask``
        (built lazily: ``if self.mask is None: self.mask = torch.ones(n)``) and the attribute
        holds no list or dict now: a write into a tensor that outlives the call, refused before
        any call, as for one held when converting (on the host it would meet an immutable array,
        after the attribute was set)."""
        if not (isinstance(t, ast.Subscript) and isinstance(t.value, ast.Attribute)):
            return
        base = t.value
        values = self.typer.kind(base).values
        if values and all(isinstance(v, facts.CONTAINER_TYPES) for v in values):
            return
        owner = ast.dump(base.value)
        for n in self.parsed.nodes:
            if not isinstance(n, ast.Assign):
                continue
            for target in aliasing.flat_targets(n.targets):
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == base.attr
                    and ast.dump(target.value) == owner
                    and self.typer.kind(n.value).kind == Kind.TENSOR
                ):
                    raise UnsupportedConstructError(
                        f"in-place write into {ast.unparse(base)}, a tensor this forward stores "
                        "on the object (it outlives the call)",
                        self.parsed.location(s),
                        hint=f"build the new tensor first and store it once (`m = ...; m[i] = "
                        f"v; {ast.unparse(base)} = m`)",
                    )

    def _host_target(self, t: ast.expr) -> ast.expr:
        if isinstance(t, ast.Attribute):
            return ast.Attribute(self.as_host(t.value), t.attr, ast.Store())
        if isinstance(t, ast.Subscript):
            # the container itself, never a region's copy of it: self.buf[i] = h
            recv = self._receiver(t.value)
            key = self._host_key(t.value, recv, t.slice, self.as_host(t.slice))
            return ast.Subscript(recv, key, ast.Store())
        return t

    def _host_key(
        self, container: ast.expr, recv: ast.expr, key: ast.expr, key_h: ast.expr
    ) -> ast.expr:
        """The index of a host store, ``del``, ``pop`` or ``insert`` on ``container`` (``recv``
        and ``key_h`` on the host): a tensor one goes through ``_dy.key`` (a list takes its
        ``__index__``, as in PyTorch), which reads the container again, so only when reading it
        has no effect. (A tensor container, which the typer does not tell from a list written
        through a tensor index, keeps the key at run time.)"""
        if (
            isinstance(key, ast.Slice | ast.Tuple)
            or not self._is_tensor(key)
            or not _is_plain_path(container)
        ):
            return key_h
        return _runtime_call("key", copy.deepcopy(recv), key_h)

    def _s_Assign(self, s: ast.Assign) -> None:
        self._simple(s, s.targets, s.value)

    def _s_AugAssign(self, s: ast.AugAssign) -> None:
        method = _INPLACE_BITWISE.get(type(s.op))
        if (
            method is not None
            and isinstance(s.target, ast.Name)
            and self.typer.kind(s.target).kind == Kind.TENSOR
            # a dict or set holding tensors: `d |= {...}` merges the Python container
            and not isinstance(s.value, ast.Dict | ast.Set | ast.DictComp | ast.SetComp)
            and not self.place.is_dict(s.target)
            and not self.place.is_sequence(s.target)
        ):
            # `done |= newly` on a tensor is done.bitwise_or_(newly) (the same object, written in
            # place): aten::__ior__ itself cannot be captured.
            recv = ast.Name(s.target.id, ast.Load())
            call = ast.Call(ast.Attribute(recv, method, ast.Load()), [s.value], [])
            self._s_Expr(ast.fix_missing_locations(ast.copy_location(ast.Expr(call), s)))
            return
        self._simple(s, [s.target], s.value)

    def _s_AnnAssign(self, s: ast.AnnAssign) -> None:
        if s.value is None:
            return
        self._simple(ast.copy_location(ast.Assign([s.target], s.value), s), [s.target], s.value)

    def _s_Expr(self, s: ast.Expr) -> None:
        e = s.value
        if isinstance(e, ast.Constant):
            return  # docstring / bare constant
        if self._is_list_sort(e):
            # outs.sort(key=..., reverse=...) on a list holding tensors: sorted() on the host
            # (keys with tensor work computed in regions), written back into the same list
            assert isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute)
            seq = e.func.value
            ordered = self.as_host(
                ast.copy_location(ast.Call(ast.Name("sorted", ast.Load()), [seq], e.keywords), e)
            )
            target = ast.Subscript(self.as_host(seq), ast.Slice(None, None, None), ast.Store())
            why = self._reason(SplitKind.HOST_COMPARE, e)
            self._emit(ast.Assign([target], ordered), s, trace=False, reason=why)
            return
        reason = self.place.atom_reason(e)
        if reason is not None and isinstance(e, ast.Call):
            h = self.host_form(e, reason)
            self._emit(ast.Expr(h), s, trace=False, reason=self._reason(reason, e))
            return
        e2 = self.lift(e)
        trace = self.typer.reads_tensor(e2)
        self._emit(ast.Expr(e2), s, trace=trace)

    def _is_list_sort(self, e: ast.expr) -> bool:
        """``xs.sort(...)`` on a Python list holding tensors (list.sort takes only ``key`` and
        ``reverse``; Tensor.sort takes ``dim`` / ``descending`` / ``stable``)."""
        if not (
            isinstance(e, ast.Call)
            and isinstance(e.func, ast.Attribute)
            and e.func.attr == "sort"
            and not e.args
            and self.typer.kind(e.func.value).kind == Kind.TENSOR
        ):
            return False
        kws = {k.arg for k in e.keywords}
        if not kws <= {"key", "reverse"}:
            return False
        return bool(kws) or self.place.is_sequence(e.func.value)

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
        targets: list[ast.expr] = []
        for t in s.targets:
            if isinstance(t, ast.Subscript) and self._is_tensor(t.slice):
                recv = self._receiver(t.value)  # del names[t]: its __index__
                key = self._host_key(t.value, recv, t.slice, self.as_host(t.slice))
                t = ast.copy_location(ast.Subscript(recv, key, ast.Del()), t)
            targets.append(t)
        self._emit(ast.copy_location(ast.Delete(targets), s), s, trace=False)

    def _s_Assert(self, s: ast.Assert) -> None:
        if not self.typer.reads_tensor(s) and not self.place.has_host_atom(s):
            self._emit(s, s, trace=False)
            return
        if self.typer.kind(s.test).dependent:
            self._reason(SplitKind.TENSOR_IF, s, "assert")
        test = self.as_test(s.test)
        msg = self.as_host(s.msg) if s.msg is not None else None
        self._emit(ast.Assert(test, msg), s, trace=False)

    def _compound(self, s: ast.stmt) -> bool:
        """Emit ``s`` whole as a trace statement when possible; True if done."""
        if not self.place.stmt_needs_host(s) and self.typer.reads_tensor(s):
            self._emit(s, s, trace=True)
            return True
        return False

    def _s_Match(self, s: ast.Match) -> None:
        """``match`` on literal, value, ``|``, ``None``/``True``/``False``, ``_`` and capture
        patterns, with guards: the ``if``/``elif`` chain Python's semantics give (the subject
        evaluated once; ``==`` for values, ``is`` for singletons; a capture binds the subject)."""
        subject = self._temp(self.typer.kind(s.subject), "_match")
        self.stmt(ast.copy_location(ast.Assign([_store(subject)], s.subject), s))
        chain: list[ast.stmt] = []
        for case in reversed(s.cases):
            test, binds = self._pattern(case.pattern, subject)
            assign: list[ast.stmt] = [
                ast.copy_location(ast.Assign([_store(n)], _load(subject)), case.pattern)
                for n in binds
            ]
            always = isinstance(test, ast.Constant) and test.value is True
            if always and case.guard is not None:
                # `case x if x > 0:` binds x whether or not the guard then holds (as Python does)
                node = ast.If(case.guard, list(case.body), chain)
                chain = [*assign, ast.fix_missing_locations(ast.copy_location(node, case.pattern))]
                continue
            if case.guard is not None:
                test = ast.BoolOp(ast.And(), [test, case.guard])
            if always:
                chain = [*assign, *case.body]  # `case _:` / `case x:` matches whatever comes
            else:
                node = ast.If(test, [*assign, *case.body], chain)
                chain = [ast.fix_missing_locations(ast.copy_location(node, case.pattern))]
        for stmt in chain:
            self.stmt(stmt)

    def _pattern(self, p: ast.pattern, subject: str) -> tuple[ast.expr, list[str]]:
        """(test, names bound) of one match pattern against the subject's temporary."""
        subj = _load(subject)
        if isinstance(p, ast.MatchValue):
            return ast.copy_location(ast.Compare(subj, [ast.Eq()], [p.value]), p), []
        if isinstance(p, ast.MatchSingleton):
            test = ast.Compare(subj, [ast.Is()], [ast.Constant(p.value)])
            return ast.copy_location(test, p), []
        if isinstance(p, ast.MatchAs) and p.pattern is None:
            return ast.Constant(True), [p.name] if p.name else []
        if isinstance(p, ast.MatchOr):
            parts = [self._pattern(q, subject) for q in p.patterns]
            if not any(b for _, b in parts):
                return ast.copy_location(ast.BoolOp(ast.Or(), [t for t, _ in parts]), p), []
        raise UnsupportedConstructError(
            f"match pattern {type(p).__name__}: dycl_jax supports literal and value patterns, "
            "`|` of them, None/True/False, `_` and a capture name",
            self.parsed.location(p),
            hint="write the structural match as an if/elif chain",
        )

    def _s_If(self, s: ast.If) -> None:
        if self._compound(s):
            return
        reason = None
        if self.typer.kind(s.test).dependent:
            reason = self._reason(SplitKind.TENSOR_IF, s.test)
        test = self.as_test(s.test)
        self._emit(
            ast.If(test, [], []),
            s,
            trace=False,
            reason=reason,
            body=self.block(s.body),
            orelse=self.block(s.orelse) if s.orelse else [],
        )

    def _s_While(self, s: ast.While) -> None:
        dependent = self.typer.kind(s.test).dependent
        pre: list[Item] = []
        with self._into(pre):
            test = self.as_test(s.test)
        if not pre:
            self._emit(
                ast.While(test, [], []),
                s,
                trace=False,
                body=self.block(s.body),
                orelse=self.block(s.orelse) if s.orelse else [],
            )
            return
        reason = self._reason(SplitKind.TENSOR_WHILE if dependent else SplitKind.CONVERSION, s.test)
        if s.orelse:
            raise UnsupportedConstructError(
                "while ... else with a condition computed from tensors is not supported",
                self.parsed.location(s),
                hint="move the else branch after the loop and track a flag",
            )
        brk: list[Item] = [Host(ast.copy_location(ast.Break(), s))]
        exit_if = ast.copy_location(ast.If(ast.UnaryOp(ast.Not(), test), [], []), s)
        ast.fix_missing_locations(exit_if)
        body = [*pre, Host(exit_if, reason, (("body", brk),)), *self.block(s.body)]
        true = ast.copy_location(ast.Constant(True), s)
        self._emit(ast.While(true, [], []), s, trace=False, reason=reason, body=body)

    def _s_For(self, s: ast.For) -> None:
        if self._compound(s):
            return
        reason = None
        if self.typer.kind(s.iter).kind == Kind.HOST:
            reason = self._reason(SplitKind.TENSOR_LOOP_BOUND, s.iter)
        it = self._iterated(s.iter)
        self._emit(
            ast.For(s.target, it, [], []),
            s,
            trace=False,
            reason=reason,
            body=self.block(s.body),
            orelse=self.block(s.orelse) if s.orelse else [],
        )

    def _iterated_positions(self, e: ast.Call) -> list[int]:
        """Positions of the arguments a builtin call iterates: each of zip's, the first of
        enumerate and reversed, the only one of list / tuple / sorted / max / min / sum / iter
        (not max(a, b), which compares a and b)."""
        cands = self.typer.callee_objects(e.func) or ()
        if (
            len(cands) != 1
            or cands[0] not in _ITERATING
            or not e.args
            or any(isinstance(a, ast.Starred) for a in e.args)
        ):
            return []
        if cands[0] is zip:
            return list(range(len(e.args)))
        return [0] if len(e.args) == 1 or cands[0] in (enumerate, reversed) else []

    def _consumed_positions(self, e: ast.Call) -> list[int]:
        """Positions of the arguments a builtin iterates to the end (max, min, sorted, sum,
        list, tuple: not zip or enumerate, which may stop early)."""
        cands = self.typer.callee_objects(e.func) or ()
        if len(cands) == 1 and cands[0] in _CONSUMING:
            return self._iterated_positions(e)
        return []

    def _is_tensor(self, e: ast.expr) -> bool:
        return self.typer.kind(e).kind == Kind.TENSOR

    def _items_as_tensors(self, e: ast.Call, args: list[ast.expr]) -> list[ast.expr]:
        """``args``, the host forms of the builtin call ``e``'s arguments, with each tensor it
        iterates (``list(t)``, ``max(t)``, ``zip(a, b)``) through ``_dy.rows``: its items as
        tensors, as PyTorch's iteration gives (a host array would give numpy scalars)."""
        out = list(args)
        for i in self._iterated_positions(e):
            if self._is_tensor(e.args[i]):
                out[i] = _runtime_call("rows", out[i])
        return out

    def _drained(self, a: ast.expr) -> ast.expr:
        """An argument a builtin iterates to the end, as a list a region can compute and
        return: a generator expression as the list comprehension, a lazy iterator
        (``map(self.head, xs)``, ``filter``, ``itertools.takewhile``) inside ``list(...)`` (the
        iterator object itself would leave the region unread)."""
        if isinstance(a, ast.GeneratorExp):
            return _materialized(a)
        if isinstance(a, ast.Call):
            cands = self.typer.callee_objects(a.func) or ()
            if cands and all(
                c in (map, filter)
                or (isinstance(c, type) and getattr(c, "__module__", "") == "itertools")
                for c in cands
            ):
                drained = ast.copy_location(_builtin_call("list", a), a)
                drained._dy_drained = True  # type: ignore[attr-defined] # computed whole
                return drained
        return a

    def _iterated(self, e: ast.expr) -> ast.expr:
        """A host loop's iterable: a tensor (also one that enumerate, zip or reversed walk) is
        iterated through ``_dy.rows``, so its items are tensors as in PyTorch (a host array from
        an op PyTorch ran, ``labels.unique()``, would give numpy scalars)."""
        iterated = self._iterated_positions(e) if isinstance(e, ast.Call) else []
        if iterated:  # (before the kind: reversed(t) is typed as a tensor)
            assert isinstance(e, ast.Call)
            return ast.Call(
                self.as_host(e.func),
                [
                    self._iterated(a) if i in iterated else self.as_host(a)
                    for i, a in enumerate(e.args)
                ],
                [ast.keyword(k.arg, self.as_host(k.value)) for k in e.keywords],
            )
        if self._is_tensor(e):
            return _runtime_call("rows", self.as_host(e))
        return self.as_host(e)

    def _s_With(self, s: ast.With) -> None:
        if self._compound(s):
            return
        items = [ast.withitem(self.as_host(i.context_expr), i.optional_vars) for i in s.items]
        self._emit(ast.With(items, []), s, trace=False, body=self.block(s.body))

    def _s_Try(self, s: ast.Try) -> None:
        handlers = []
        blocks: dict[str, list[Item]] = {"body": self.block(s.body)}
        for i, h in enumerate(s.handlers):
            typ = self.as_host(h.type) if h.type is not None else None
            handlers.append(ast.copy_location(ast.ExceptHandler(typ, h.name, []), h))
            blocks[f"handlers.{i}"] = self.block(h.body)
        if s.orelse:
            blocks["orelse"] = self.block(s.orelse)
        if s.finalbody:
            blocks["finalbody"] = self.block(s.finalbody)
        self._emit(ast.Try([], handlers, [], []), s, False, None, **blocks)


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


def _loop(comp: _Comp, inner: ast.stmt | list[ast.stmt], origin: ast.AST) -> ast.stmt:
    """The ``for`` / ``if`` statements of ``comp``'s generators around ``inner``, as statements
    at ``origin``'s line (the expressions keep their own)."""
    body = inner if isinstance(inner, list) else [inner]
    for gen in reversed(comp.generators):
        for cond in reversed(gen.ifs):
            body = [ast.If(cond, body, [])]
        body = [ast.For(gen.target, gen.iter, body, [])]
    (loop,) = body
    ast.fix_missing_locations(ast.copy_location(loop, origin))
    for sub in ast.walk(loop):
        if isinstance(sub, ast.stmt):
            ast.copy_location(sub, origin)
    return loop


def _slice_object(e: ast.expr) -> ast.expr:
    """``a:b:c`` inside an index tuple as the expression ``slice(a, b, c)``."""
    if not isinstance(e, ast.Slice):
        return e
    parts = [p if p is not None else ast.Constant(None) for p in (e.lower, e.upper, e.step)]
    return ast.copy_location(ast.Call(ast.Name("slice", ast.Load()), parts, []), e)


def _materialized(a: ast.expr) -> ast.expr:
    """A generator expression consumed by tuple() / zip() / ...: the equivalent list
    comprehension, which a region can compute and return (a generator object it could not)."""
    if isinstance(a, ast.GeneratorExp):
        return ast.copy_location(ast.ListComp(a.elt, a.generators), a)
    return a


def _is_plain_path(e: ast.expr) -> bool:
    """``e`` is a name, or attributes and constant or name subscripts of one (``self.bufs[0]``):
    evaluating it twice reads the same object."""
    while isinstance(e, ast.Attribute | ast.Subscript):
        if isinstance(e, ast.Subscript) and not isinstance(e.slice, ast.Constant | ast.Name):
            return False
        e = e.value
    return isinstance(e, ast.Name)


def _is_plain_target(t: ast.expr) -> bool:
    """A name, or a tuple / list of plain targets (no subscripts, attributes or starred)."""
    if isinstance(t, ast.Tuple | ast.List):
        return all(_is_plain_target(e) for e in t.elts)
    return isinstance(t, ast.Name)


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
