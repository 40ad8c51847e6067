"""Aliases between local names, and in-place writes that must reach every alias.

In eager PyTorch an in-place write (``h[idx] = v``, ``h.mul_(2)``, ``h += 1`` on a tensor) is seen
through every reference to the same storage: another name bound to the tensor (``cx = hx``), a
list or dict entry (``outs.append(h)``), a view (``v = h[:, :k]``; ``v.mul_(2)`` changes ``h``).
Inside one region, functionalization keeps those semantics exactly. Across a region boundary
they would be lost: regions are pure functions, so the write produces a new array bound to the
written name only.

This module finds, per statement, the **links** it creates between local names (``a = b``, a view
``a = b.view(...)``, a container holding ``b``, an iteration variable over a container) and the
tensor names it **writes in place**. The splitter uses them to (1) make a region output every
name linked inside it to a name it writes in place, and (2) refuse, at the user's line, an
in-place write in a region to an object that may be aliased by a link made outside that region.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import dataclasses
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from dycl_jax.analysis import cfg
from dycl_jax.analysis.cfg import Graph, Node
from dycl_jax.analysis.dataflow import GraphVisitor
from dycl_jax.analysis.facts import (
    CONTAINER_MUTATORS,
    ITERATING_BUILTINS,
    LIST_ONLY_METHODS,
    TENSOR_HOMONYMS,
    VIEW_ATTRS,
    VIEW_METHODS,
)
from dycl_jax.ir.program import RUNTIME


@dataclasses.dataclass(frozen=True)
class Link:
    a: str
    b: str
    line: int
    kind: str  # "rename", "view", "container", "container-view", "iteration"


def _root_name(e: ast.expr) -> str | None:
    return e.id if isinstance(e, ast.Name) else None


def chain_root(e: ast.expr) -> str | None:
    """The name an attribute / subscript / call chain starts from (``a`` in ``a.b[c].d()``)."""
    while isinstance(e, ast.Attribute | ast.Subscript | ast.Call):
        e = e.func if isinstance(e, ast.Call) else e.value
    return _root_name(e)


def _container_root(e: ast.expr) -> str | None:
    """The name a container is reached from: ``outs``, ``d`` for ``d["k"]``, ``self`` for
    ``self.cache["k"]`` (an entry stored there outlives the statement like one in a local)."""
    while isinstance(e, ast.Subscript | ast.Attribute):
        e = e.value
    return _root_name(e)


# Calls known (from the live objects they resolve to) to may return one of their arguments or a
# view of it: ``self.drop(x)`` with nn.Dropout in eval, ``nn.Identity``, a helper ending
# ``return t[:, :2]``; call -> the argument's position; set by the splitter for one function.
_RETURNS_INPUT: contextvars.ContextVar[Mapping[ast.Call, int]] = contextvars.ContextVar(
    "dycl_returns_input", default=types.MappingProxyType({})
)


# Calls to user functions every return of which is a tuple display of one length (``return
# self.out(h), h``): call -> per element, the argument expressions that element may be, view or
# hold. Unpacked (``logits, h = self.step(tok, h)``), each target links only to its own.
# (An int among an element's entries: another element, of the same call, that may share an
# object with it.)
Parts = tuple[tuple[ast.expr | int, ...], ...]
_RETURNS_PARTS: contextvars.ContextVar[Mapping[ast.Call, Parts]] = contextvars.ContextVar(
    "dycl_returns_parts", default=types.MappingProxyType({})
)


# The position recorded for a call whose result may be, view or hold any of its arguments (an
# opaque library function, a dataclass built from tensors): every name its arguments reach.
ANY_ARGUMENT = -1


def _argument_names(call: ast.Call) -> list[str]:
    out: list[str] = []
    for arg in [*call.args, *(k.value for k in call.keywords)]:
        arg = arg.value if isinstance(arg, ast.Starred) else arg
        root = view_root(arg)
        out.extend([root] if root is not None else [])
        out.extend(held_names(arg))
    return out


@contextlib.contextmanager
def returning_input(
    calls: Mapping[ast.Call, int],
    parts: Mapping[ast.Call, Parts] | None = None,
) -> Iterator[None]:
    """Treat each call in ``calls`` as returning its argument at the position given (or a view
    of it) while analysing one function; ``parts``: calls returning a tuple whose elements each
    may be only some of the arguments (see ``_RETURNS_PARTS``)."""
    token = _RETURNS_INPUT.set(calls)
    token2 = _RETURNS_PARTS.set(parts if parts is not None else {})
    try:
        yield
    finally:
        _RETURNS_PARTS.reset(token2)
        _RETURNS_INPUT.reset(token)


def view_root(e: ast.expr) -> str | None:
    """``b`` when ``e`` is ``b`` itself or a view of it (``b[...]``, ``b.T``, ``b.view(...)``,
    chains of those), or an iterator / call that hands ``b`` (or its items) back."""
    inner = False  # below the top: a display there is the container an item comes from
    while True:
        if isinstance(e, ast.Name):
            return e.id
        if inner and isinstance(
            e,
            ast.List | ast.Tuple | ast.Set | ast.Dict | ast.Call | ast.ListComp | ast.DictComp,
        ):
            held = held_names(e)  # `tuple([h])[0]`, `next(iter([h]))`, `deque([h]).popleft()`
            if held:
                return held[0]
        inner = True
        returned = _RETURNS_INPUT.get().get(e) if isinstance(e, ast.Call) else None
        if returned is not None:
            assert isinstance(e, ast.Call)
            if returned == ANY_ARGUMENT:  # the first name it may hand back (the rest: held)
                names = _argument_names(e)
                return names[0] if names else None
            e = e.args[returned]
            continue
        if isinstance(e, ast.Call) and e.args and _inplace_keyword(e):
            e = e.args[0]  # F.relu(h, inplace=True) hands h back, written
            continue
        if (
            isinstance(e, ast.Call)
            and isinstance(e.func, ast.Name)
            and (e.func.id in ITERATING_BUILTINS or e.func.id in ("next", "sorted"))
            and e.args
        ):
            e = e.args[0]  # enumerate(xs): its items are xs's (zip: see iteration_roots)
            continue
        if isinstance(e, ast.NamedExpr):  # `a = (b := h)`: h
            e = e.value
            continue
        if isinstance(e, ast.Subscript):
            e = e.value
        elif isinstance(e, ast.Attribute) and e.attr in VIEW_ATTRS:
            e = e.value
        elif (
            isinstance(e, ast.Attribute)
            and e.attr not in _TENSOR_OWN_ATTRS
            and chain_root(e.value) not in _TORCH_NAMESPACES
        ):
            # `st.hidden` of a local object, `self.running` of the module: an item it holds
            e = e.value
        elif isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute):
            func = e.func
            attr = func.attr
            if (
                isinstance(func.value, ast.Name)
                and func.value.id == RUNTIME
                and attr in ("rows", "at")
                and e.args
            ):
                # `_dy.rows(xs)`, the host program's loop over xs, and `_dy.at(xs, i)`, its
                # `xs[i]`: xs's items
                e = e.args[0]
                continue
            # torch.flatten(h) / F.relu_(h): the function form of a view or in-place op;
            # `_dy.numpy(h)`, the host program's `h.numpy()`, which PyTorch's shares memory
            if isinstance(func.value, ast.Name) and (
                func.value.id in _TORCH_NAMESPACES or (func.value.id, attr) == (RUNTIME, "numpy")
            ):
                if (attr in VIEW_METHODS or _inplace_name(attr)) and e.args:
                    e = e.args[0]
                    continue
                return None
            if attr in _ITEM_METHODS:  # `d.get(k)`, `outs.pop()`: an item of the container
                held = held_names(func.value)
                if held:  # of a display (`[h].pop()`): the first name it holds
                    return held[0]
                e = func.value
            elif attr in VIEW_METHODS or _inplace_name(attr):  # in-place methods return self
                e = func.value
            else:
                return None
        elif isinstance(e, ast.IfExp):  # `h if c else x`: either (the first named one)
            return view_root(e.body) or view_root(e.orelse)
        else:
            return None


OPERATOR_INPLACE = frozenset(
    {
        "iadd", "isub", "imul", "imatmul", "itruediv", "ifloordiv", "imod", "ipow",
        "iand", "ior", "ixor", "ilshift", "irshift",
    }
)  # fmt: skip
_INPLACE_DUNDERS = frozenset(f"__{n}__" for n in OPERATOR_INPLACE)
# `x.__setitem__(i, v)`, `operator.setitem(x, i, v)`: item writes spelled as calls.
ITEM_WRITERS = frozenset({"setitem", "delitem", "__setitem__", "__delitem__"})


def _namespace(e: ast.expr) -> bool:
    """``torch``, ``F``, ``nn.init``, ``torch.nn.functional``: a module's functions, which take
    the tensor they write as their first argument."""
    while isinstance(e, ast.Attribute):
        e = e.value
    return isinstance(e, ast.Name) and e.id in _TORCH_NAMESPACES


def _item_default(e: ast.expr) -> ast.expr | None:
    """The default of ``d.get(k, h)`` / ``d.setdefault(k, h)`` / ``d.pop(k, h)``, which may be
    what the call hands back."""
    if (
        isinstance(e, ast.Call)
        and isinstance(e.func, ast.Attribute)
        and e.func.attr in ("get", "setdefault", "pop")
        and len(e.args) == 2
    ):
        return e.args[1]
    return None


# Container methods that hand back one of the container's items.
_ITEM_METHODS = frozenset(
    {"get", "pop", "popleft", "setdefault", "__getitem__", "copy", "values", "items", "keys"}
)

# Attributes of a tensor that are not (views of) its storage.
_TENSOR_OWN_ATTRS = frozenset(
    {"grad", "shape", "dtype", "device", "ndim", "layout", "requires_grad", "is_leaf",
     "names", "grad_fn", "is_cuda", "itemsize", "nbytes"}
)  # fmt: skip

# Names under which user code usually reaches torch's functional namespace.
_TORCH_NAMESPACES = frozenset({"torch", "F", "functional", "nn"})


def _inplace_keyword(call: ast.Call) -> bool:
    return any(
        kw.arg == "inplace" and isinstance(kw.value, ast.Constant) and kw.value.value is True
        for kw in call.keywords
    )


def _inplace_name(name: str) -> bool:
    return name.endswith("_") and not name.startswith("_")


def held_names(e: ast.expr) -> list[str]:
    """Names whose objects a container literal holds (``[a, b]``, ``(a, *b)``, ``{k: a}``)."""
    out: list[str] = []
    if isinstance(e, ast.Call) and _RETURNS_INPUT.get().get(e) == ANY_ARGUMENT:
        return _argument_names(e)
    func = e.func if isinstance(e, ast.Call) else None
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if name in ("list", "tuple", "dict", "set", "deque", "iter", "OrderedDict", "defaultdict"):
        assert isinstance(e, ast.Call)
        for arg in [*e.args, *(k.value for k in e.keywords)]:
            root = view_root(arg)
            if root is not None:
                out.append(root)
            out.extend(held_names(arg))
    elif isinstance(e, ast.List | ast.Tuple | ast.Set):
        for elt in e.elts:
            inner = elt.value if isinstance(elt, ast.Starred) else elt
            name = view_root(inner)
            if name is not None:
                out.append(name)
            out.extend(held_names(inner))
    elif isinstance(e, ast.Dict):
        for v in e.values:
            name = view_root(v)
            if name is not None:
                out.append(name)
            out.extend(held_names(v))
    elif isinstance(e, ast.BinOp) and isinstance(e.op, ast.Mult | ast.Add):
        out.extend(held_names(e.left))  # [h] * 3 holds h three times; [a] + [b] both
        out.extend(held_names(e.right))
    elif isinstance(e, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
        # `{i: t for i, t in enumerate(xs)}`, `[t[0] for t in xs]`: the items (or views of
        # them) of what it iterates, and any other name an entry is
        elt = e.value if isinstance(e, ast.DictComp) else e.elt
        bound = {n for g in e.generators for n in target_names(g.target)}
        root = view_root(elt)
        for name in [*([root] if root is not None else []), *held_names(elt)]:
            if name in bound:
                out.extend(r for g in e.generators for r in iteration_roots(g.iter))
            else:
                out.append(name)
    return out


def _held_views(e: ast.expr) -> list[str]:
    """Names a container literal holds a view of (``[h[0], h[1]]``, ``(h, h.view(-1))``): its
    entries share storage with the name, and with each other."""
    elts: list[ast.expr] = []
    if isinstance(e, ast.List | ast.Tuple | ast.Set):
        elts = [x.value if isinstance(x, ast.Starred) else x for x in e.elts]
    elif isinstance(e, ast.Dict):
        elts = list(e.values)
    return [
        name for x in elts if not isinstance(x, ast.Name) and (name := view_root(x)) is not None
    ]


def flat_targets(targets: list[ast.expr]) -> list[ast.expr]:
    """Assignment targets with tuple / list / starred unpacking flattened."""
    out: list[ast.expr] = []
    for t in targets:
        if isinstance(t, ast.Tuple | ast.List):
            out.extend(flat_targets(list(t.elts)))
        elif isinstance(t, ast.Starred):
            out.extend(flat_targets([t.value]))
        else:
            out.append(t)
    return out


def target_names(t: ast.expr) -> list[str]:
    return [n.id for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]


def links(stmt: ast.stmt, tensors: frozenset[str] = frozenset()) -> list[Link]:
    """The alias links ``stmt`` itself creates (nested blocks not entered). ``tensors``: names
    known to hold one tensor, which ``t[i] = v`` copies into (no link)."""
    line = stmt.lineno
    out: list[Link] = []

    def add(a: str | None, b: str | None, kind: str) -> None:
        if a is not None and b is not None and a != b:
            out.append(Link(a, b, line, kind))

    if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        value = stmt.value
        for t in targets:
            if (
                isinstance(t, ast.Tuple | ast.List)
                and isinstance(value, ast.Tuple | ast.List)
                and len(t.elts) == len(value.elts)
            ):
                for te, ve in zip(t.elts, value.elts, strict=True):
                    # each pair as its own assignment (`a, b = (x if c else y), [z]`)
                    pair = ast.Assign([te], ve)
                    pair.lineno = line
                    out.extend(links(pair, tensors))
                continue
            parts = _RETURNS_PARTS.get().get(value) if isinstance(value, ast.Call) else None
            if (
                parts is not None
                and isinstance(t, ast.Tuple | ast.List)
                and len(t.elts) == len(parts)
                and not any(isinstance(te, ast.Starred) for te in t.elts)
            ):
                # `logits, h = self.step(tok, h)` with `return self.out(h), h`: h may be h, and
                # logits none of the arguments
                for te, args in zip(t.elts, parts, strict=True):
                    for name in target_names(te):
                        for arg in args:
                            if isinstance(arg, int):  # another element: `return y[:, :3], y`
                                for peer in target_names(t.elts[arg]):
                                    add(name, peer, "view")
                                continue
                            add(name, view_root(arg), "view")
                            for held in held_names(arg):
                                add(name, held, "container")
                continue
            root = view_root(value)
            for name in target_names(t) if not isinstance(t, ast.Subscript | ast.Attribute) else []:
                add(name, root, "rename" if isinstance(value, ast.Name) else "view")
                default = _item_default(value)  # d.get(k, h), d.setdefault(k, h): maybe h
                if default is not None:
                    add(name, view_root(default), "view")
                    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
                        if value.func.attr == "setdefault":
                            add(view_root(value.func.value), view_root(default), "container")
                for other in _alternatives(value)[1:]:  # `a if c else (b if d else h)`
                    add(name, view_root(other), "view")
                for held in held_names(value):
                    add(name, held, "container")
                for held in _held_views(value):
                    add(name, held, "container-view")
            if isinstance(t, ast.Subscript | ast.Attribute):  # d[k] = b, o.x = b
                base = view_root(t.value)
                if isinstance(t, ast.Subscript) and base in tensors:
                    continue  # a tensor's elements: a copy of b's values
                add(base, root, "container")
                for held in held_names(value):
                    add(base, held, "container")
    elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        for held in held_names(stmt.value):  # `lst += [h]`: lst holds h
            add(stmt.target.id, held, "container")
    elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        call = stmt.value
        f = call.func
        if isinstance(f, ast.Attribute) and f.attr in CONTAINER_MUTATORS:
            owner = _container_root(f.value)
            for arg in [*call.args, *(k.value for k in call.keywords)]:  # d.update(k=h)
                add(owner, view_root(arg), "container")
                if not isinstance(arg, ast.Name):
                    add(owner, view_root(arg), "container-view")
                for held in held_names(arg):
                    add(owner, held, "container")
    elif isinstance(stmt, ast.For):
        for root in iteration_roots(stmt.iter):
            for name in target_names(stmt.target):
                add(name, root, "iteration")
    nodes = walk_no_defs(stmt) if not isinstance(stmt, ast.For | ast.While | ast.If) else []
    # a comprehension's variable is an item of what it iterates (`[(c := t) for t in xs]`)
    items = {
        name: iteration_roots(g.iter)
        for g in nodes
        if isinstance(g, ast.comprehension)
        for name in target_names(g.target)
    }
    for n in nodes:
        if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name):  # (b := h)
            for alt in _alternatives(n.value):
                root = view_root(alt)
                for source in items.get(root, [root]) if root is not None else []:
                    add(n.target.id, source, "view")
    return out


def _alternatives(e: ast.expr) -> list[ast.expr]:
    """The expressions ``e`` may evaluate to: both arms of (nested) conditional expressions,
    each operand of ``a or b`` / ``a and b``."""
    if isinstance(e, ast.IfExp):
        return _alternatives(e.body) + _alternatives(e.orelse)
    if isinstance(e, ast.BoolOp):
        return [x for v in e.values for x in _alternatives(v)]
    return [e]


def iteration_roots(it: ast.expr) -> list[str]:
    """The names whose objects (or items) a loop over ``it`` binds: each of ``zip``'s arguments,
    else the root of ``it`` (``enumerate(xs)``, ``xs.unbind(0)``, ``xs``)."""
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "zip":
        return [r for a in it.args for r in iteration_roots(a)]
    if (
        isinstance(it, ast.Call)
        and isinstance(it.func, ast.Name)
        and it.func.id in ("enumerate", "reversed", "list", "tuple", "iter", "sorted")
        and it.args
    ):
        return iteration_roots(it.args[0])
    if isinstance(it, ast.List | ast.Tuple | ast.Set):  # `for t in (q, k):` each of them
        return held_names(it)
    if isinstance(it, ast.BinOp):  # `for t in (q, k) + (v,):`
        return iteration_roots(it.left) + iteration_roots(it.right)
    root = view_root(it)
    return [root] if root is not None else []


def inplace_writes(
    stmt: ast.stmt,
    tensors: frozenset[str],
    containers: frozenset[str] = frozenset(),
    entries: bool = True,
    lists: frozenset[str] = frozenset(),
    attributes: bool = True,
) -> list[tuple[str, int]]:
    """(name, line) of tensor-typed locals ``stmt`` writes in place, nested blocks included:
    ``x[i] = v``, ``x[i] += v``, ``x += v``, ``x.add_(v)``; and of ``containers`` (lists and
    dicts holding tensors) written through an entry (``hs[0] *= 2``, ``d["a"].add_(1)``).
    ``entries=False`` leaves out ``d["key"] = v`` and ``lst[i] = v`` for ``lists`` (names only
    bound to new lists and dicts), which replace an entry (a string key never indexes a
    tensor) and write no tensor's memory."""
    out: list[tuple[str, int]] = []
    tensors = tensors | containers  # (a container's own `+=` is not a tensor write: below)
    for n in walk_no_defs(stmt):
        if isinstance(n, ast.Assign | ast.AugAssign):
            targets = flat_targets(n.targets if isinstance(n, ast.Assign) else [n.target])
            for t in targets:
                if not attributes and isinstance(t, ast.Attribute):
                    continue  # `tree.state = v`: an attribute set on the object itself
                if (
                    not entries
                    and isinstance(n, ast.Assign)
                    and isinstance(t, ast.Subscript)
                    and (
                        _names_an_entry(t)
                        # (`lst[0][:, 0] = 5` writes the tensor lst[0] is: not an entry)
                        or (isinstance(t.value, ast.Name) and t.value.id in lists)
                    )
                ):
                    continue
                if isinstance(t, ast.Subscript | ast.Attribute) and isinstance(n, ast.Assign):
                    name = view_root(t.value)
                    if name in tensors:
                        out.append((name, n.lineno))
                elif isinstance(t, ast.Subscript):
                    name = view_root(t.value)
                    if name in tensors:
                        out.append((name, n.lineno))
                elif (
                    isinstance(n, ast.AugAssign)
                    and isinstance(t, ast.Name)
                    and t.id in tensors
                    and t.id not in containers
                    # `outs += [h]`, `d |= {...}`: a Python container (no tensor takes a display)
                    and not isinstance(
                        n.value,
                        ast.List | ast.ListComp | ast.Tuple | ast.Dict | ast.DictComp | ast.Set,
                    )
                ):
                    out.append((t.id, n.lineno))
        elif isinstance(n, ast.Call):
            for name in call_writes(n):
                if name in tensors:
                    out.append((name, n.lineno))
    return out


