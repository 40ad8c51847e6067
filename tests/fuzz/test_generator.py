"""The generator is deterministic and emits valid PyTorch; shrinking steps keep programs valid."""

from __future__ import annotations

import collections
import sys
import warnings

import torch

from tests.fuzz import campaign
from tests.fuzz import generator as gen


def _eager(prog: gen.Program) -> None:
    mod = campaign.load_module(gen.render(prog), "gen")
    try:
        model = mod.make_model()
        inputs = mod.make_inputs()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the programs' own warnings.warn(f"fuzz...")
            for args in inputs:
                model(*args)
            for step in range(1, mod.MUTATION_STEPS + 1):  # what the campaign does after convert
                mod.mutate(model, step)
                for args in inputs[:2]:
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


def test_constructs_appear_often_enough() -> None:
    counts: collections.Counter[str] = collections.Counter()
    n = 60
    for seed in range(n):
        counts.update(gen.constructs(gen.generate(seed)))
    families = [f for f in gen.NEW_FORMS if f != "tval"]  # tval: rarer, see its own tests
    families += ["mutable_attr", "weight_edit", "half", "out_namedtuple", "out_dataclass"]
    families += ["out_modeloutput"]
    for family in families:
        assert counts[family] >= 0.05 * n, (family, counts)


def test_aliased_mark_follows_the_alias_nodes() -> None:
    for seed in range(40):
        prog = gen.generate(seed)
        src = gen.render(prog)
        has_alias = "alias" in gen.constructs(prog)
        assert gen.is_aliased(prog) == has_alias
        assert f"ALIASED = {has_alias!r}" in src
        for block in campaign._blocks_of(prog):  # shrinking away every alias node drops the mark
            block[:] = [node for node in block if node.kind != "alias"]
        assert "ALIASED = False" in gen.render(prog)
