"""CFG shape: edges of if / loops / break / continue / return / try / with / match."""

from __future__ import annotations

import ast

import pytest

from dycl_jax.analysis import cfg
from dycl_jax.analysis.cfg import NodeKind
from dycl_jax.errors import InternalError
from tests.analysis import find, parse


def _graph(src: str) -> tuple[ast.FunctionDef, cfg.Graph]:
    fn = parse(src)
    return fn, cfg.build(fn)


def _next(g: cfg.Graph, fn: ast.FunctionDef, text: str) -> set[str]:
    """Successors of a statement's node, as their header source lines ('<exit>' for exit)."""
    return {_label(n) for n in g.node_of[find(fn, text)].next}


def _label(node: cfg.Node) -> str:
    if node.ast_node is None:
        return f"<{node.kind.value}>"
    return ast.unparse(node.ast_node).splitlines()[0]


def test_straight_line_nodes_in_source_order() -> None:
    fn, g = _graph(
        """
        def f(x):
            y = x + 1
            return y
        """
    )
    assert [n.kind for n in g.nodes] == [
        NodeKind.ENTRY,
        NodeKind.STMT,
        NodeKind.STMT,
        NodeKind.EXIT,
    ]
    assert g.nodes[0] is g.entry and g.nodes[-1] is g.exit
    assert [n.index for n in g.nodes] == list(range(4))
    assert g.node_of[fn.body[0]].next == {g.node_of[fn.body[1]]}
    assert g.node_of[fn.body[1]].next == {g.exit}


def test_if_else_both_branches_join() -> None:
    fn, g = _graph(
        """
        def f(x):
            if x:
                y = 1
            else:
                y = 2
            return y
        """
    )
    assert g.node_of[fn.body[0]].kind is NodeKind.IF
    assert _next(g, fn, "if x:") == {"y = 1", "y = 2"}
    assert _next(g, fn, "y = 1") == {"return y"}
    assert _next(g, fn, "y = 2") == {"return y"}
    assert {_label(n) for n in g.follow[fn.body[0]]} == {"return y"}


def test_if_without_else_falls_through_from_test() -> None:
    fn, g = _graph(
        """
        def f(x):
            if x:
                x = 1
            return x
        """
    )
    assert _next(g, fn, "if x:") == {"x = 1", "return x"}


def test_while_else_and_break() -> None:
    fn, g = _graph(
        """
        def f(x):
            while x > 0:
                if x == 3:
                    break
                x = x - 1
            else:
                x = 10
            return x
        """
    )
    assert g.node_of[fn.body[0]].kind is NodeKind.WHILE
    assert _next(g, fn, "while x > 0:") == {"if x == 3:", "x = 10"}
    assert _next(g, fn, "x = x - 1") == {"while x > 0:"}
    # break skips the else clause
    assert _next(g, fn, "break") == {"return x"}
    assert _next(g, fn, "x = 10") == {"return x"}
    assert {_label(n) for n in g.follow[fn.body[0]]} == {"return x"}


def test_for_continue_goes_to_header_and_binds_into_body() -> None:
    fn, g = _graph(
        """
        def f(xs):
            s = 0
            for x in xs:
                if x:
                    continue
                s = s + x
            return s
        """
    )
    header = g.node_of[find(fn, "for x in xs:")]
    assert header.kind is NodeKind.FOR
    assert _next(g, fn, "continue") == {"for x in xs:"}
    assert _next(g, fn, "for x in xs:") == {"if x:", "return s"}
    assert header.binds_into is g.node_of[find(fn, "if x:")]


def test_nested_loops_break_leaves_inner_loop_only() -> None:
    fn, g = _graph(
        """
        def f(xs, ys):
            for x in xs:
                for y in ys:
                    if y:
                        break
                    z = y
                w = x
            return 0
        """
    )
    assert _next(g, fn, "break") == {"w = x"}
    assert _next(g, fn, "for y in ys:") == {"if y:", "w = x"}
    assert _next(g, fn, "w = x") == {"for x in xs:"}


def test_return_in_loop_goes_to_exit() -> None:
    fn, g = _graph(
        """
        def f(xs):
            for x in xs:
                if x:
                    return x
            return None
        """
    )
    assert g.node_of[find(fn, "return x")].next == {g.exit}
    assert _next(g, fn, "if x:") == {"return x", "for x in xs:"}


def test_while_true_exits_only_by_break() -> None:
    fn, g = _graph(
        """
        def f(x):
            while True:
                x = x + 1
                if x > 3:
                    break
            return x
        """
    )
    assert _next(g, fn, "while True:") == {"x = x + 1"}
    assert g.node_of[find(fn, "return x")].prev == {g.node_of[find(fn, "break")]}


