"""Kind inference, placement and the call graph on small inline functions and modules.

Kinds and placement are asserted directly (no tensors run); the call graph on tiny modules."""

from __future__ import annotations

import ast

import torch.nn as nn

from dycl_jax.analysis import callgraph, source
from dycl_jax.analysis.dependence import Kind, Typer
from dycl_jax.analysis.placement import Placement
from dycl_jax.ir.program import SplitKind
from dycl_jax.rewrite.normalize import normalize


def _typer(fn, owner=None) -> Typer:
    return Typer(source.parse(fn), owner)


def _expr(parsed: source.ParsedFunction, text: str) -> ast.expr:
    """The first expression node in ``parsed`` whose source is ``text``."""
    for n in ast.walk(parsed.node):
        if isinstance(n, ast.expr) and ast.unparse(n) == text:
            return n
    raise AssertionError(f"{text!r} not in function")


def rotation(x):
    a = b = c = d = e = 0
    for _ in range(6):
        e = d
        d = c
        c = b
        b = a
        a = x.sum()
        if e > 0:
            x = x * 2
    return x


def test_kinds_converge_through_a_five_value_rotation() -> None:
    t = _typer(rotation)
    for name in "abcde":
        assert t.env[name].kind == Kind.TENSOR, name


def mixed(self, x, n: int = 3):
    k = x.argmax().item()
    s = x.shape[0]
    y = self.experts[k](x)
    w = self.experts[x.argmax()](x)
    m = x > 0
    z = x[m]
    for i in range(n):
        y = y + i
    return y, s, z, w


class _Experts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.experts = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])


def test_kinds_of_shapes_host_scalars_and_objects() -> None:
    owner = _Experts()
    t = Typer(source.parse(mixed), owner)
    assert t.env["k"].kind == Kind.HOST
    assert t.env["s"].kind == Kind.PY
    assert t.env["n"].kind == Kind.PY
    assert t.env["y"].kind == Kind.TENSOR
    assert t.env["i"].kind == Kind.PY


def test_placement_reasons() -> None:
    owner = _Experts()
    parsed = source.parse(mixed)
    place = Placement(parsed, Typer(parsed, owner))
    assert place.atom_reason(_expr(parsed, "x.argmax().item()")) is SplitKind.CONVERSION
    # k is already a Python value read back on the host: indexing with it is host-safe.
    assert place.atom_reason(_expr(parsed, "self.experts[k]")) is None
    tensor_index = _expr(parsed, "self.experts[x.argmax()]")
    assert place.atom_reason(tensor_index) is SplitKind.TENSOR_INDEX
    assert place.atom_reason(_expr(parsed, "x[m]")) is SplitKind.DATA_DEPENDENT_SHAPE
    assert place.atom_reason(_expr(parsed, "x.shape[0]")) is None
    assert "m" in place.mask_names
    loop = next(s for s in parsed.node.body if isinstance(s, ast.For))
    assert not place.stmt_needs_host(loop)  # static loop over tensor code: traced whole


def loop_with_read(x):
    for _ in range(3):
        if x.sum() > 0:
            x = x - 1
    return x


def test_placement_compound_with_tensor_condition_needs_host() -> None:
    parsed = source.parse(loop_with_read)
    place = Placement(parsed, Typer(parsed, None))
    assert place.stmt_needs_host(parsed.node.body[0])


class Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.lin(x)
        return x


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        return self.lin(x) * 2


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gate = Gate()
        self.plain = Plain()

    def helper(self, x):
        return self.plain(x) + 1

    def forward(self, x):
        return self.gate(self.helper(x))


class Recursive(nn.Module):
    def walk(self, x, depth: int):
        if depth == 0:
            return x
        return self.walk(x * 2, depth - 1)

    def forward(self, x):
        return self.walk(x, 2)


def test_call_graph_marks_only_dynamic_functions() -> None:
    m = Outer()
    g: callgraph.CallGraph = callgraph.CallGraph(normalize)
    root = g.add(type(m).forward, m)
    assert root.dynamic  # it calls a dynamic submodule
    assert g.is_dynamic(Gate.forward, m.gate)
    assert not g.is_dynamic(Plain.forward, m.plain)
    assert not g.is_dynamic(Outer.helper, m)
    assert {n.fn.__qualname__ for n in g.dynamic_nodes()} == {"Outer.forward", "Gate.forward"}


def test_call_graph_recursion_terminates_static() -> None:
    m = Recursive()
    g: callgraph.CallGraph = callgraph.CallGraph(normalize)
    root = g.add(type(m).forward, m)
    assert not root.dynamic and not g.is_dynamic(Recursive.walk, m)


def test_callee_turning_dynamic_after_its_caller_renormalizes_the_caller() -> None:
    class Ping(nn.Module):
        def a(self, x, n: int):
            if n == 0:
                return self.b(x)
            return self.a(x, n - 1)

        def b(self, x):
            if x.sum() > 0:
                return x
            return self.a(x, 0)

        def forward(self, x):
            return self.a(x, 1)

    m = Ping()
    g: callgraph.CallGraph = callgraph.CallGraph(normalize)
    g.add(type(m).forward, m)
    assert g.is_dynamic(Ping.b, m) and g.is_dynamic(Ping.a, m)
    assert g.is_dynamic(Ping.forward, m)
