"""Activity: reads / writes / mutations / composites of single statements and blocks."""

from __future__ import annotations

import ast
import textwrap

from dycl_jax.analysis.activity import (
    Activity,
    activity_of,
    activity_of_block,
    bound_names,
    iteration_bindings,
)
from tests.analysis import find, parse


def _act(src: str) -> Activity:
    return activity_of(ast.parse(textwrap.dedent(src)).body[0])


def test_assign_reads_value_writes_target() -> None:
    a = _act("y = f(x) + z")
    assert a.reads == {"f", "x", "z"}
    assert a.writes == {"y"} == a.may_writes
    assert a.mutated == set()


def test_tuple_unpacking_and_starred() -> None:
    a = _act("a, (b, *c) = t")
    assert a.reads == {"t"}
    assert a.writes == {"a", "b", "c"}
    assert bound_names(ast.parse("a, (b, *c)", mode="eval").body) == {"a", "b", "c"}


def test_augmented_assignment_reads_and_writes() -> None:
    a = _act("x += y")
    assert a.reads == {"x", "y"}
    assert a.writes == {"x"}


def test_attribute_and_subscript_targets_mutate_the_root() -> None:
    a = _act("self.a.b = x")
    assert a.writes == set()
    assert a.mutated == {"self"} and a.may_writes == {"self"}
    assert a.reads == {"self", "x"}
    assert a.composite_writes == {"self.a.b"}
    assert a.composite_reads == {"self.a"}
    b = _act("d[k] = v")
    assert b.reads == {"d", "k", "v"}
    assert b.mutated == {"d"} and b.composite_writes == {"d[k]"}
    c = _act("d[i] += 1")
    assert c.reads == {"d", "i"} and c.writes == set() and c.mutated == {"d"}
    assert c.composite_reads == {"d[i]"} and c.composite_writes == {"d[i]"}


def test_mixed_unpacking_targets() -> None:
    a = _act("a, self.b, c[0] = t")
    assert a.writes == {"a"}
    assert a.mutated == {"self", "c"}
    assert a.composite_writes == {"self.b", "c[0]"}


def test_composite_reads_include_prefixes() -> None:
    a = _act("y = self.blocks[i](x)")
    assert a.reads == {"self", "i", "x"}
    assert a.composite_reads == {"self.blocks", "self.blocks[i]"}
    assert a.composite_writes == set()


def test_mutating_calls() -> None:
    assert _act("out.append(y)").mutated == {"out"}
    assert _act("self.cache.update(d)").mutated == {"self"}
    assert _act("self.cache.update(d)").composite_writes == {"self.cache"}
    assert _act("x.add_(1)").mutated == {"x"}
    assert _act("y = x.sum()").mutated == set()
    assert _act("y = x.__len__()").mutated == set()
    a = _act("out.append(y)")
    assert a.reads == {"out", "y"} and a.writes == set() and a.may_writes == {"out"}


def test_del() -> None:
    a = _act("del x, d[k]")
    assert a.writes == {"x"} and a.deleted == {"x"}
    assert a.mutated == {"d"} and a.composite_writes == {"d[k]"}
    assert a.reads == {"x", "d", "k"}  # `del x` needs x bound: a use, as well as a kill


def test_walrus_definite_and_conditional() -> None:
    assert _act("y = (n := len(x)) + 1").writes == {"y", "n"}
    a = _act("y = x and (n := f(x))")
    assert a.writes == {"y"}
    assert a.may_writes == {"y", "n"}
    b = _act("y = [m := v for v in xs]")
    assert b.writes == {"y"} and b.may_writes == {"y", "m"}
    assert "v" not in b.reads


def test_comprehension_variable_not_leaked() -> None:
    a = _act("y = [f(v, w) for v in xs if v > t for w in v]")
    assert a.reads == {"f", "xs", "t"}
    assert a.writes == {"y"}
    b = _act("y = {k: d[k] for k in d}")
    assert b.reads == {"d"}
    assert b.composite_reads == set()  # d[k] names the comprehension's k: not a composite of f


def test_lambda_reads_free_names_only() -> None:
    a = _act("f = lambda a, b=c: a + b + z")
    assert a.reads == {"c", "z"}
    assert a.writes == {"f"}
    assert _act("f = lambda: (q := 1)").may_writes == {"f"}  # binds inside the lambda


def test_nested_def_reads_its_free_names() -> None:
    a = _act(
        """
        @deco
        def g(y, k=default):
            t = y + x
            def h():
                return t + w
            return h
        """
    )
    assert a.writes == {"g"}
    assert a.reads == {"deco", "default", "x", "w"}


def test_compound_headers_only() -> None:
    fn = parse(
        """
        def f(x):
            for i, (j, k) in enumerate(x):
                y = i
            while n > 0:
                n -= 1
            with open(p) as fh, lock:
                pass
            if cond(x):
                z = 1
            try:
                pass
            except (KeyError, E) as err:
                pass
        """
    )
    loop = activity_of(find(fn, "for i, (j, k) in enumerate(x):"))
    assert loop.reads == {"enumerate", "x"} and loop.writes == {"i", "j", "k"}
    assert iteration_bindings(find(fn, "for i, (j, k) in enumerate(x):")) == {"i", "j", "k"}
    assert activity_of(find(fn, "while n > 0:")).reads == {"n"}
    w = activity_of(find(fn, "with open(p) as fh, lock:"))
    assert w.reads == {"open", "p", "lock"} and w.writes == {"fh"}
    assert activity_of(find(fn, "if cond(x):")) == Activity(reads=frozenset({"cond", "x"}))
    assert activity_of(find(fn, "try:")) == Activity()
    h = activity_of(find(fn, "except (KeyError, E) as err:"))
    assert h.reads == {"KeyError", "E"} and h.writes == {"err"}


def test_imports_bind_their_names() -> None:
    assert _act("import os.path").writes == {"os"}
    assert _act("import numpy as np").writes == {"np"}
    assert _act("from m import a, b as c").writes == {"a", "c"}


def test_match_case_captures_and_guard() -> None:
    fn = parse(
        """
        def f(x):
            match x:
                case Point(x=0, y=yy) if yy > lim:
                    pass
                case {"k": v, **rest}:
                    pass
                case [first, *others] | (first, *others):
                    pass
        """
    )
    c1 = activity_of(find(fn, "case Point(x=0, y=yy) if yy > lim:"))
    assert c1.reads == {"Point", "lim"} and c1.writes == {"yy"}
    c2 = activity_of(find(fn, "case {'k': v, **rest}:"))
    assert c2.writes == {"v", "rest"}
    assert iteration_bindings(find(fn, "case [first, *others] | [first, *others]:")) == {
        "first",
        "others",
    }


def test_block_includes_nested_bodies() -> None:
    fn = parse(
        """
        def f(x):
            if x:
                a = 1
            else:
                b.append(x)
            for i in x:
                try:
                    c = i
                except E:
                    del a
            return c
        """
    )
    act = activity_of_block(fn.body)
    assert act.writes == {"a", "i", "c"}
    assert act.deleted == {"a"}
    assert act.mutated == {"b"}
    assert act.reads == {"x", "a", "b", "i", "E", "c"}  # `del a` reads its binding


def test_class_body_reads_count_as_free() -> None:
    a = _act(
        """
        class C(Base, metaclass=M):
            x = y
            def m(self):
                return x + self.z
        """
    )
    assert a.writes == {"C"}
    assert a.reads == {"Base", "M", "x", "y"}
