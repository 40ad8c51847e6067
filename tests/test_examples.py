"""Every example in examples/ runs and checks itself against eager PyTorch (each main asserts
parity on the inputs it drives, and returns what it measured)."""

from __future__ import annotations

import importlib

import pytest

EXAMPLES = ["moe_routing", "greedy_decoding"]  # the other two: below, with their own checks


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name: str) -> None:
    result = importlib.import_module(f"examples.{name}").main()
    assert isinstance(result, dict) and result


def test_early_exit_exits_at_several_stages() -> None:
    exits = importlib.import_module("examples.early_exit").main()["exits"]
    assert len({s for stages in exits.values() for s in stages}) >= 2


def test_per_sample_serving_gives_rows_their_own_exits() -> None:
    r = importlib.import_module("examples.per_sample_serving").main()
    assert len(r["stages"]) >= 2  # parity per row is asserted inside


def test_finetuning_lowers_the_loss_and_pytorch_agrees() -> None:
    r = importlib.import_module("examples.finetune_jax").main()
    assert r["last"] < r["first"]
    assert abs(r["torch"] - r["last"]) < 0.1 * r["first"]


def test_save_load_runs_without_torch() -> None:
    r = importlib.import_module("examples.save_load").main()
    assert r["torch_modules"] == [] and r["report"].signatures > 0 and not r["report"].skipped