def _names_an_entry(t: ast.expr) -> bool:
    """``d["key"] = v``: a string key, which indexes a dict (or an object), never a tensor."""
    return (
        isinstance(t, ast.Subscript)
        and isinstance(t.slice, ast.Constant)
        and isinstance(t.slice.value, str)
    )


def call_writes(call: ast.Call) -> list[str | None]:
    """Names a call writes in place: ``x.add_(...)``, ``torch.relu_(x)``, ``F.relu(x,
    inplace=True)``, ``torch.add(a, b, out=y)``."""
    out: list[str | None] = []
    f = call.func
    if (
        isinstance(f, ast.Call)
        and isinstance(f.func, ast.Name)
        and f.func.id == "getattr"
        and len(f.args) >= 2
        and isinstance(f.args[1], ast.Constant)
        and isinstance(f.args[1].value, str)
    ):  # getattr(h, "add_")(1), getattr(torch, "relu_")(h): the attribute spelled out
        f = ast.Attribute(f.args[0], f.args[1].value, ast.Load())
    if isinstance(f, ast.Attribute) and (
        _inplace_name(f.attr) or f.attr in _INPLACE_DUNDERS or f.attr in ITEM_WRITERS
    ):
        if _namespace(f.value) or (
            isinstance(f.value, ast.Name) and f.value.id in ("operator", "_operator")
        ):  # torch.relu_(x), nn.init.zeros_(x), operator.setitem(x, i, v)
            if call.args:
                out.append(view_root(call.args[0]))
        else:  # (`st.hidden.mul_(2)`: a tensor an object holds, written through it)
            out.append(view_root(f.value) or _container_root(f.value))
    elif (
        isinstance(f, ast.Attribute)
        and isinstance(f.value, ast.Name)
        and f.value.id == "operator"
        and f.attr in OPERATOR_INPLACE
        and call.args
    ):
        out.append(view_root(call.args[0]))  # operator.iadd(x, 1)
    for kw in call.keywords:
        if kw.arg == "inplace" and isinstance(kw.value, ast.Constant) and kw.value.value is True:
            if call.args:
                out.append(view_root(call.args[0]))
        elif kw.arg == "out" and not _constructor(f):
            out.append(view_root(kw.value))  # (not a class's field: `Result(out=x, ...)`)
    return out


