"""Placement: must this code run on the host, and why. One place answers it.

Given a function's kinds (``dependence.Typer``), placement says for an expression whether it is a
*host atom* — an operation that cannot be traced into a region — and returns the reason as data
(a :class:`~dycl_jax.ir.program.SplitKind`): a conversion (``t.item()``), a call into a dynamic
callee, an op with a data-dependent output shape (``nonzero``, ``x[mask]``), a builtin comparing
tensors (``max(ts)``), a side effect, short-circuit logic on a tensor, a tensor used as a Python
index. For statements it says whether a compound statement can be traced whole (static control
flow over tensor code) and whether an assignment writes state outside the function.

The normalizer consumes these answers; the facts they rest on live in ``facts``.
"""

from __future__ import annotations

import ast
from typing import Any

import torch

from dycl_jax.analysis import aliasing, facts
from dycl_jax.analysis.dependence import CallKind, Kind, Typer
from dycl_jax.analysis.source import ParsedFunction
from dycl_jax.ir.program import SplitKind
from dycl_jax.origin import user_class


class Placement:
    """Host-or-region decisions for one function, with reasons."""

    def __init__(self, parsed: ParsedFunction, typer: Typer) -> None:
        self.parsed = parsed
        self.typer = typer
        values = self._assigned_values()
        self.mask_names: set[str] = set()
        self.mask_names = self._find_mask_names(values)
        self.sequence_names = {n for n, vs in values.items() if all(_is_sequence(v) for v in vs)}
        self.dict_names = {n for n, vs in values.items() if all(_is_dict(v) for v in vs)}
        self.scalar_index_names = {
            n for n, vs in values.items() if all(self._is_flat_argmax(v) for v in vs)
        }

    def _find_mask_names(self, values: dict[str, list[ast.expr]]) -> set[str]:
        """Locals only ever assigned a visible boolean mask (``values``: what each local is
        assigned, from :meth:`_assigned_values`)."""
        # The greatest fixpoint of "every value assigned is a mask": start from every local and
        # drop those assigned anything else, until none drops (within len(values) + 1 passes).
        # Names assigned from each other (`done = done | newly`, `newly = ~done`) stay masks
        # when everything else they are assigned is one.
        masks: set[str] = set(values)
        while True:
            self.mask_names = masks
            new = {name for name in masks if all(self.is_mask(v) for v in values[name])}
            if new == masks:
                return masks
            masks = new

    def _assigned_values(self) -> dict[str, list[ast.expr]]:
        """Per local, every value assigned to it (a ``Constant(None)`` for anything but a plain
        ``name = value``)."""
        values: dict[str, list[ast.expr]] = {}
        for n in self.parsed.nodes:
            if isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.For | ast.NamedExpr):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                value = n.value if not isinstance(n, ast.For) else None
                for t in targets:
                    for name in ast.walk(t):
                        if isinstance(name, ast.Name) and isinstance(name.ctx, ast.Store):
                            plain = isinstance(t, ast.Name) and not isinstance(n, ast.AugAssign)
                            # Anything but `name = value` counts as a non-mask assignment.
                            seen = value if plain and value is not None else ast.Constant(None)
                            values.setdefault(name.id, []).append(seen)
        return values

    def is_local_name(self, e: ast.expr) -> bool:
        return isinstance(e, ast.Name) and e.id in self.typer.locals

    def atom_reason(self, e: ast.AST, local_effects_ok: bool = False) -> SplitKind | None:
        """Why ``e`` itself must be evaluated on the host (None when it can be traced)."""
        k = self.typer.kind
        if isinstance(e, ast.Call):
            if (
                isinstance(e.func, ast.Name)
                and self.typer.callee_objects(e.func) == (range,)
                and any(k(a).kind == Kind.TENSOR for a in e.args)
            ):
                return SplitKind.TENSOR_LOOP_BOUND  # range(n) with n a tensor: n read back
            ck = self.typer.call_kind(e)
            if any(k(a).kind == Kind.TENSOR for a in [*e.args, *(w.value for w in e.keywords)]):
                cands = self.typer.callee_objects(e.func) or ()
                if cands and all(c in facts.FORMATTING_BUILTINS for c in cands):
                    return SplitKind.CONVERSION  # str(t) / f"{t}": the text reads the value
                if cands == (id,):
                    return SplitKind.HOST_VALUE  # id(t): of the object the host holds
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
                    and self.is_local_name(func.value)
                    and not self.typer.rng_call(e)
                ):
                    return None
                return SplitKind.EFFECT
            if ck is CallKind.PURE and self.builds_object(e):
                return SplitKind.HOST_OBJECT
            func = e.func
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Constant)
                and isinstance(func.value.value, str)
            ):
                # "{}:{:d}".format(label, k): strings are made on the host, reading any tensor
                args = [*e.args, *(kw.value for kw in e.keywords)]
                if any(k(a).kind == Kind.TENSOR for a in args):
                    return SplitKind.CONVERSION
                if any(k(a).kind == Kind.HOST for a in args):
                    return SplitKind.HOST_VALUE
            if ck is CallKind.PURE and (
                (isinstance(e.func, ast.Attribute) and k(e.func.value).kind == Kind.HOST)
                or any(k(a).kind == Kind.HOST for a in [*e.args, *(w.value for w in e.keywords)])
            ):
                # a.astype(np.float64) on a .numpy() result (a region would see a tensor there);
                # int(k * 10), max(k, 0.0), math.floor(k) on a value read back: Python on the
                # host (in a region they would read the value again, and specialise on it)
                return SplitKind.HOST_VALUE
        elif (
            isinstance(e, ast.BinOp)
            and isinstance(e.op, ast.Mod)
            and isinstance(e.left, ast.Constant)
            and isinstance(e.left.value, str)
            and k(e.right).kind == Kind.TENSOR
        ):
            return SplitKind.CONVERSION  # "%.2f" % t: formatting reads the value
        elif isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
            if k(e.operand).kind == Kind.TENSOR:
                return SplitKind.BOOL_OP
        elif isinstance(e, ast.BoolOp):
            if any(k(v).kind == Kind.TENSOR for v in e.values):
                return SplitKind.BOOL_OP
        elif isinstance(e, ast.ListComp | ast.GeneratorExp | ast.SetComp | ast.DictComp):
            if any(k(c).kind == Kind.TENSOR for g in e.generators for c in g.ifs):
                return SplitKind.TENSOR_IF  # [h for h in hs if h.mean() > 0]: a host loop
        elif isinstance(e, ast.JoinedStr):
            kinds = {k(v.value).kind for v in e.values if isinstance(v, ast.FormattedValue)}
            if Kind.TENSOR in kinds:
                return SplitKind.CONVERSION  # f"{t}": formatting reads the value
            if Kind.HOST in kinds:
                return SplitKind.HOST_VALUE  # f"{k:.3f}" of a value read back: Python formats it
        elif isinstance(e, ast.Compare) and self.is_membership_test(e):
            return SplitKind.CONVERSION  # v in t: PyTorch reads (t == v).any() back
        elif isinstance(e, ast.Compare) and self.is_identity_test(e):
            return SplitKind.HOST_VALUE  # out is y: identity of the objects the host holds
        elif isinstance(e, ast.Compare) and len(e.ops) > 1:
            if k(e).kind == Kind.TENSOR:
                return SplitKind.BOOL_OP  # lo < t < hi is (lo < t) and (t < hi)
        elif isinstance(e, ast.IfExp):
            if k(e.test).kind == Kind.TENSOR:
                return SplitKind.BOOL_OP
        elif isinstance(e, ast.Slice):
            if any(b is not None and k(b).kind == Kind.TENSOR for b in (e.lower, e.upper, e.step)):
                return SplitKind.TENSOR_INDEX  # seq[:lens[i]]: the bound is read back
        elif isinstance(e, ast.Subscript):
            if self.has_scalar_index(e):
                return SplitKind.TENSOR_INDEX  # p[0, k] with k = p.argmax(): k is read back
            if k(e.slice).kind == Kind.TENSOR and (
                k(e.value).kind in (Kind.OBJ, Kind.PY)
                or self.is_sequence(e.value)
                or self.is_dict(e.value)
            ):
                return SplitKind.TENSOR_INDEX  # outs[confs.argmax()]: a Python list, read here
            if (
                isinstance(e.ctx, ast.Load)
                and k(e.value).kind == Kind.TENSOR
                and self.has_mask_index(e.slice)
            ):
                return SplitKind.DATA_DEPENDENT_SHAPE  # x[mask]: shape depends on the mask
        return None

    def is_membership_test(self, e: ast.Compare) -> bool:
        """``v in t`` / ``v not in t`` with ``t`` a tensor (``pad_token_id in input_ids``)."""
        return (
            len(e.ops) == 1
            and isinstance(e.ops[0], ast.In | ast.NotIn)
            and self.typer.kind(e.comparators[0]).kind == Kind.TENSOR
        )

    def is_identity_test(self, e: ast.Compare) -> bool:
        """``a is b`` / ``a is not b`` between tensors (not against a constant such as None,
        which the signature decides): in a region each input is its own placeholder and the
        answer would be baked in, so the host compares the objects it holds."""
        if not all(isinstance(op, ast.Is | ast.IsNot) for op in e.ops):
            return False
        operands = [e.left, *e.comparators]
        if any(isinstance(o, ast.Constant) for o in operands):
            return False
        return any(self.typer.kind(o).kind == Kind.TENSOR for o in operands)

    def builds_object(self, call: ast.Call) -> bool:
        """True for a user class built from tensors (a dataclass, NamedTuple, an exception, an
        HF ``ModelOutput``): built on the host from the tensors regions computed, so the object
        holds real arrays (traced, it would hold capture-time stand-ins)."""
        cands = self.typer.callee_objects(call.func)
        if not cands or not all(_is_user_class(c) for c in cands):
            return False
        args = [*call.args, *(k.value for k in call.keywords)]
        return any(self.typer.kind(a).kind == Kind.TENSOR for a in args)

    def _is_flat_argmax(self, e: ast.expr) -> bool:
        """``t.argmax()`` / ``torch.argmin(t)`` without a dim: a 0-d integer tensor."""
        if not isinstance(e, ast.Call) or e.keywords:
            return False
        f = e.func
        if not isinstance(f, ast.Attribute) or f.attr not in ("argmax", "argmin"):
            return False
        if self.typer.kind(f.value).kind == Kind.TENSOR:
            return not e.args  # t.argmax()
        return (
            self.typer.callee_objects(f) in ((torch.argmax,), (torch.argmin,)) and len(e.args) == 1
        )

    def is_scalar_index(self, e: ast.expr) -> bool:
        """A visibly 0-d integer tensor used inside a multi-dimensional index (``p[0, k]``):
        PyTorch reads it back as a Python int there."""
        if isinstance(e, ast.BinOp) and isinstance(
            e.op, ast.Add | ast.Sub | ast.Mult | ast.FloorDiv | ast.Mod
        ):
            # k - 5, k + 1 with k such an index and a Python int: still a 0-d integer tensor
            for idx, other in ((e.left, e.right), (e.right, e.left)):
                if self.is_scalar_index(idx) and self._is_python_int(other):
                    return True
            return False
        return self._is_flat_argmax(e) or (
            isinstance(e, ast.Name) and e.id in self.scalar_index_names
        )

    def _is_python_int(self, e: ast.expr) -> bool:
        if isinstance(e, ast.Constant):
            return type(e.value) is int
        return self.typer.kind(e).kind == Kind.PY and isinstance(e, ast.Name | ast.Attribute)

    def has_scalar_index(self, e: ast.Subscript) -> bool:
        if self.typer.kind(e.value).kind != Kind.TENSOR or self.is_dict(e.value):
            return False  # (a dict of tensors takes the tensor as its key: see atom_reason)
        elts = e.slice.elts if isinstance(e.slice, ast.Tuple) else [e.slice]
        return any(self.is_scalar_index(x) for x in elts)

    def is_sequence(self, e: ast.expr) -> bool:
        """True when ``e`` is visibly a Python list or tuple (a display, a comprehension,
        ``list(...)``, or a local only ever assigned such), not a tensor."""
        return _is_sequence(e) or (isinstance(e, ast.Name) and e.id in self.sequence_names)

    def is_dict(self, e: ast.expr) -> bool:
        """True when ``e`` is visibly a Python dict (a display, a comprehension, ``dict(...)``,
        or a local only ever assigned such)."""
        return _is_dict(e) or (isinstance(e, ast.Name) and e.id in self.dict_names)

    def is_held_container(self, e: ast.expr) -> bool:
        """True when ``e`` reaches a Python list, dict or set through module attributes
        (``self.buf``, ``self.cache["k"]``, ``self.block.outs``): state that outlives the call,
        written on the host."""
        objs = self._held(e)
        return objs is not None and bool(objs) and all(facts.held_state(o) for o in objs)

    def _held(self, e: ast.expr) -> list[Any] | None:
        """The concrete objects ``e`` can be, followed through module attributes and container
        entries from a name the typer resolves (``self``); None when unknown."""
        if isinstance(e, ast.Attribute):
            base = self._held(e.value)
            if base is None or not all(isinstance(b, torch.nn.Module) for b in base):
                return None
            try:
                return [getattr(b, e.attr) for b in base]
            except Exception:
                return None
        if isinstance(e, ast.Subscript):
            base = self._held(e.value)
            if base is None or not all(isinstance(b, list | dict | tuple) for b in base):
                return None
            if isinstance(e.slice, ast.Constant):
                try:
                    return [b[e.slice.value] for b in base]  # type: ignore[index]
                except Exception:
                    return None
            return [x for b in base for x in (b.values() if isinstance(b, dict) else b)]
        if isinstance(e, ast.Name):
            k = self.typer.kind(e)
            if k.kind == Kind.OBJ and k.values:
                return list(k.values)
        return None

    def is_mask(self, e: ast.expr) -> bool:
        """True when ``e`` is visibly a boolean tensor (a comparison, a logical combination of
        them, ``.bool()``, or a local only ever assigned such). A mask that is missed is refused
        at capture with the user's line; one wrongly assumed only runs in PyTorch on the host."""
        if isinstance(e, ast.Compare):
            return self.typer.kind(e).kind == Kind.TENSOR
        if isinstance(e, ast.BinOp) and isinstance(e.op, ast.BitAnd | ast.BitOr | ast.BitXor):
            return self.is_mask(e.left) or self.is_mask(e.right)
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Invert):
            return self.is_mask(e.operand)
        if isinstance(e, ast.Call) and _bool_dtype(e):
            return self.typer.kind(e).kind == Kind.TENSOR  # torch.zeros(n, dtype=torch.bool)
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute):
            return e.func.attr in facts.MASK_METHODS and self.typer.kind(e).kind == Kind.TENSOR
        if isinstance(e, ast.Subscript):
            return isinstance(e.ctx, ast.Load) and self.is_mask(e.value)  # (s > t)[0]
        if isinstance(e, ast.Name):
            return e.id in self.mask_names
        return False

    def has_mask_index(self, index: ast.expr) -> bool:
        """A boolean mask as the index or one entry of an index tuple (``x[:, keep]``)."""
        if isinstance(index, ast.Tuple):
            return any(self.is_mask(i) for i in index.elts)
        return self.is_mask(index)

    def has_host_atom(self, node: ast.AST, local_effects_ok: bool = False) -> bool:
        for sub in aliasing.walk_no_defs(node):
            if self.atom_reason(sub, local_effects_ok) is not None:
                return True
        return False

    def is_host_store(self, target: ast.expr, augmented: bool = False) -> bool:
        """Stores that run on the host: state outside the function (``self.x = ...``,
        ``cfg[k] = ...``) and entries of a Python list rebound (``outs[j] = a``; not
        ``outs[j] += a``, which writes the tensor in place)."""
        if isinstance(target, ast.Attribute):
            return True
        if isinstance(target, ast.Subscript):
            if self.is_sequence(target.value) and not augmented:
                return True  # outs[j] = a: an entry of a Python list, rebound on the host
            if self.is_held_container(target.value) and not augmented:
                return True  # self.buf[i] = h: a container the module holds (call state)
            if self.is_dict(target.value) and not augmented:
                return True  # out["exit"] = t: an entry of a Python dict, set on the host
            return self.typer.kind(target.value).kind != Kind.TENSOR and not self.is_local_name(
                target.value
            )
        if isinstance(target, ast.Tuple | ast.List):
            return any(self.is_host_store(t, augmented) for t in target.elts)
        if isinstance(target, ast.Starred):
            return self.is_host_store(target.value, augmented)
        return False

    def stmt_needs_host(self, s: ast.stmt) -> bool:
        """True when a compound statement cannot be traced whole into a region."""

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
                aug = isinstance(n, ast.AugAssign)
                if any(self.is_host_store(t, aug) for t in targets):
                    return True
            if isinstance(n, ast.expr):
                return self.has_host_atom(n, local_effects_ok=True)
            if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Lambda):
                return False
            child_loop = in_loop or isinstance(n, ast.For | ast.While)
            return any(visit(c, child_loop) for c in ast.iter_child_nodes(n))

        return visit(s, False)


