"""Every minimized fuzz failure saved in tests/fuzz/regressions/: convert + parity on its inputs.

A regression file whose ``XFAIL`` is a string documents an open dycl_jax bug; it runs as
``xfail(strict=True)`` so the fix is noticed (set ``XFAIL = None`` then).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.fuzz.campaign import ATOL, RTOL, check_module, load_file

FILES = sorted((Path(__file__).parent / "regressions").glob("*.py"))


def _params() -> list:
    out = []
    for f in FILES:
        xfail = None
        for line in f.read_text().splitlines():
            if line.startswith("XFAIL = "):
                xfail = ast.literal_eval(line.split("=", 1)[1].split("  #")[0].strip())
        marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
        out.append(pytest.param(f, id=f.stem, marks=marks))
    return out


@pytest.mark.parametrize("path", _params())
def test_regression(path: Path) -> None:
    mod = load_file(path)
    try:
        out = check_module(mod, getattr(mod, "UNSUPPORTED", False))
    finally:
        sys.modules.pop(mod.__name__, None)
    assert out.kind in ("ok", "expected_refusal"), (
        f"{out.kind}: {out.message} (rtol {RTOL}, atol {ATOL})"
    )