def test_unreachable_code_has_no_predecessors() -> None:
    fn, g = _graph(
        """
        def f(x):
            return x
            y = 1
        """
    )
    assert g.node_of[find(fn, "y = 1")].prev == set()


def test_try_every_body_node_reaches_each_handler() -> None:
    fn, g = _graph(
        """
        def f(x):
            try:
                a = x.foo()
                if a:
                    b = 1
            except KeyError as e:
                b = 2
            except ValueError:
                b = 3
            return b
        """
    )
    h1 = g.node_of[find(fn, "except KeyError as e:")]
    h2 = g.node_of[find(fn, "except ValueError:")]
    assert h1.kind is NodeKind.HANDLER
    raisers = {g.node_of[find(fn, t)] for t in ("try:", "a = x.foo()", "if a:", "b = 1")}
    assert h1.prev == raisers and h2.prev == raisers
    # no enclosing try: uncaught exceptions leave the function
    assert g.exit in g.node_of[find(fn, "b = 1")].next
    # a handler's own exceptions escape the try (here: leave the function)
    assert _next(g, fn, "b = 2") == {"return b", "<exit>"}


def test_try_finally_routes_return_and_exceptions_through_finally() -> None:
    fn, g = _graph(
        """
        def f(x):
            for i in x:
                try:
                    if i:
                        return i
                    if x:
                        break
                    y = 1
                finally:
                    z = 2
                w = 3
            return 0
        """
    )
    fin = g.node_of[find(fn, "z = 2")]
    assert g.node_of[find(fn, "return i")].next == {fin}
    assert g.node_of[find(fn, "break")].next == {fin}
    assert fin in g.node_of[find(fn, "y = 1")].next
    # merged finally: its end continues to every pending destination
    assert _next(g, fn, "z = 2") == {"w = 3", "return 0", "<exit>"}


def test_nested_try_catch_all_stops_propagation() -> None:
    fn, g = _graph(
        """
        def f(x):
            try:
                try:
                    a = 1
                except:
                    a = 2
                b = 3
            except ValueError:
                a = 4
            return a
        """
    )
    outer = g.node_of[find(fn, "except ValueError:")]
    assert g.node_of[find(fn, "a = 1")] not in outer.prev  # caught by the bare except
    assert g.node_of[find(fn, "a = 2")] in outer.prev
    assert g.node_of[find(fn, "b = 3")] in outer.prev


def test_raise_outside_try_goes_to_exit() -> None:
    fn, g = _graph(
        """
        def f(x):
            if x:
                raise ValueError(x)
            return x
        """
    )
    assert g.node_of[find(fn, "raise ValueError(x)")].next == {g.exit}


def test_with_and_nested_definitions_are_single_nodes() -> None:
    fn, g = _graph(
        """
        def f(x):
            with ctx(x) as c:
                def g(y):
                    if y:
                        return y
                    return c
                h = lambda z: [z for z in x if z]
            return g, h
        """
    )
    kinds = [n.kind for n in g.nodes[1:-1]]
    assert kinds == [NodeKind.WITH, NodeKind.STMT, NodeKind.STMT, NodeKind.STMT]
    assert find(fn, "if y:") not in g.node_of


def test_match_cases_chain() -> None:
    fn, g = _graph(
        """
        def f(x):
            match x:
                case [a]:
                    y = a
                case _:
                    y = 0
            return y
        """
    )
    case0 = g.node_of[find(fn, "case [a]:")]
    assert case0.kind is NodeKind.CASE
    assert _next(g, fn, "match x:") == {"case [a]:"}
    assert _next(g, fn, "case [a]:") == {"y = a", "case _:"}
    assert _next(g, fn, "case _:") == {"y = 0"}  # irrefutable: no fall-through
    assert case0.binds_into is g.node_of[find(fn, "y = a")]


def test_nodes_in_and_follow_of_compound_statement() -> None:
    fn, g = _graph(
        """
        def f(x):
            for i in x:
                if i:
                    x = 1
            return x
        """
    )
    loop = fn.body[0]
    assert [_label(n) for n in g.nodes_in(loop)] == ["for i in x:", "if i:", "x = 1"]
    assert {_label(n) for n in g.follow[loop]} == {"return x"}


def test_break_outside_loop_is_an_internal_error() -> None:
    with pytest.raises(InternalError, match="'break' outside a loop"):
        cfg.build(ast.parse("x = 1\nbreak\n", mode="exec").body)