def _constructor(f: ast.expr) -> bool:
    """A call of a class by its name, by Python's naming convention (``FuzzResult(out=x)``)."""
    name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
    return name[:1].isupper()


def walk_no_defs(node: ast.AST) -> list[ast.AST]:
    """``node`` and its descendants, not entering nested function, lambda or class bodies."""
    out: list[ast.AST] = []
    todo = [node]
    while todo:
        n = todo.pop()
        out.append(n)
        if n is not node and isinstance(n, ast.FunctionDef | ast.Lambda | ast.ClassDef):
            continue
        todo.extend(ast.iter_child_nodes(n))
    return out


def all_links(
    stmts: list[ast.stmt], tensors: frozenset[str] = frozenset()
) -> list[tuple[ast.stmt, Link]]:
    """(statement, link) for every link made in ``stmts`` and their nested blocks."""
    return [
        (n, link)
        for s in stmts
        for n in walk_no_defs(s)
        if isinstance(n, ast.stmt)
        for link in links(n, tensors)
    ]


def fresh_bindings(stmt: ast.stmt) -> set[str]:
    """Names ``stmt`` binds to a new object (not a rename or view of another name)."""
    if isinstance(stmt, ast.Assign) and view_root(stmt.value) is None:
        return {n for t in stmt.targets if isinstance(t, ast.Name) for n in [t.id]}
    return set()


