"""Whole-model parity for models with no tensor-dependent control flow (one region)."""

from __future__ import annotations

import pytest
import torch

import dycl_jax
from tests import static_models
from tests.helpers import assert_same

CASES = static_models.cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_static_model_parity(name: str) -> None:
    cls, inputs = CASES[name]
    torch.manual_seed(0)
    model = cls().eval()
    cm = dycl_jax.convert(model)
    assert len(cm.regions) == 1, cm.explain()
    for args in inputs:
        with torch.no_grad():
            expected = model(*args)
        assert_same(cm(*args), expected, rtol=1e-5, atol=1e-5)


def test_params_are_inputs_not_constants() -> None:
    """Swapping weights through apply() changes the result (weights are never baked in)."""
    torch.manual_seed(0)
    model = static_models.MLP().eval()
    cm = dycl_jax.convert(model)
    x = torch.randn(2, 10)
    params = cm.params
    assert set(params) == set(model.state_dict())
    zeroed = {k: v * 0 for k, v in params.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        expected = model(x)
    assert_same(cm.apply(zeroed, x), expected)


def test_jax_grad_through_apply() -> None:
    import jax
    import jax.numpy as jnp

    torch.manual_seed(0)
    model = static_models.MLP().eval()
    cm = dycl_jax.convert(model)
    x = torch.randn(2, 10)

    def loss(p):
        return jnp.sum(cm.apply(p, x)[:, 0])

    grads = jax.grad(loss)(cm.params)
    out = model(x)
    out[:, 0].sum().backward()
    w = "net.0.weight"
    import numpy as np

    np.testing.assert_allclose(
        np.asarray(grads[w]), model.net[0].weight.grad.numpy(), rtol=1e-4, atol=1e-5
    )
