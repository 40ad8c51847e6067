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
import dataclasses

from dycl_jax.analysis.facts import CONTAINER_MUTATORS, VIEW_ATTRS, VIEW_METHODS


@dataclasses.dataclass(frozen=True)
class Link:
    a: str
    b: str
    line: int
    kind: str  # "rename", "view", "container", "iteration"


def _root_name(e: ast.expr) -> str | None:
    return e.id if isinstance(e, ast.Name) else None


def _view_root(e: ast.expr) -> str | None:
    """``b`` when ``e`` is ``b`` itself or a view of it (``b[...]``, ``b.T``, ``b.view(...)``,
    chains of those)."""
    while True:
        if isinstance(e, ast.Name):
            return e.id
        if isinstance(e, ast.Subscript):
            e = e.value
        elif isinstance(e, ast.Attribute) and e.attr in VIEW_ATTRS:
            e = e.value
        elif (
            isinstance(e, ast.Call)
            and isinstance(e.func, ast.Attribute)
            and e.func.attr in VIEW_METHODS
        ):
            e = e.func.value
        else:
            return None


def _held_names(e: ast.expr) -> list[str]:
    """Names whose objects a container literal holds (``[a, b]``, ``(a, *b)``, ``{k: a}``)."""
    out: list[str] = []
    if isinstance(e, ast.List | ast.Tuple | ast.Set):
        for elt in e.elts:
            inner = elt.value if isinstance(elt, ast.Starred) else elt
            name = _view_root(inner)
            if name is not None:
                out.append(name)
            out.extend(_held_names(inner))
    elif isinstance(e, ast.Dict):
        for v in e.values:
            name = _view_root(v)
            if name is not None:
                out.append(name)
            out.extend(_held_names(v))
    return out


def _flat_targets(targets: list[ast.expr]) -> list[ast.expr]:
    """Assignment targets with tuple / list / starred unpacking flattened."""
    out: list[ast.expr] = []
    for t in targets:
        if isinstance(t, ast.Tuple | ast.List):
            out.extend(_flat_targets(list(t.elts)))
        elif isinstance(t, ast.Starred):
            out.extend(_flat_targets([t.value]))
        else:
            out.append(t)
    return out


def _target_names(t: ast.expr) -> list[str]:
    return [n.id for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]


def links(stmt: ast.stmt) -> list[Link]:
    """The alias links ``stmt`` itself creates (nested blocks not entered)."""
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
                    for name in _target_names(te):
                        add(name, _view_root(ve), "rename")
                continue
            root = _view_root(value)
            for name in (
                _target_names(t) if not isinstance(t, ast.Subscript | ast.Attribute) else []
            ):
                add(name, root, "rename" if isinstance(value, ast.Name) else "view")
                for held in _held_names(value):
                    add(name, held, "container")
            if isinstance(t, ast.Subscript | ast.Attribute):  # d[k] = b, o.x = b
                base = _view_root(t.value)
                add(base, root, "container")
                for held in _held_names(value):
                    add(base, held, "container")
    elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        call = stmt.value
        f = call.func
        if isinstance(f, ast.Attribute) and f.attr in CONTAINER_MUTATORS:
            owner = _root_name(f.value)
            for arg in call.args:
                add(owner, _view_root(arg), "container")
                for held in _held_names(arg):
                    add(owner, held, "container")
    elif isinstance(stmt, ast.For):
        container = _view_root(stmt.iter)
        for name in _target_names(stmt.target):
            add(name, container, "iteration")
    return out


def inplace_writes(stmt: ast.stmt, tensors: frozenset[str]) -> list[tuple[str, int]]:
    """(name, line) of tensor-typed locals ``stmt`` writes in place, nested blocks included:
    ``x[i] = v``, ``x[i] += v``, ``x += v``, ``x.add_(v)``."""
    out: list[tuple[str, int]] = []
    for n in walk_no_defs(stmt):
        if isinstance(n, ast.Assign | ast.AugAssign):
            targets = _flat_targets(n.targets if isinstance(n, ast.Assign) else [n.target])
            for t in targets:
                if isinstance(t, ast.Subscript | ast.Attribute) and isinstance(n, ast.Assign):
                    name = _view_root(t.value)
                    if name in tensors:
                        out.append((name, n.lineno))
                elif isinstance(t, ast.Subscript):
                    name = _view_root(t.value)
                    if name in tensors:
                        out.append((name, n.lineno))
                elif isinstance(n, ast.AugAssign) and isinstance(t, ast.Name) and t.id in tensors:
                    out.append((t.id, n.lineno))
        elif (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr.endswith("_")
            and not n.func.attr.startswith("_")
        ):
            name = _view_root(n.func.value)
            if name in tensors:
                out.append((name, n.lineno))
    return out


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


def all_links(stmts: list[ast.stmt]) -> list[tuple[ast.stmt, Link]]:
    """(statement, link) for every link made in ``stmts`` and their nested blocks."""
    return [
        (n, link)
        for s in stmts
        for n in walk_no_defs(s)
        if isinstance(n, ast.stmt)
        for link in links(n)
    ]


def fresh_bindings(stmt: ast.stmt) -> set[str]:
    """Names ``stmt`` binds to a new object (not a rename or view of another name)."""
    if isinstance(stmt, ast.Assign) and _view_root(stmt.value) is None:
        return {n for t in stmt.targets if isinstance(t, ast.Name) for n in [t.id]}
    return set()


def mutated_params(fn: ast.FunctionDef) -> frozenset[str]:
    """Parameters of ``fn`` whose objects it writes in place (never rebinding them first):
    ``d[k] = v``, ``buf[i] = x``, ``h.mul_(2)``, ``outs.append(v)``, ``x += 1``."""
    a = fn.args
    params = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
    rebound = {
        n.id for n in walk_no_defs(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    candidates = params - rebound
    out: set[str] = set()
    for s in fn.body:
        out |= {name for name, _ in inplace_writes(s, frozenset(candidates))}
        for n in walk_no_defs(s):
            if (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in CONTAINER_MUTATORS
            ):
                name = _view_root(n.func.value)
                if name in candidates:
                    out.add(name)
    return frozenset(out)