def _is_sequence(e: ast.expr) -> bool:
    if isinstance(e, ast.List | ast.Tuple | ast.ListComp):
        return True
    return (
        isinstance(e, ast.Call)
        and isinstance(e.func, ast.Name)
        and e.func.id in ("list", "tuple", "sorted")
    )


def _is_dict(e: ast.expr) -> bool:
    if isinstance(e, ast.Dict | ast.DictComp):
        return True
    return isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id == "dict"


def _is_user_class(c: object) -> bool:
    if not isinstance(c, type) or issubclass(c, torch.Tensor | torch.nn.Module):
        return False
    return user_class(c)


def _bool_dtype(call: ast.Call) -> bool:
    """``dtype=torch.bool`` among a call's keywords."""
    return any(
        k.arg == "dtype"
        and isinstance(k.value, ast.Attribute)
        and k.value.attr == "bool"
        and isinstance(k.value.value, ast.Name)
        and k.value.value.id == "torch"
        for k in call.keywords
    )


def python_keys(stmts: list[ast.stmt], tensor_names: frozenset[str]) -> set[str]:
    """Names used as the key of a Python container (``self.hist[k]``, ``table[k]``): a host
    scalar there is needed as the Python value itself (a 0-d array would hash by identity, and a
    defaultdict would even add it), so the region specialises on it."""
    out: set[str] = set()

    def python_object(e: ast.expr) -> bool:
        return not (isinstance(e, ast.Name) and e.id in tensor_names)

    def names(*es: ast.expr | None) -> set[str]:
        return {x.id for e in es if e is not None for x in ast.walk(e) if isinstance(x, ast.Name)}

    for s in stmts:
        for n in ast.walk(s):
            if isinstance(n, ast.Subscript) and python_object(n.value):
                out |= names(n.slice)  # table[k], cache[(k, 0)]
            elif (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in _HASHING_METHODS
                and python_object(n.func.value)
                and n.args
            ):
                out |= names(n.args[0])  # d.get(k), s.add(k), d.pop(k), d.setdefault(k, v)
            elif isinstance(n, ast.Compare) and any(
                isinstance(op, ast.In | ast.NotIn) for op in n.ops
            ):
                if all(python_object(c) for c in n.comparators):
                    out |= names(n.left)  # k in self.boost_classes (a set hashes k)
            elif isinstance(n, ast.Dict):
                out |= names(*n.keys)  # {k: v}
            elif isinstance(n, ast.Set):
                out |= names(*n.elts)  # {k}
    return out


# Methods of Python containers that hash (or compare) their first argument.
_HASHING_METHODS = frozenset(
    {"get", "pop", "setdefault", "add", "discard", "remove", "index", "count", "__contains__",
     "__getitem__", "fromkeys"}
)  # fmt: skip
