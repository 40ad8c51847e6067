"""Parity on every path of dynamic models, one per control-flow construct."""

from __future__ import annotations

import pytest
import torch

import dycl_jax
from tests.helpers import run_all_paths
from tests.rewrite import dynamic_models as dm


def _inputs(shape: tuple[int, ...], n: int, seed: int = 0, scales=(0.1, 1.0, 5.0)) -> list[tuple]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(*shape, generator=g) * scales[i % len(scales)],) for i in range(n)]


def _convert(model: torch.nn.Module, seed: int = 0):
    torch.manual_seed(seed)
    return dycl_jax.convert(model.eval())


def test_early_exit_all_exits() -> None:
    torch.manual_seed(0)
    m = dm.EarlyExit(threshold=0.45).eval()
    cm = dycl_jax.convert(m)
    paths = run_all_paths(m, cm, _inputs((1, 8), 24, scales=(0.05, 0.5, 3.0, 10.0)))
    exits = {m(*x)[1] for x in _inputs((1, 8), 24, scales=(0.05, 0.5, 3.0, 10.0))}
    assert len(exits) >= 2 and len(paths) >= 2, (exits, paths)


def test_tensor_if_elif_else_and_helper() -> None:
    torch.manual_seed(1)
    m = dm.SkipGate().eval()
    cm = dycl_jax.convert(m)
    paths = run_all_paths(m, cm, _inputs((2, 6), 30, scales=(0.1, 1.0, 4.0, 10.0)))
    assert len(paths) == 3, paths


def test_while_with_break_and_counter() -> None:
    torch.manual_seed(2)
    m = dm.Halting().eval()
    cm = dycl_jax.convert(m)
    paths = run_all_paths(m, cm, _inputs((1, 4), 12, scales=(0.1, 2.0, 8.0)))
    steps = {m(*x)[1] for x in _inputs((1, 4), 12, scales=(0.1, 2.0, 8.0))}
    assert len(steps) >= 2 and len(paths) >= 2, steps


def test_greedy_decoder_eos_break() -> None:
    torch.manual_seed(3)
    m = dm.GreedyDecoder().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    inputs = [(torch.randn(1, 5, generator=g) * 3, torch.tensor([i % 7])) for i in range(16)]
    paths = run_all_paths(m, cm, inputs)
    lengths = {len(m(*x)) for x in inputs}
    assert len(lengths) >= 2 and len(paths) >= 2, lengths


def test_tensor_as_python_index() -> None:
    torch.manual_seed(4)
    m = dm.MoE().eval()
    cm = dycl_jax.convert(m)
    inputs = _inputs((3, 4), 20, scales=(0.5, 2.0, 6.0))
    run_all_paths(m, cm, inputs)
    assert len({m(*x)[1] for x in inputs}) >= 2


def test_nested_dynamic_submodules_and_dict_output() -> None:
    torch.manual_seed(5)
    m = dm.NestedSkip().eval()
    cm = dycl_jax.convert(m)
    paths = run_all_paths(m, cm, _inputs((1, 6), 20, scales=(0.2, 1.0, 5.0)))
    assert len(paths) >= 2
    assert "GatedBlock.forward" in cm.host_source


def test_ifexp_boolops_not_continue_no_grad_and_kwargs() -> None:
    torch.manual_seed(6)
    m = dm.Expressions().eval()
    cm = dycl_jax.convert(m)
    inputs = _inputs((1, 5), 16, scales=(0.1, 1.0, 5.0))
    paths = run_all_paths(m, cm, inputs)
    assert len(paths) >= 3
    for (x,) in inputs[:4]:
        run_all_paths(m, cm, [(x, 3.0)])


def test_exception_on_tensor_condition_caught() -> None:
    torch.manual_seed(7)
    m = dm.RaiseCatch().eval()
    cm = dycl_jax.convert(m)
    inputs = _inputs((1, 3), 12, scales=(0.1, 5.0))
    run_all_paths(m, cm, inputs)
    assert {m(*x)[1] for x in inputs} == {0, 1}


def test_attribute_write_and_tensor_loop_bound() -> None:
    torch.manual_seed(8)
    m = dm.Counter().eval()
    cm = dycl_jax.convert(m)
    inputs = [(torch.randn(1, 3), torch.tensor(n)) for n in (0, 1, 3, 5)]
    before = m.calls
    run_all_paths(m, cm, inputs)
    # eager ran len(inputs) times inside run_all_paths, and so did the converted model
    assert m.calls == before + 2 * len(inputs)


def test_instance_rebound_forward() -> None:
    torch.manual_seed(9)
    m = dm.Rebound().eval()
    m.forward = m.early_exit
    cm = dycl_jax.convert(m)
    inputs = _inputs((1, 4), 20, scales=(0.1, 1.0, 8.0))
    run_all_paths(m, cm, inputs)
    assert {m(*x)[1] for x in inputs} == {1, 2}
    assert "early_exit" in cm.host_source


@pytest.mark.parametrize("kind", ["numpy", "jax", "torch"])
def test_input_kinds(kind: str) -> None:
    import jax.numpy as jnp

    torch.manual_seed(0)
    m = dm.SkipGate().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(2, 6)
    arg = {"numpy": x.numpy(), "jax": jnp.asarray(x.numpy()), "torch": x}[kind]
    import numpy as np

    np.testing.assert_allclose(np.asarray(cm(arg)), m(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_module_state_written_in_forward() -> None:
    torch.manual_seed(10)
    m = dm.RecurrentSkip().eval()
    cm = dycl_jax.convert(m)
    inputs = _inputs((1, 6), 16, scales=(0.3, 1.0, 4.0))
    paths = run_all_paths(m, cm, inputs)
    assert len({m(*x)[2] for x in inputs}) >= 2 and len(paths) >= 2


def test_comprehension_with_conversion_and_super() -> None:
    torch.manual_seed(11)
    m = dm.ComprehensionSuper().eval()
    cm = dycl_jax.convert(m)
    inputs = _inputs((1, 4), 16, scales=(0.5, 2.0, 6.0))
    run_all_paths(m, cm, inputs)
    assert len({m(*x)[1] for x in inputs}) >= 2


def test_numpy_host_copy_condition() -> None:
    torch.manual_seed(12)
    m = dm.NumpyCondition().eval()
    cm = dycl_jax.convert(m)
    inputs = _inputs((1, 4), 12, scales=(0.1, 1.0, 6.0))
    run_all_paths(m, cm, inputs)
    assert len({m(*x)[1] for x in inputs}) >= 2


def test_function_defined_inside_forward_compiles_once() -> None:
    torch.manual_seed(13)
    m = dm.LocalHelper().eval()
    cm = dycl_jax.convert(m)
    inputs = _inputs((1, 4), 12, scales=(0.5, 2.0))
    paths = run_all_paths(m, cm, inputs)
    assert len(paths) >= 2
    compiles = cm.stats.compiles
    run_all_paths(m, cm, inputs)
    assert cm.stats.compiles == compiles  # same signatures: nothing recompiled


def test_boolean_mask_indexing_runs_on_host() -> None:
    torch.manual_seed(14)
    m = dm.MaskSelect().eval()
    cm = dycl_jax.convert(m)
    inputs = _inputs((6, 4), 12, scales=(0.1, 1.0, 5.0))
    run_all_paths(m, cm, inputs)
    assert len({m(*x)[1] for x in inputs}) >= 2
    assert "_dy.eager_getitem(x, keep)" in cm.host_source