def reach(seeds: Iterable[str], edges: Iterable[tuple[str, str]]) -> set[str]:
    """``seeds`` and every name reached from them along ``edges`` (a, b): a reaches b."""
    succ: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    reached = set(seeds)
    todo = list(reached)
    while todo:
        for b in succ.get(todo.pop(), ()):
            if b not in reached:
                reached.add(b)
                todo.append(b)
    return reached


def positions(fn: ast.FunctionDef | ast.Lambda, names: Iterable[str]) -> set[int]:
    """The positions among ``fn``'s positional parameters of those named in ``names``."""
    a = fn.args
    wanted = set(names)
    return {i for i, x in enumerate([*a.posonlyargs, *a.args]) if x.arg in wanted}


def all_params(fn: ast.FunctionDef | ast.Lambda) -> set[str]:
    """Every parameter name of ``fn``, ``*args`` and ``**kwargs`` included."""
    a = fn.args
    names = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
    return names | {x.arg for x in (a.vararg, a.kwarg) if x is not None}


def returned_params_by_part(
    fn: ast.FunctionDef,
) -> tuple[tuple[frozenset[str], frozenset[int]], ...] | None:
    """When every ``return`` of ``fn`` is a tuple display of one length (no starred element,
    no ``yield``): per element, the parameters it may be, view or hold (as
    :func:`returned_params`, per position; ``**kwargs`` and ``self`` among them), and the other
    elements that may share an object with it (``return y[:, :3], y``); None otherwise."""
    returns = [n for n in walk_no_defs(fn) if isinstance(n, ast.Return | ast.Yield | ast.YieldFrom)]
    if not returns or any(not isinstance(r, ast.Return) for r in returns):
        return None
    values = [r.value for r in returns]
    if not all(isinstance(v, ast.Tuple) for v in values):
        return None
    tuples = [v for v in values if isinstance(v, ast.Tuple)]
    if len({len(t.elts) for t in tuples}) != 1 or any(
        isinstance(e, ast.Starred) for t in tuples for e in t.elts
    ):
        return None
    params = all_params(fn)
    edges = [(lk.a, lk.b) for _, lk in all_links(fn.body)]
    reached = [
        reach({n for t in tuples for n in result_names(t.elts[i])}, edges)
        for i in range(len(tuples[0].elts))
    ]
    return tuple(
        (
            frozenset(r & params),
            frozenset(j for j, other in enumerate(reached) if j != i and r & other),
        )
        for i, r in enumerate(reached)
    )


