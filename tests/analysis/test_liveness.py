"""Liveness: the names live before / after a statement, as sets (AutoGraph liveness_test style).

Free names (globals, builtins such as ``range``) are names like any other: they appear in the
sets wherever they are read later.
"""

from __future__ import annotations

import ast

import pytest

from dycl_jax.analysis import cfg, liveness
from dycl_jax.analysis.cfg import Node
from dycl_jax.analysis.dataflow import Effect, GraphVisitor
from dycl_jax.errors import InternalError
from tests.analysis import find, parse


def _analyze(src: str) -> tuple[ast.FunctionDef, liveness.Liveness]:
    fn = parse(src)
    return fn, liveness.analyze(cfg.build(fn))


def _after(src: str, text: str) -> frozenset[str]:
    fn, live = _analyze(src)
    return live.live_after(find(fn, text))


def _before(src: str, text: str) -> frozenset[str]:
    fn, live = _analyze(src)
    return live.live_before(find(fn, text))


def test_straight_line() -> None:
    src = """
    def f(x, y):
        a = x
        b = a + y
        return b
    """
    assert _before(src, "a = x") == {"x", "y"}
    assert _after(src, "a = x") == {"a", "y"}
    assert _after(src, "b = a + y") == {"b"}
    assert _after(src, "return b") == set()


def test_if_else_imbalance() -> None:
    src = """
    def f(x, y):
        if x > 0:
            a = y
        else:
            b = y
        return a + x
    """
    # `a` is live before the if: the else branch does not assign it
    assert _before(src, "if x > 0:") == {"a", "x", "y"}
    assert _after(src, "if x > 0:") == {"a", "x"}
    assert _before(src, "a = y") == {"x", "y"}
    assert _before(src, "b = y") == {"a", "x", "y"}


def test_loop_with_break_and_continue() -> None:
    src = """
    def f(xs, t):
        s = 0
        for x in xs:
            if x > t:
                break
            if x < 0:
                continue
            s = s + x
        return s
    """
    assert _after(src, "s = 0") == {"s", "t", "xs"}
    assert _after(src, "break") == {"s"}
    assert _after(src, "continue") == {"s", "t", "xs"}
    assert _after(src, "for x in xs:") == {"s"}
    assert _after(src, "s = s + x") == {"s", "t", "xs"}


def test_for_target_not_killed_on_exit_edge() -> None:
    src = """
    def f(xs, i):
        for i in xs:
            pass
        return i
    """
    assert _before(src, "for i in xs:") == {"i", "xs"}
    assert _before(src, "pass") == {"i", "xs"}


def test_while_with_else() -> None:
    src = """
    def f(n, y):
        while n > 0:
            n = n - 1
            if n == y:
                break
        else:
            y = 0
        return y
    """
    assert _before(src, "while n > 0:") == {"n", "y"}
    assert _after(src, "n = n - 1") == {"n", "y"}
    assert _before(src, "y = 0") == set()
    assert _after(src, "while n > 0:") == {"y"}


def test_early_return_inside_loop() -> None:
    src = """
    def f(xs, d):
        for x in xs:
            if x:
                return x + d
            u = x
        return u
    """
    assert _before(src, "for x in xs:") == {"d", "u", "xs"}
    assert _after(src, "u = x") == {"d", "u", "xs"}
    assert _after(src, "return x + d") == set()


def test_nested_loops_break_to_inner_loop() -> None:
    src = """
    def f(xs, ys, acc):
        for x in xs:
            for y in ys:
                if y > x:
                    break
                acc = acc + y
            acc = acc * x
        return acc
    """
    assert _after(src, "break") == {"acc", "x", "xs", "ys"}
    assert _after(src, "for y in ys:") == {"acc", "x", "xs", "ys"}
    assert _after(src, "for x in xs:") == {"acc"}


def test_five_value_rotation_live_around_back_edge() -> None:
    src = """
    def f(x, n):
        a = b = c = d = x
        for i in range(n):
            e = d
            d = c
            c = b
            b = a
            a = x.sum()
            if e > 0:
                x = x + e
        return x
    """
    around = {"a", "b", "c", "d", "x", "n", "range"}
    assert _after(src, "a = b = c = d = x") == around
    assert _after(src, "x = x + e") == around
    assert _after(src, "if e > 0:") == around
    assert _before(src, "for i in range(n):") == around
    assert _after(src, "e = d") == {"a", "b", "c", "e", "x", "n", "range"}


def test_attribute_and_subscript_targets() -> None:
    src = """
    def f(self, x, d, k):
        self.a = x
        d[k] = x
        return d
    """
    assert _before(src, "self.a = x") == {"self", "x", "d", "k"}
    assert _after(src, "self.a = x") == {"x", "d", "k"}
    assert _after(src, "d[k] = x") == {"d"}


def test_tuple_unpacking_and_augmented_assignment() -> None:
    src = """
    def f(t, y):
        a, (b, c) = t
        a += y
        return a + c
    """
    assert _after(src, "a, (b, c) = t") == {"a", "c", "y"}
    assert _before(src, "a += y") == {"a", "c", "y"}
    assert _after(src, "a += y") == {"a", "c"}


