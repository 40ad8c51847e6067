"""The generator is deterministic and emits valid PyTorch; shrinking steps keep programs valid."""

from __future__ import annotations

import sys

import torch

from tests.fuzz import campaign
from tests.fuzz import generator as gen


def _eager(prog: gen.Program) -> None:
    mod = campaign.load_module(gen.render(prog), "gen")
    try:
        model = mod.make_model()
        with torch.no_grad():
            for args in mod.make_inputs():
                model(*args)
    finally:
        sys.modules.pop(mod.__name__, None)


def test_deterministic() -> None:
    assert gen.render(gen.generate(123)) == gen.render(gen.generate(123))
    assert gen.render(gen.generate(123)) != gen.render(gen.generate(124))


def test_programs_run_eagerly() -> None:
    for seed in range(40):
        _eager(gen.generate(seed))


def test_shrink_candidates_stay_valid() -> None:
    prog = gen.generate(7)
    for cand in campaign._candidates(prog)[:40]:
        _eager(cand)


def test_unsupported_knob_is_off_by_default() -> None:
    for seed in range(40):
        assert not gen.generate(seed).unsupported
        assert "refused" not in [n.kind for n in gen.walk(gen.generate(seed).classes["Model"].body)]
