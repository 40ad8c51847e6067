"""Host source from the IR: readable plain Python that keeps the original control flow.

``host_source(program)`` prints the host function with its original signature: each region call
``a, b = _region_N(x, y)`` is preceded by a comment with the user's file:line span, conditions are
read with ``_dy.truth(c)`` and dynamic callees run through ``_dy.call(f, ...)``. It is the only
place host text is made; nothing parses it back to find regions.
"""

from __future__ import annotations

from dycl_jax.ir.program import (
    RUNTIME,
    Block,
    Break,
    CallRegion,
    Continue,
    For,
    If,
    Program,
    Return,
    Simple,
    Stmt,
    Try,
    While,
    With,
    fallback_name,
)

_INDENT = "    "


def short_path(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 1 else path


def host_source(program: Program) -> str:
    out = [
        f"# dycl_jax host program for {program.qualname} "
        f"({short_path(program.filename)}:{program.lineno})",
        f"def {program.name}({program.params}):",
    ]
    if program.undefined:
        out.append(_INDENT + " = ".join([*program.undefined, f"{RUNTIME}.UNDEFINED"]))
    _block(program, program.body, 1, out)
    for r in program.regions:
        if r.staged is not None:
            # The host statements a staged region stands for, run where it does not stage.
            out.append("")
            out.append("")
            out.append(f"# what {r.name} computes in one graph, run on the host where it cannot")
            out.append(f"def {fallback_name(r.name)}({', '.join(r.live_in)}):")
            _block(program, r.staged.block, 1, out)
            out.append(f"{_INDENT}return ({''.join(n + ', ' for n in r.live_out)})")
    return "\n".join(out) + "\n"


def _block(program: Program, block: Block, depth: int, out: list[str]) -> None:
    if not block:
        out.append(_INDENT * depth + "pass")
        return
    for s in block:
        _stmt(program, s, depth, out)


def _stmt(program: Program, s: Stmt, depth: int, out: list[str]) -> None:
    pad = _INDENT * depth
    if isinstance(s, Simple):
        out.extend(pad + line for line in s.code.text.splitlines())
    elif isinstance(s, CallRegion):
        r = program.region(s.region)
        file = short_path(r.filename)
        where = f"{file}:{r.first_line}-{r.last_line}"
        if r.staged is None:
            out.append(f"{pad}# {r.name}: {where}")
        else:
            ifs = ", ".join(f"{file}:{line}" for line in dict.fromkeys(r.staged.ifs))
            out.append(
                f"{pad}# {r.name}: {where}, one graph with the if at {ifs} "
                f"(on the host: {fallback_name(r.name)})"
            )
        call = f"{s.region}({', '.join(s.args)})"
        if not s.outs:
            out.append(pad + call)
        else:
            target = f"{s.outs[0]}," if len(s.outs) == 1 else ", ".join(s.outs)
            out.append(f"{pad}{target} = {call}")
    elif isinstance(s, Return):
        out.append(pad + ("return" if s.value is None else f"return {s.value}"))
    elif isinstance(s, Break):
        out.append(pad + "break")
    elif isinstance(s, Continue):
        out.append(pad + "continue")
    elif isinstance(s, If):
        out.append(f"{pad}if {s.test}:")
        _block(program, s.body, depth + 1, out)
        orelse = s.orelse
        while len(orelse) == 1 and isinstance(orelse[0], If):  # elif chains read as written
            e = orelse[0]
            out.append(f"{pad}elif {e.test}:")
            _block(program, e.body, depth + 1, out)
            orelse = e.orelse
        if orelse:
            out.append(f"{pad}else:")
            _block(program, orelse, depth + 1, out)
    elif isinstance(s, While):
        out.append(f"{pad}while {s.test}:")
        _block(program, s.body, depth + 1, out)
        _orelse(program, s.orelse, depth, out)
    elif isinstance(s, For):
        out.append(f"{pad}for {s.target} in {s.iter}:")
        _block(program, s.body, depth + 1, out)
        _orelse(program, s.orelse, depth, out)
    elif isinstance(s, With):
        out.append(f"{pad}with {s.items}:")
        _block(program, s.body, depth + 1, out)
    elif isinstance(s, Try):
        out.append(f"{pad}try:")
        _block(program, s.body, depth + 1, out)
        for h in s.handlers:
            head = "except"
            if h.type is not None:
                head += f" {h.type}"
                if h.name:
                    head += f" as {h.name}"
            out.append(f"{pad}{head}:")
            _block(program, h.body, depth + 1, out)
        _orelse(program, s.orelse, depth, out)
        if s.finalbody:
            out.append(f"{pad}finally:")
            _block(program, s.finalbody, depth + 1, out)
    else:  # pragma: no cover - the Stmt union is closed
        raise AssertionError(type(s))


def _orelse(program: Program, block: Block, depth: int, out: list[str]) -> None:
    if block:
        out.append(f"{_INDENT * depth}else:")
        _block(program, block, depth + 1, out)
