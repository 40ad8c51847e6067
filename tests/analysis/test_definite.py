"""Definite assignment: the names bound on every path before a statement, as sets."""

from __future__ import annotations

from dycl_jax.analysis import cfg, definite
from dycl_jax.analysis.cfg import Node
from dycl_jax.analysis.dataflow import Effect
from tests.analysis import find, parse


def _before(src: str, text: str, params: set[str] | None = None) -> frozenset[str]:
    fn = parse(src)
    names = params if params is not None else {a.arg for a in fn.args.args}
    return definite.analyze(cfg.build(fn), names).defined_before(find(fn, text))


def test_entry_defines_params() -> None:
    src = """
    def f(x, y):
        a = x
        return a
    """
    assert _before(src, "a = x") == {"x", "y"}
    assert _before(src, "return a") == {"x", "y", "a"}
    assert _before(src, "return a", params=set()) == {"a"}


def test_if_else_imbalance() -> None:
    src = """
    def f(x):
        if x:
            a = 1
            b = 1
        else:
            a = 2
        return a
    """
    assert _before(src, "return a") == {"x", "a"}
    assert _before(src, "b = 1") == {"x", "a"}


def test_for_target_and_body_not_defined_after_loop() -> None:
    src = """
    def f(xs):
        for i in xs:
            y = i
        return y
    """
    assert _before(src, "y = i") == {"xs", "i"}
    assert _before(src, "return y") == {"xs"}


def test_while_true_exits_by_break() -> None:
    src = """
    def f(x):
        while True:
            y = x
            if y:
                break
        return y
    """
    assert _before(src, "return y") == {"x", "y"}


def test_while_else_and_break() -> None:
    src = """
    def f(n):
        while n > 0:
            n = n - 1
            if n == 3:
                a = 1
                break
        else:
            a = 2
        return a
    """
    assert _before(src, "return a") == {"n", "a"}
    assert _before(src, "a = 2") == {"n"}


def test_loop_with_continue() -> None:
    src = """
    def f(xs):
        for x in xs:
            if x:
                continue
            z = x
            w = z
        return 0
    """
    assert _before(src, "w = z") == {"xs", "x", "z"}
    assert _before(src, "for x in xs:") == {"xs"}


def test_early_return() -> None:
    src = """
    def f(x):
        if x:
            return 0
        else:
            y = 1
        return y
    """
    assert _before(src, "return y") == {"x", "y"}


def test_early_return_inside_loop() -> None:
    src = """
    def f(xs):
        for x in xs:
            if x:
                r = x
                return r
            u = x
        return u
    """
    assert _before(src, "return r") == {"xs", "x", "r"}
    assert _before(src, "return u") == {"xs"}


def test_del_removes() -> None:
    src = """
    def f(x):
        y = x
        del x
        return y
    """
    assert _before(src, "return y") == {"y"}


def test_try_except_handler_sees_only_names_defined_before_try() -> None:
    src = """
    def f(x):
        a = 0
        try:
            b = x.foo()
            c = b
        except E as e:
            d = e
        return a
    """
    assert _before(src, "except E as e:") == {"x", "a"}
    assert _before(src, "d = e") == {"x", "a", "e"}
    assert _before(src, "return a") == {"x", "a"}


def test_handler_after_del_in_body() -> None:
    src = """
    def f(x):
        try:
            del x
            y = 1
        except E:
            pass
        return 0
    """
    assert _before(src, "pass") == set()


def test_try_finally_is_conservative() -> None:
    src = """
    def f(x):
        try:
            a = 1
        finally:
            b = 2
        return a
    """
    # merged finally: the exception path (body never ran) also reaches `return a`
    assert _before(src, "return a") == {"x", "b"}
    assert _before(src, "b = 2") == {"x"}


def test_with_as_and_walrus() -> None:
    src = """
    def f(x):
        with x.lock() as l:
            if (n := len(l)) > 0:
                m = n
        y = x and (k := 1)
        return y
    """
    assert _before(src, "m = n") == {"x", "l", "n"}
    assert _before(src, "y = x and (k := 1)") == {"x", "l", "n"}
    assert _before(src, "return y") == {"x", "l", "n", "y"}  # k only maybe


def test_comprehension_and_nested_def_do_not_leak() -> None:
    src = """
    def f(xs):
        ys = [v for v in xs]
        def g(a):
            t = a
            return t
        h = lambda q: q
        return ys
    """
    assert _before(src, "return ys") == {"xs", "ys", "g", "h"}


def test_five_value_rotation_converges() -> None:
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
    assert _before(src, "if e > 0:") == {"x", "n", "a", "b", "c", "d", "e", "i"}
    assert _before(src, "return x") == {"x", "n", "a", "b", "c", "d"}


def test_match_capture_defined_in_case_body_only() -> None:
    src = """
    def f(x):
        match x:
            case [a]:
                y = a
            case _:
                y = 0
        return y
    """
    assert _before(src, "y = a") == {"x", "a"}
    assert _before(src, "case _:") == {"x"}
    assert _before(src, "return y") == {"x", "y"}


def test_unreachable_code_is_vacuously_defined() -> None:
    src = """
    def f(x):
        return x
        y = 1
    """
    assert _before(src, "y = 1") == {"x", "y"}


def test_activity_override_for_a_region_node() -> None:
    fn = parse(
        """
        def f(x):
            region()
            return z
        """
    )
    graph = cfg.build(fn)
    region = graph.node_of[find(fn, "region()")]

    def effect(node: Node) -> Effect | None:
        return (frozenset({"x"}), frozenset({"z"})) if node is region else None

    result = definite.analyze(graph, {"x"}, activity=effect)
    assert result.defined_before(find(fn, "return z")) == {"x", "z"}
    assert result.defined_in(graph.exit) == {"x", "z"}