def test_mutation_is_a_use() -> None:
    src = """
    def f(x, out):
        out.append(x)
        x.add_(1)
        return 0
    """
    assert _before(src, "out.append(x)") == {"out", "x"}
    assert _before(src, "x.add_(1)") == {"x"}


def test_closures_lambdas_comprehensions_read_free_names() -> None:
    src = """
    def f(x, w, xs, scale):
        g = lambda z: z * w
        def h(y):
            return y * scale
        ys = [g(v) for v in xs]
        return h(ys), x
    """
    assert _before(src, "g = lambda z: z * w") == {"w", "xs", "scale", "x"}
    assert _after(src, "g = lambda z: z * w") == {"g", "xs", "scale", "x"}
    assert _after(src, "def h(y):") == {"g", "h", "xs", "x"}


def test_comprehension_variable_not_leaked() -> None:
    src = """
    def f(xs, v):
        ys = [v for v in xs]
        return ys, v
    """
    assert _before(src, "ys = [v for v in xs]") == {"xs", "v"}


def test_del_reads_then_kills() -> None:
    src = """
    def f(x):
        y = x
        del x
        return y
    """
    # `del x` needs x bound (a use); after it x is dead
    assert _after(src, "y = x") == {"x", "y"}
    assert _after(src, "del x") == {"y"}


def test_try_except_finally() -> None:
    src = """
    def f(x, y):
        try:
            a = x.foo()
            b = a + 1
        except KeyError:
            b = y
        finally:
            c = 0
        return b + c
    """
    # the handler may run after any body statement: y stays live through the body
    assert _after(src, "a = x.foo()") == {"a", "y", "KeyError", "b"}
    assert _before(src, "c = 0") == {"b"}
    # merged finally (conservative): an exception escaping the body enters the finally, whose end
    # also leads to `return b + c`, so b is live before the try
    assert _before(src, "try:") == {"x", "y", "KeyError", "b"}


def test_try_except_without_finally() -> None:
    src = """
    def f(x, y):
        try:
            a = x.foo()
            b = a + 1
        except KeyError:
            b = y
        return b
    """
    assert _before(src, "try:") == {"x", "y", "KeyError"}
    assert _after(src, "a = x.foo()") == {"a", "y", "KeyError"}
    assert _after(src, "try:") == {"b"}


def test_handler_keeps_old_value_live() -> None:
    src = """
    def f(x):
        a = x
        try:
            a = a.g()
        except E:
            return a
        return a
    """
    fn, live = _analyze(src)
    assert live.live_after(find(fn, "a = x")) == {"a", "E"}
    assert live.live_out(live.graph.node_of[find(fn, "try:")]) == {"a", "E"}
    assert live.live_after(find(fn, "try:")) == {"a"}  # after the whole statement


def test_with_as() -> None:
    src = """
    def f(x, lock):
        with lock as l:
            y = l.use(x)
        return y
    """
    assert _before(src, "with lock as l:") == {"lock", "x"}
    assert _before(src, "y = l.use(x)") == {"l", "x"}
    assert _after(src, "with lock as l:") == {"y"}


def test_walrus() -> None:
    src = """
    def f(x):
        if (n := x.size) > 0:
            return n
        y = x and (m := 1)
        return m + y
    """
    assert _before(src, "if (n := x.size) > 0:") == {"x", "m"}
    # a conditional walrus does not kill: m stays live through it
    assert _before(src, "y = x and (m := 1)") == {"x", "m"}


def test_activity_override_for_a_region_node() -> None:
    fn = parse(
        """
        def f(x, c):
            y = 0
            region()
            return y + z
        """
    )
    graph = cfg.build(fn)
    region = graph.node_of[find(fn, "region()")]

    def effect(node: Node) -> Effect | None:
        # the region reads x and c, assigns z on every path and y on some: y is not a kill
        return (frozenset({"x", "c"}), frozenset({"z"})) if node is region else None

    live = liveness.analyze(graph, activity=effect)
    assert live.live_in(region) == {"x", "c", "y"}
    assert live.live_after(find(fn, "y = 0")) == {"x", "c", "y"}
    assert live.live_before(fn.body[0]) == {"x", "c"}
    assert live.live_in(graph.exit) == set() and live.live_out(graph.exit) == set()


class _Flip(GraphVisitor[bool]):
    """Not monotone: every visit flips the state, so it never stops changing."""

    stage = "flip test"

    def init_state(self, node: Node) -> bool:
        return False

    def visit_node(self, node: Node) -> bool:
        self.in_[node] = not self.in_[node]
        return True


def test_engine_raises_when_it_does_not_converge() -> None:
    graph = cfg.build(parse("def loop(x):\n    while x:\n        x = x - 1\n"))
    with pytest.raises(InternalError, match="flip test did not converge on loop") as info:
        _Flip(graph).visit_reverse()
    assert info.value.stage == "flip test"