def result_names(e: ast.expr) -> list[str]:
    """The names whose objects ``e`` may be, view or hold: of each alternative
    (``a if c else b``, ``a or b``), its root, what it holds and a ``d.get(k, h)`` default."""
    out: list[str] = []
    for alt in _alternatives(e):
        for x in (alt, _item_default(alt)):
            if x is not None:
                root = view_root(x)
                out.extend([root] if root is not None else [])
                out.extend(held_names(x))
    return out


def returned_params(fn: ast.FunctionDef | ast.Lambda) -> frozenset[str]:
    """Parameters whose objects (or views of them, or containers holding them) ``fn`` may hand
    back: ``return t[:, :2]``, ``return x`` on a skip path, ``y = x.view(-1); return y``,
    ``return t, t.sum()``. Flow-insensitive over the function's own links (no callee followed)."""
    params = all_params(fn)
    reached: set[str] = set()
    results = (
        [fn.body]
        if isinstance(fn, ast.Lambda)
        else [
            n.value
            for n in walk_no_defs(fn)
            if isinstance(n, ast.Return | ast.Yield) and n.value is not None
        ]
    )
    for value in results:
        reached.update(result_names(value))
    # a local the result may be reaches what it was made from
    links_ = [] if isinstance(fn, ast.Lambda) else [link for _, link in all_links(fn.body)]
    return frozenset(reach(reached, ((lk.a, lk.b) for lk in links_)) & params)


