"""Golden files of the synthesized host source, one per control-flow shape.

Regenerate with ``make golden`` (``DYCL_ACCEPT=1``) and review the diff.
"""

from __future__ import annotations

import os
import pathlib

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


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_host_source_golden(name: str) -> None:
    torch.manual_seed(0)
    cm = dycl_jax.convert(SHAPES[name]().eval())
    got = cm.host_source
    path = GOLDEN / f"{name}.host.py"
    if os.environ.get("DYCL_ACCEPT") == "1" or not path.exists():
        path.write_text(got)
        if os.environ.get("DYCL_ACCEPT") != "1":
            pytest.fail(f"golden file {path.name} was missing and has been written; review it")
    assert got == path.read_text(), f"host source of {name} changed; run `make golden` and review"
