"""Per-op parity: every registered lowering, jitted, against the PyTorch op on its samples."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from dycl_jax import lower
from dycl_jax.compat import OpOverload, make_fx, tree_flatten, tree_leaves, tree_unflatten
from tests.lower.samples import Sample, all_samples

SAMPLES = all_samples()
OPS = sorted(lower.LOWERINGS, key=str)


def test_every_registered_op_has_samples() -> None:
    missing = [str(op) for op in OPS if op not in SAMPLES]
    assert not missing, f"registered lowerings without samples: {missing}"


def test_no_samples_for_unregistered_ops() -> None:
    stale = [str(op) for op in SAMPLES if op not in lower.LOWERINGS]
    assert not stale, f"samples for ops with no lowering: {stale}"


def _split(sample: Sample):
    """Tensor leaves become graph inputs; everything else is baked into the call."""
    leaves, spec = tree_flatten((sample.args, sample.kwargs))
    is_t = [isinstance(x, torch.Tensor) for x in leaves]
    tensors = [x for x, t in zip(leaves, is_t) if t]

    def rebuild(*ts):
        it = iter(ts)
        full = [next(it) if t else x for x, t in zip(leaves, is_t)]
        return tree_unflatten(full, spec)

    return tensors, rebuild


def _check(op: OpOverload, sample: Sample) -> None:
    tensors, rebuild = _split(sample)

    def call(*ts):
        args, kwargs = rebuild(*ts)
        return op(*args, **kwargs)

    expected = call(*[t.clone() for t in tensors])
    gm = make_fx(call, tracing_mode="fake")(*tensors)
    fn = jax.jit(lower.to_jax(gm))
    with jax.enable_x64(True):
        got = fn(*[np.asarray(t.numpy()) for t in tensors])
    exp_flat = tree_leaves(expected)
    exp_flat = [e for e in exp_flat if isinstance(e, torch.Tensor)]
    assert len(got) == len(exp_flat), f"{op}: {len(got)} outputs, expected {len(exp_flat)}"
    for g, e in zip(got, exp_flat):
        g = np.asarray(g)
        assert tuple(g.shape) == tuple(e.shape), f"{op}: shape {g.shape} != {tuple(e.shape)}"
        assert str(g.dtype) == str(e.dtype).removeprefix("torch.").replace("bool", "bool"), (
            f"{op}: dtype {g.dtype} != {e.dtype}"
        )
        if sample.values:
            np.testing.assert_allclose(
                g, e.detach().numpy(), rtol=sample.rtol, atol=sample.atol, err_msg=str(op)
            )


@pytest.mark.parametrize("op", [op for op in OPS if op in SAMPLES], ids=str)
def test_op_parity(op: OpOverload) -> None:
    samples = SAMPLES[op]()
    assert samples, f"{op}: empty sample list"
    for sample in samples:
        _check(op, sample)