_PY_CONSTANT = (bool, int, float, complex, str, type(None))


def python_return_parts(fn: ast.FunctionDef) -> tuple[bool, ...] | None:
    """When every ``return`` of ``fn`` is a tuple display of one length: per position, whether
    it is visibly a Python value there, a number, string or None constant, or a local bound only
    to such constants and updated only by them (``steps = 0`` ... ``steps += 1``). None when a
    return is anything else (or a generator yields)."""
    returns = [n for n in walk_no_defs(fn) if isinstance(n, ast.Return | ast.Yield | ast.YieldFrom)]
    if not returns or any(not isinstance(r, ast.Return) for r in returns):
        return None
    values = [r.value for r in returns]
    if not all(isinstance(v, ast.Tuple) for v in values):
        return None
    tuples = [v for v in values if isinstance(v, ast.Tuple)]
    if len({len(t.elts) for t in tuples}) != 1:
        return None
    counters = _constant_locals(fn)

    def python(e: ast.expr) -> bool:
        if isinstance(e, ast.Constant):
            return type(e.value) in _PY_CONSTANT
        return isinstance(e, ast.Name) and e.id in counters

    return tuple(all(python(t.elts[i]) for t in tuples) for i in range(len(tuples[0].elts)))


def _constant_locals(fn: ast.FunctionDef) -> frozenset[str]:
    """Locals of ``fn`` bound only by ``name = <constant>`` and ``name op= <constant>``."""
    a = fn.args
    params = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x}
    good: set[str] = set()
    bad: set[str] = set(params)
    judged: set[int] = set()  # the targets of assignments already judged
    for n in walk_no_defs(fn):
        if id(n) in judged:
            continue
        if isinstance(n, ast.Global | ast.Nonlocal):
            bad.update(n.names)
        elif isinstance(n, ast.Assign | ast.AugAssign):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            constant = isinstance(n.value, ast.Constant) and type(n.value.value) in _PY_CONSTANT
            for t in targets:
                if isinstance(t, ast.Name) and constant:
                    good.add(t.id)
                    judged.add(id(t))
                else:
                    bad.update(x.id for x in ast.walk(t) if isinstance(x, ast.Name))
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
            bad.add(n.id)  # a loop target, `with ... as`, a walrus, an annotated binding
        elif isinstance(n, ast.arg | ast.ExceptHandler | ast.alias | ast.MatchAs | ast.MatchStar):
            name = getattr(n, "arg", None) or getattr(n, "name", None) or getattr(n, "asname", None)
            if isinstance(name, str):
                bad.add(name)
    return frozenset(good - bad)


def mutated_params(
    fn: ast.FunctionDef, attributes: bool = True, objects: bool = True
) -> frozenset[str]:
    """Parameters of ``fn`` whose objects it writes in place (never rebinding them first):
    ``d[k] = v``, ``buf[i] = x``, ``h.mul_(2)``, ``outs.append(v)``, ``x += 1``. ``objects=
    False``: not counting calls of methods no tensor has (``outs.append(h)``,
    ``cache.update(k, v, layer_idx)``): they change a Python object, which a caller given that
    object sees."""
    return frozenset(param_writes(fn, attributes, objects))


