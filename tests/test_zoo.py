"""Every zoo DyNN converts and matches eager PyTorch on inputs that drive it down several paths."""

from __future__ import annotations

import pytest

import dycl_jax
from dycl_jax.zoo import MODELS
from tests.helpers import run_all_paths
from tests.zoo_eager.test_zoo_eager import trace

N_INPUTS = 6
# Models whose paths differ only in which static object a region gets (an expert index), not in
# which regions run or which conditions hold: the recorded path is the same, the eager one is not.
SAME_RECORDED_PATH = {"moe_seq"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_model_all_paths(name: str) -> None:
    entry = MODELS[name]
    model = entry.build("small", seed=0)
    inputs = entry.inputs_for_paths("small", n=N_INPUTS, seed=0)
    eager_paths = {trace(model, args)[0] for args in inputs}
    assert len(eager_paths) >= 2, f"{name}: inputs do not exercise several paths"
    cm = dycl_jax.convert(model)
    # float32 through deeper nets (convolutions, attention): the sums reorder in XLA.
    paths = run_all_paths(model, cm, inputs, rtol=1e-4, atol=1e-4)
    if name not in SAME_RECORDED_PATH:
        assert len(paths) >= 2, f"{name}: converted model took one path on all inputs"


def test_isomorphic_regions_share_one_executable() -> None:
    """Identical blocks over different module instances (DeeBERT's layers) capture graphs of
    the same structure: one jitted executable serves them, fed each block's parameters."""
    import torch

    import dycl_jax
    from dycl_jax.testing import assert_same
    from dycl_jax.zoo import MODELS

    e = MODELS["bert_deebert"]
    m = e.build("small", seed=0)
    cm = dycl_jax.convert(m)
    for args in e.inputs_for_paths("small", n=4, seed=0):
        with torch.no_grad():
            assert_same(cm(*args), m(*args), rtol=1e-4, atol=1e-4)
    assert 0 < len(cm.session.executables) < cm.stats.compiles
