"""Golden files of the synthesized host source, one per control-flow shape.

Line numbers in the host source's span comments are compared relative to the ``def`` line of the
model's forward, so editing unrelated code above a model in its file does not change the golden.
Regenerate with ``make golden`` (``DYCL_ACCEPT=1``) and review the diff.
"""

from __future__ import annotations

import os
import pathlib
import re

import pytest
import torch

import dycl_jax
from tests.rewrite import dynamic_models as dm

GOLDEN = pathlib.Path(__file__).parent / "golden"
SHAPES = {
    "early_exit": dm.EarlyExit,  # return inside a loop, list accumulation
    "if_elif_else": dm.SkipGate,  # tensor if/elif/else, static helper traced inline
    "while_break": dm.Halting,  # while on a tensor condition with break
    "nested_dynamic": dm.NestedSkip,  # dynamic submodules called through _dy.call
    "expressions": dm.Expressions,  # conditional expression, and/or/not, continue, with
}
_HEADER = re.compile(r"^# dycl_jax host program for \S+ \((?P<file>\S+):(?P<line>\d+)\)$")
_SPAN = re.compile(r"(?P<file>\S+\.py):(?P<first>\d+)(?:-(?P<last>\d+))?")


def relative_lines(source: str) -> str:
    """``source`` with every file:line made relative to its program's ``def`` line."""
    out = []
    base = 0
    for line in source.splitlines():
        m = _HEADER.match(line)
        if m:
            base = int(m["line"])

        def rel(s: re.Match[str], base: int = base) -> str:
            first = f"{s['file']}:+{int(s['first']) - base}"
            return first + (f"-+{int(s['last']) - base}" if s["last"] else "")

        out.append(_SPAN.sub(rel, line))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_host_source_golden(name: str) -> None:
    torch.manual_seed(0)
    cm = dycl_jax.convert(SHAPES[name]().eval())
    got = relative_lines(cm.host_source)
    path = GOLDEN / f"{name}.host.py"
    if os.environ.get("DYCL_ACCEPT") == "1" or not path.exists():
        path.write_text(got)
        if os.environ.get("DYCL_ACCEPT") != "1":
            pytest.fail(f"golden file {path.name} was missing and has been written; review it")
    assert got == path.read_text(), f"host source of {name} changed; run `make golden` and review"


def test_relative_lines_ignore_unrelated_shifts() -> None:
    src = "# dycl_jax host program for M.forward (a/b.py:10)\n    # _region_0: a/b.py:12-14\n"
    shifted = "# dycl_jax host program for M.forward (a/b.py:30)\n    # _region_0: a/b.py:32-34\n"
    assert relative_lines(src) == relative_lines(shifted)
    assert "a/b.py:+2-+4" in relative_lines(src)
