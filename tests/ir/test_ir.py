"""The program IR: statement text keeps user lines, host source is emitted from the IR, and
``verify`` catches each broken invariant."""

from __future__ import annotations

import ast
import dataclasses
import textwrap

import pytest

from dycl_jax.errors import InternalError
from dycl_jax.ir import emit, verify
from dycl_jax.ir import program as ir
from dycl_jax.ir.code import code_of, to_ast


def _stmt(src: str, first_line: int = 1) -> ast.stmt:
    tree = ast.parse(textwrap.dedent(src))
    ast.increment_lineno(tree, first_line - 1)
    return tree.body[0]


def test_code_keeps_user_lines_of_nested_statements() -> None:
    s = _stmt(
        """
        for i in range(3):
            y = f(
                x,
                i)
            z = y + 1
        """,
        first_line=40,
    )
    code = code_of(s)
    (back,) = to_ast(code)
    assert isinstance(back, ast.For)
    assert back.lineno == 41
    assert [b.lineno for b in back.body] == [42, 45]
    assert code.lines[0] == 41


def _region(name: str, body: str, live_in: tuple[str, ...], live_out: tuple[str, ...]) -> ir.Region:
    codes = tuple(code_of(s) for s in ast.parse(textwrap.dedent(body)).body)
    return ir.Region(name, codes, live_in, live_out, frozenset(), "m.py", 1, 1, None)


def _program(body: ir.Block, regions: tuple[ir.Region, ...], undefined=()) -> ir.Program:
    return ir.Program(
        qualname="M.forward",
        name="forward",
        filename="m.py",
        lineno=1,
        params="self, x",
        param_names=("self", "x"),
        body=body,
        regions=regions,
        undefined=tuple(undefined),
        split_reasons=(),
    )


def _early_exit() -> ir.Program:
    r0 = _region("_region_0", "h = x * 2\nc = h.sum()", ("x",), ("c", "h"))
    r1 = _region("_region_1", "y = h + 1", ("h",), ("y",))
    body: ir.Block = (
        ir.CallRegion("_region_0", ("x",), ("c", "h"), 2),
        ir.If(
            "_dy.truth(c)",
            (ir.Return("h", 4),),
            (),
            3,
        ),
        ir.CallRegion("_region_1", ("h",), ("y",), 5),
        ir.Return("y", 6),
    )
    return _program(body, (r0, r1))


def test_emit_host_source_from_ir() -> None:
    src = emit.host_source(_early_exit())
    assert src.splitlines() == [
        "# dycl_jax host program for M.forward (m.py:1)",
        "def forward(self, x):",
        "    # _region_0: m.py:1-1",
        "    c, h = _region_0(x)",
        "    if _dy.truth(c):",
        "        return h",
        "    # _region_1: m.py:1-1",
        "    y, = _region_1(h)",
        "    return y",
    ]
    ast.parse(src)  # valid Python


def test_verify_accepts_a_well_formed_program() -> None:
    verify.verify(_early_exit(), frozenset({"h", "c", "y", "x"}))


def test_verify_rejects_call_of_unknown_region() -> None:
    p = _early_exit()
    p = dataclasses.replace(p, regions=p.regions[:1])
    with pytest.raises(InternalError, match="unknown region _region_1"):
        verify.verify(p)


def test_verify_rejects_region_never_called() -> None:
    p = _early_exit()
    p = dataclasses.replace(p, body=p.body[:2] + (ir.Return("h", 6),))
    with pytest.raises(InternalError, match="_region_1 is called 0 times"):
        verify.verify(p)


def test_verify_rejects_call_not_matching_live_sets() -> None:
    p = _early_exit()
    bad = ir.CallRegion("_region_1", ("x",), ("y",), 5)
    p = dataclasses.replace(p, body=(*p.body[:2], bad, p.body[3]))
    with pytest.raises(InternalError, match="passes"):
        verify.verify(p)


def test_verify_rejects_live_in_not_assigned_on_every_path() -> None:
    r0 = _region("_region_0", "y = z + x", ("x", "z"), ("y",))
    body: ir.Block = (
        ir.If("flag", (ir.Simple(code_of(_stmt("z = 1"))),), (), 2),
        ir.CallRegion("_region_0", ("x", "z"), ("y",), 3),
        ir.Return("y", 4),
    )
    p = _program(body, (r0,))
    with pytest.raises(InternalError, match=r"reads \['z'\]"):
        verify.verify(dataclasses.replace(p, param_names=("self", "x", "flag")))
    # Preset to UNDEFINED by the host, it is defined.
    verify.verify(dataclasses.replace(p, param_names=("self", "x", "flag"), undefined=("z",)))


def test_verify_rejects_host_only_code_in_a_region() -> None:
    r0 = _region("_region_0", "y = x\nif y:\n    pass", ("x",), ("y",))
    r0 = dataclasses.replace(r0, body=(*r0.body, code_of(_stmt("return y"))))
    p = _program((ir.CallRegion("_region_0", ("x",), ("y",), 2), ir.Return("y", 3)), (r0,))
    with pytest.raises(InternalError, match="contains return"):
        verify.verify(p)


def test_verify_rejects_tensor_compute_on_the_host() -> None:
    p = _early_exit()
    bad = ir.Simple(code_of(_stmt("y = h * 2")))
    p = dataclasses.replace(p, body=(*p.body[:3], bad, p.body[3]))
    with pytest.raises(InternalError, match="arithmetic on a tensor"):
        verify.verify(p, frozenset({"h", "c", "y", "x"}))


def test_program_ir_holds_only_plain_data() -> None:
    """No live objects, no id() keys: every leaf is a str/int/bool/None/enum/SourceLocation."""
    import torch

    import dycl_jax
    from tests.rewrite import dynamic_models as dm

    torch.manual_seed(0)
    cm = dycl_jax.convert(dm.NestedSkip().eval())
    allowed = (str, int, bool, type(None), ir.SplitKind)

    def check(v: object) -> None:
        if dataclasses.is_dataclass(v):
            for f in dataclasses.fields(v):
                check(getattr(v, f.name))
        elif isinstance(v, tuple | frozenset):
            for x in v:
                check(x)
        else:
            assert isinstance(v, allowed), type(v)

    for prog in cm.programs:
        check(prog.ir)
        # The host source is a function of the IR alone.
        assert emit.host_source(prog.ir) == prog.host_source
