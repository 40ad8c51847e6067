"""One small test per private JAX / PyTorch API isolated in dycl_jax.compat: after a framework
upgrade, the failing test names the entry that moved."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import fx

from dycl_jax import compat

aten = torch.ops.aten


def test_array_impl_is_the_exact_type_of_a_concrete_array() -> None:
    assert type(jnp.zeros(())) is compat.ARRAY_IMPL
    assert type(jnp.asarray(np.ones(3, np.int32))) is compat.ARRAY_IMPL
    assert issubclass(compat.ARRAY_IMPL, jax.Array)


def test_tracer_is_the_type_of_traced_values() -> None:
    seen: list[bool] = []

    def f(x: jax.Array) -> jax.Array:
        seen.append(isinstance(x, compat.TRACER))
        return x

    jax.jit(f)(jnp.ones(2))
    assert seen == [True]
    assert not isinstance(jnp.ones(2), compat.TRACER)


def test_jax_backends_initialized() -> None:
    jnp.zeros(())  # this process has surely started JAX now
    assert compat.jax_backends_initialized() is True
    # A fresh interpreter: importing jax (and dycl_jax) starts no backend.
    code = (
        "import dycl_jax\nfrom dycl_jax import compat\nassert not compat.jax_backends_initialized()\n"
        "import jax.numpy as jnp\njnp.zeros(())\nassert compat.jax_backends_initialized()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _region(x: torch.Tensor) -> torch.Tensor:
    return x * 2 + 1


def test_register_stack_trace_anchor_keeps_the_region_line() -> None:
    assert compat.register_stack_trace_anchor(_region) is True
    gm = compat.make_fx(_region, record_stack_traces=True)(torch.ones(2))
    traces = [n.meta.get("stack_trace") or "" for n in gm.graph.nodes if n.op == "call_function"]
    assert traces and all("_region" in t and __file__ in t for t in traces), traces


def test_reparametrize_module() -> None:
    lin = torch.nn.Linear(2, 2)
    w = torch.zeros(2, 2)
    with compat.reparametrize_module(lin, {"weight": w}):
        assert lin.weight is w
        assert torch.equal(lin(torch.ones(1, 2)), lin.bias.detach().expand(1, 2))
    assert lin.weight is not w and isinstance(lin.weight, torch.nn.Parameter)


def test_mkldnn_disabled_restores_the_setting() -> None:
    mkldnn: Any = torch.backends.mkldnn
    before = mkldnn.enabled
    with compat.mkldnn_disabled():
        assert mkldnn.enabled is False
    assert mkldnn.enabled == before


def test_core_aten_decompositions() -> None:
    table = compat.core_aten_decompositions()
    assert aten.gelu_backward.default in table or aten.hardsigmoid.default in table
    assert all(isinstance(k, compat.OpOverload) for k in table)


def test_make_fx_fake_with_real_inputs_and_decompositions() -> None:
    weight = torch.ones(3)  # a real tensor closed over: needs allow_non_fake_inputs

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.hardsigmoid(x * weight)

    gm = compat.make_fx(
        f,
        decomposition_table=compat.core_aten_decompositions(),
        tracing_mode="fake",
        allow_non_fake_inputs=True,
    )(torch.ones(3))
    assert isinstance(gm, fx.GraphModule)
    targets = {n.target for n in gm.graph.nodes if n.op == "call_function"}
    assert aten.hardsigmoid.default not in targets  # decomposed
    x = torch.randn(3)
    torch.testing.assert_close(gm(x), f(x))


def test_op_overload_types_and_names() -> None:
    assert isinstance(aten.add_.Tensor, compat.OpOverload)
    assert isinstance(aten.add_, compat.OpOverloadPacket)
    assert compat.op_name(aten.add_.Tensor) == ("add_", "Tensor")
    assert compat.op_name(aten.relu.default) == ("relu", "default")


def test_pytree() -> None:
    # Unlike JAX's pytrees, None is a leaf (graph outputs that are None keep their position).
    tree = {"a": [1, (2, 3)], "b": None}
    leaves, spec = compat.tree_flatten(tree)
    assert leaves == [1, 2, 3, None] and compat.tree_leaves(tree) == leaves
    assert compat.tree_unflatten([4, 5, 6, 7], spec) == {"a": [4, (5, 6)], "b": 7}


def test_tensor_versions_grow_with_in_place_writes() -> None:
    a, b = torch.zeros(2), torch.ones(3)
    v0 = compat.tensor_versions([a, b])
    b.mul_(2)
    a[0] = 1.0
    assert compat.tensor_versions([a, b]) >= v0 + 2
    assert compat.tensor_versions([a.detach()]) == compat.tensor_versions([a])  # shared counter


def test_use_compilation_cache_fills_the_directory(tmp_path) -> None:
    # A process of its own: the setting is process-wide.
    code = (
        "import jax, numpy as np, os\n"
        "from dycl_jax import compat\n"
        "jax.jit(lambda x: x * 3)(np.ones(2))\n"  # a compile before it is set
        f"assert compat.use_compilation_cache({str(tmp_path / 'c')!r})\n"
        "jax.jit(lambda x: x + 2)(np.ones(2))\n"
        f"assert os.listdir({str(tmp_path / 'c')!r})\n"
        f"assert not compat.use_compilation_cache({str(tmp_path / 'other')!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_traced_tensor() -> None:
    import torch
    from torch.func import functionalize

    from dycl_jax.compat import traced_tensor

    assert not traced_tensor(torch.ones(2))
    assert traced_tensor(torch.ones(2, device="meta"))
    seen: list[bool] = []

    def f(x: torch.Tensor) -> torch.Tensor:
        seen.append(traced_tensor(x))
        return x + 1

    functionalize(f)(torch.ones(2))
    assert seen == [True]


def test_fx_tracing_hidden() -> None:
    import torch.fx._symbolic_trace as st

    assert hasattr(st, "_is_fx_tracing_flag")  # the private flag is still where it was
    before = st._is_fx_tracing_flag
    st._is_fx_tracing_flag = True
    try:
        with compat.fx_tracing_hidden():
            assert not torch.fx._symbolic_trace.is_fx_tracing()
        assert st._is_fx_tracing_flag is True
    finally:
        st._is_fx_tracing_flag = before