def plain_containers(fn: ast.FunctionDef) -> frozenset[str]:
    """Locals only ever bound to a new list or dict (a display, a comprehension, ``[None] * n``,
    ``list(...)``, ``dict(...)``): ``name[i] = v`` replaces an entry, it writes no tensor."""

    def new_container(e: ast.expr) -> bool:
        if isinstance(e, ast.List | ast.Dict | ast.ListComp | ast.DictComp):
            return True
        if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Mult | ast.Add):
            return new_container(e.left) or (isinstance(e.op, ast.Mult) and new_container(e.right))
        return (
            isinstance(e, ast.Call)
            and isinstance(e.func, ast.Name)
            and e.func.id in ("list", "dict")
        )

    bound: dict[str, bool] = {}
    for n in walk_no_defs(fn):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(n, ast.Assign):
            targets, value = n.targets, n.value
        elif isinstance(n, ast.AnnAssign | ast.AugAssign | ast.NamedExpr):
            targets, value = [n.target], n.value
        elif isinstance(n, ast.For | ast.comprehension):
            targets = [n.target]
        elif isinstance(n, ast.withitem) and n.optional_vars is not None:
            targets = [n.optional_vars]
        for t in targets:
            for name in target_names(t):
                ok = isinstance(t, ast.Name) and value is not None and new_container(value)
                if isinstance(n, ast.AugAssign):  # `lst += [h]` keeps it a list
                    ok = bound.get(name, False)
                bound[name] = bound.get(name, True) and ok
    args = fn.args
    params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    return frozenset(n for n, ok in bound.items() if ok and n not in params)


