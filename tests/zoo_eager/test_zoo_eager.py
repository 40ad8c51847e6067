"""Eager checks of the DyNN zoo: every small model runs and takes several dynamic paths.

The path a forward takes is observed from outside the model: forward hooks on every submodule
record which modules ran, in order, with the shape of their first input. Exits, skipped
blocks, loop trip counts, chosen experts and data-dependent row counts all change that trace.
"""

from __future__ import annotations

import collections

import pytest
import torch

from dycl_jax.zoo import DYCL_SUBJECTS, MODELS

N_INPUTS = 12


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny models: thread start-up and contention cost more than the arithmetic
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def small_models():
    cache: dict[str, torch.nn.Module] = {}

    def get(name):
        if name not in cache:
            cache[name] = MODELS[name].build("small", seed=0)
        return cache[name]

    return get


def trace(model: torch.nn.Module, args: tuple):
    calls = []

    def hook(name):
        def record(_mod, inputs, _out):
            first = inputs[0] if inputs else None
            shape = tuple(first.shape) if isinstance(first, torch.Tensor) else None
            calls.append((name, shape))

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            out = model(*args)
    finally:
        for h in handles:
            h.remove()
    return tuple(calls), out


def flatten(out):
    if isinstance(out, torch.Tensor | int | float | bool) or out is None:
        return [out]
    if isinstance(out, dict):
        return [x for v in out.values() for x in flatten(v)]
    if isinstance(out, list | tuple):
        return [x for v in out for x in flatten(v)]
    raise TypeError(f"unexpected output type {type(out)}")


def test_registry():
    assert len(MODELS) >= 18
    assert set(DYCL_SUBJECTS) <= set(MODELS)
    for name, e in MODELS.items():
        assert e.name == name and e.paths and e.paper
        assert e.sizes == ("small", "paper")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_runs_and_takes_several_paths(name, small_models):
    entry = MODELS[name]
    model = small_models(name)
    assert not model.training
    assert all(not m.training for m in model.modules())
    inputs = entry.inputs_for_paths("small", N_INPUTS, seed=0)
    assert len(inputs) == N_INPUTS
    paths = collections.Counter()
    for args in inputs:
        assert isinstance(args, tuple)
        calls, out = trace(model, args)
        leaves = flatten(out)
        assert any(isinstance(x, torch.Tensor) for x in leaves)
        for x in leaves:
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                assert torch.isfinite(x).all()
        paths[calls] += 1
    assert len(paths) > 1, f"{name}: every input took the same path"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_deterministic_build(name, small_models):
    entry = MODELS[name]
    (args,) = entry.inputs_for_paths("small", 1, seed=3)
    again = entry.build("small", seed=0)
    with torch.no_grad():
        a, b = flatten(small_models(name)(*args)), flatten(again(*args))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y)
        else:
            assert x == y


@pytest.mark.parametrize("name", sorted(n for n, e in MODELS.items() if e.supports_batch))
def test_batch_of_eight(name, small_models):
    entry = MODELS[name]
    (x, *rest) = entry.example_inputs("small", batch=8, seed=1)
    with torch.no_grad():
        out = small_models(name)(x, *rest)
    first = flatten(out)[0]
    assert isinstance(first, torch.Tensor) and first.shape[0] == 8


def test_example_inputs_batch_one_runs(small_models):
    for name, entry in MODELS.items():
        args = entry.example_inputs("small", batch=1, seed=0)
        with torch.no_grad():
            small_models(name)(*args)