def _stored_names(node: ast.AST) -> frozenset[str]:
    """The names ``node`` assigns (not inside nested definitions)."""
    return frozenset(
        n.id for n in walk_no_defs(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    )


def param_writes(
    fn: ast.FunctionDef, attributes: bool = True, objects: bool = True
) -> dict[str, int]:
    """:func:`mutated_params` with the line of each parameter's first write (``attributes=
    False``: not counting attributes set on a parameter, which any caller holding the same
    object sees)."""
    a = fn.args
    params = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
    candidates = params - _stored_names(fn)
    # `for t in ts: t.mul_(2)`: a write to an item of the parameter ts
    items = {
        name: root
        for n in walk_no_defs(fn)
        if isinstance(n, ast.For)
        for root in iteration_roots(n.iter)
        if root in candidates
        for name in target_names(n.target)
    }
    out: dict[str, int] = {}
    # a parameter rebound later (`x.add_(1)` then `for l in layers: x = l(x)`) is still the
    # caller's object in the statements before the first one that rebinds it
    later = params - candidates
    for s in fn.body:
        bound_here = _stored_names(s) if later else frozenset()
        for name, line in inplace_writes(
            s, frozenset(candidates | set(items) | later), attributes=attributes
        ):
            if name in later and name in bound_here:
                continue  # (the same statement rebinds it: which comes first is not told here)
            out.setdefault(items.get(name, name), line)
        later -= bound_here
        nodes = walk_no_defs(s)
        statements = {id(n.value) for n in nodes if isinstance(n, ast.Expr)}
        for n in nodes:
            if (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in CONTAINER_MUTATORS
                and (objects or n.func.attr not in LIST_ONLY_METHODS)
                # `v, i = x.sort()`, `y = x.add(1)` use a result: a tensor's method (a list's
                # sort and a set's add return None), which writes nothing
                and (n.func.attr not in TENSOR_HOMONYMS or id(n) in statements)
            ):
                root = view_root(n.func.value)
                if root is not None and root in candidates:
                    out.setdefault(root, n.lineno)
    for name, line in _aliased_param_writes(fn, params, attributes, objects).items():
        if line < out.get(name, line + 1):
            out[name] = line
    return out


def _header(s: ast.stmt) -> list[ast.stmt]:
    """The code one CFG node of ``s`` runs: a compound statement's header expressions."""
    if isinstance(s, ast.If | ast.While):
        return [ast.Expr(s.test)]
    if isinstance(s, ast.For):
        return [ast.Expr(s.iter)]
    if isinstance(s, ast.With):
        return [ast.Expr(i.context_expr) for i in s.items]
    if isinstance(s, ast.Try | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return []
    return [s]


def _aliased_param_writes(
    fn: ast.FunctionDef, params: set[str], attributes: bool, objects: bool
) -> dict[str, int]:
    """Writes into a parameter's object made through another name that may reference it there
    (``y = x[:, :3]; y.zero_()``, ``h = d["a"]; h.mul_(2)``, ``hs = [x]; hs[0].add_(1)``):
    flow-sensitive may-alias pairs from the entry, where each parameter is linked to a stand-in
    for the caller's object, which no statement rebinds.

    Two runs: one following every link, for in-place calls on what a name holds or is; one
    without the links that put an object into a container, for the other writes, which may
    change a container itself (``hs[0] = v``, ``hs.append(v)`` replace an entry of ``hs``, not
    the tensor it holds)."""
    if not params:
        return {}
    graph = cfg.build(fn)
    stand_in = {f"<argument {p}>": p for p in params}  # (never a Python name)

    def steps(node: Node, containers: bool) -> list[tuple[Any, ...]]:
        if node is graph.entry:
            return [("link", p, s, True) for s, p in stand_in.items()]
        s = node.ast_node
        if isinstance(s, ast.stmt | ast.excepthandler):
            return header_steps(s, containers=containers)
        return []

    held = may_alias(graph, lambda node: steps(node, True))
    same = may_alias(graph, lambda node: steps(node, False))

    def reaching(analysis: MayAlias, node: Node) -> dict[str, str]:
        out: dict[str, str] = {}
        for pair in analysis.in_[node]:
            a, b = sorted(pair)
            for name, other in ((a, b), (b, a)):
                if other in stand_in and name not in stand_in and name != stand_in[other]:
                    out.setdefault(name, stand_in[other])
        return out

    out: dict[str, int] = {}
    for node in graph.nodes:
        s = node.ast_node
        if not isinstance(s, ast.stmt):
            continue
        is_param = reaching(same, node)
        holds = {k: v for k, v in reaching(held, node).items() if k not in is_param}
        found: list[tuple[str, int]] = []
        for code in _header(s):
            found += [
                (is_param[name], line)
                for name, line in inplace_writes(code, frozenset(is_param), attributes=attributes)
            ]
            # (only in-place calls: `hs[0][0] = v` may replace an entry of a list hs holds)
            found += [
                (holds[name], n.lineno)
                for n in walk_no_defs(code)
                if isinstance(n, ast.Call)
                for name in call_writes(n)
                if name in holds
            ]
            found += [
                (is_param[root], n.lineno)
                for n in walk_no_defs(code)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in CONTAINER_MUTATORS
                and (objects or n.func.attr not in LIST_ONLY_METHODS)
                and n.func.attr not in TENSOR_HOMONYMS
                and (root := view_root(n.func.value)) is not None
                and root in is_param
            ]
        for name, line in found:
            out.setdefault(name, line)
    return out


# ---- may-alias pairs, flow-sensitive ------------------------------------------------------------

Pair = frozenset[str]  # two local names that may reference (storage of) the same object
# A node's effect on the pairs is a list of steps: ("fresh", name) binds name to a new object;
# ("link", a, b, rebinds) makes a reach b's object (rebinds: a's old binding is gone).


def header_steps(
    n: ast.stmt | ast.excepthandler,
    tensors: frozenset[str] = frozenset(),
    containers: bool = True,
) -> list[tuple[Any, ...]]:
    """The alias steps of one statement itself (a compound one: its header only).
    ``containers=False``: without the links putting an object into a container."""
    if not isinstance(n, ast.stmt):  # an except clause binds its name to the exception
        return [("fresh", n.name)] if isinstance(n, ast.ExceptHandler) and n.name else []
    if isinstance(n, ast.For):  # each iteration rebinds the targets, then links them
        names = target_names(n.target)
        roots = iteration_roots(n.iter)
        return [("fresh", t) for t in names] + [("link", t, r, False) for t in names for r in roots]
    # A new binding drops the name's old pairs first; then its new links are made.
    out: list[tuple[Any, ...]] = [("fresh", name) for name in fresh_bindings(n)]
    linked: set[str] = set()
    for lk in links(n, tensors):
        if not containers and lk.kind in ("container", "container-view"):
            continue
        # a name's first link here rebinds it; its further ones (`a = h if c else x`: h or x)
        # add to that, they must not drop it
        out.append(("link", lk.a, lk.b, lk.kind != "container" and lk.a not in linked))
        linked.add(lk.a)
    return out


def steps_of(stmts: list[ast.stmt], tensors: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    """The alias steps of ``stmts`` (nested blocks included), in source order."""
    return [
        step
        for s in stmts
        for n in walk_no_defs(s)
        if isinstance(n, ast.stmt | ast.excepthandler)
        for step in header_steps(n, tensors)
    ]


def apply_steps(pairs: frozenset[Pair], steps: list[tuple[Any, ...]]) -> frozenset[Pair]:
    out = set(pairs)
    for step in steps:
        if step[0] == "fresh":
            out = {p for p in out if step[1] not in p}
            continue
        _, a, b, rebinds = step
        if rebinds:
            out = {p for p in out if a not in p}
        reached = {b} | {next(iter(p - {b})) for p in out if b in p}
        out |= {frozenset((a, c)) for c in reached if c != a}
    return frozenset(out)


class MayAlias(GraphVisitor[frozenset[Pair]]):
    """Forward may-alias pairs over a CFG; ``steps(node)`` gives each node's steps."""

    stage = "alias analysis"

    def __init__(self, graph: Graph, steps: Callable[[Node], list[tuple[Any, ...]]]) -> None:
        super().__init__(graph)
        self.steps = {node: steps(node) for node in graph.nodes}
        names = {
            x
            for node_steps in self.steps.values()
            for step in node_steps
            for x in step[1:3]
            if isinstance(x, str)
        }
        self.height = len(names) ** 2 + 1

    def lattice_height(self) -> int:
        return self.height

    def init_state(self, node: Node) -> frozenset[Pair]:
        return frozenset()

    def visit_node(self, node: Node) -> bool:
        entry: frozenset[Pair] = frozenset().union(*(self.out[p] for p in node.prev))
        out = apply_steps(entry, self.steps[node])
        if entry == self.in_[node] and out == self.out[node]:
            return False
        self.in_[node], self.out[node] = entry, out
        return True


def may_alias(graph: Graph, steps: Callable[[Node], list[tuple[Any, ...]]]) -> MayAlias:
    analysis = MayAlias(graph, steps)
    analysis.visit_forward()
    return analysis
