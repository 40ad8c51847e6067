"""Every private JAX and PyTorch API dycl_jax relies on, in one place.

dycl_jax works close to both frameworks' internals: the exact type of a concrete jax array (a fast
path on every region call), whether JAX has started its backends, ``make_fx``'s private options,
module re-parametrisation, FX stack-trace anchors, the core-ATen decomposition table and torch's
pytree helpers. Each is reached only through this module, so a framework upgrade that moves one of
them is fixed here, and ``tests/test_compat.py`` (one small test per entry) says which one moved.

Where a public equivalent exists it is used (``torch.backends.mkldnn.enabled``); where a private
name may disappear, the fallback keeps dycl_jax correct, possibly slower, and is documented at the
entry.
"""

from __future__ import annotations

import contextlib
import operator
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax

# The PyTorch entries import torch when first used, never at import: a saved artifact runs with
# ``dycl_jax.portable`` and this module where torch is not installed.
if TYPE_CHECKING:
    import torch
    from torch._ops import OpOverload as OpOverload
    from torch._ops import OpOverloadPacket as OpOverloadPacket

__all__ = [
    "ARRAY_IMPL",
    "TRACER",
    "OpOverload",
    "OpOverloadPacket",
    "core_aten_decompositions",
    "fx_tracing_hidden",
    "jax_backends_initialized",
    "make_fx",
    "mkldnn_disabled",
    "op_name",
    "register_stack_trace_anchor",
    "reparametrize_module",
    "tree_flatten",
    "tree_leaves",
    "tensor_versions",
    "traced_tensor",
    "tree_unflatten",
    "use_compilation_cache",
]

# ---- JAX ----------------------------------------------------------------------------------------


def _array_impl() -> type[Any]:
    try:
        from jax._src.array import ArrayImpl
    except ImportError:
        # Not ``type(jnp.zeros(()))``: creating an array here (at import) would start the CPU
        # backend before dycl_jax.config.prefer_sync_cpu_dispatch() runs. jax.Array is never the
        # exact type of a value, so exact-type fast paths just miss and fall back to isinstance.
        return jax.Array
    return ArrayImpl


ARRAY_IMPL: type[Any] = _array_impl()
"""The exact type of a concrete (non-traced) jax array, for ``type(v) is ARRAY_IMPL`` fast paths
(much cheaper than ``isinstance(v, jax.Array)``). Callers must keep an ``isinstance`` fallback."""


def _tracer() -> type[Any]:
    core = getattr(jax, "core", None)
    tracer = getattr(core, "Tracer", None)
    if isinstance(tracer, type):
        return tracer
    from jax._src.core import Tracer

    return Tracer


TRACER: type[Any] = _tracer()
"""The base class of JAX tracers (``jax.core.Tracer``)."""


def jax_backends_initialized() -> bool:
    """Whether JAX has created its backends (settings read at client creation are then fixed).

    If the private probe is gone, answers True: callers then leave settings alone rather than
    change a setting too late.
    """
    try:
        from jax._src import xla_bridge
    except ImportError:
        return True
    probe = getattr(xla_bridge, "backends_are_initialized", None)
    if callable(probe):
        return bool(probe())
    if hasattr(xla_bridge, "_backends"):
        return bool(xla_bridge._backends)
    return True


def use_compilation_cache(directory: str) -> bool:
    """Point JAX's persistent compilation cache at ``directory`` and cache every executable
    (no minimum compile time or size). Leaves a cache the user configured alone and returns
    False then. Measured here: a loaded SDN's first calls 1.9 s without, 0.3 s with a warm one."""
    current = jax.config.values.get("jax_compilation_cache_dir")
    if current and os.path.abspath(current) != os.path.abspath(directory):
        return False
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return True


# ---- PyTorch ------------------------------------------------------------------------------------


def __getattr__(name: str) -> Any:
    """``OpOverload`` / ``OpOverloadPacket``, imported from torch on first use."""
    if name in ("OpOverload", "OpOverloadPacket"):
        import torch._ops

        value = getattr(torch._ops, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_stack_trace_anchor(fn: Callable[..., Any]) -> bool:
    """Make ``make_fx(record_stack_traces=True)`` keep ``fn``'s frames in node stack traces.

    PyTorch keeps only frames named ``forward`` and registered anchors. Returns False (and does
    nothing) if this PyTorch has no anchor registry; error locations then lose the region's lines.
    """
    import torch.fx.proxy as proxy

    register = getattr(proxy, "_register_stack_trace_anchor", None)
    if register is None:
        return False
    register(fn)
    return True


def reparametrize_module(
    module: torch.nn.Module,
    parameters_and_buffers: Mapping[str, torch.Tensor],
    *,
    strict: bool = False,
) -> contextlib.AbstractContextManager[Any]:
    """Context manager: ``module``'s named parameters/buffers temporarily replaced by the given
    tensors (what ``torch.func.functional_call`` does around a single call)."""
    from torch.nn.utils.stateless import _reparametrize_module

    return _reparametrize_module(module, dict(parameters_and_buffers), strict=strict)


@contextlib.contextmanager
def mkldnn_disabled() -> Iterator[None]:
    """Turn mkldnn (oneDNN) off for the block, touching nothing else.

    ``torch.backends.mkldnn.flags()`` would also set TF32 options (and warn); this flips only the
    switch. mkldnn's fused CPU RNN kernels have no core-ATen decomposition; the generic path has.
    """
    import torch

    mkldnn: Any = torch.backends.mkldnn
    prev = mkldnn.enabled
    mkldnn.enabled = False
    try:
        yield
    finally:
        mkldnn.enabled = prev


@contextlib.contextmanager
def fx_tracing_hidden() -> Iterator[None]:
    """``torch.fx._symbolic_trace.is_fx_tracing()`` reads False inside (make_fx sets its flag
    while tracing). Private flag; if it moves, user code branching on it sees the tracer."""
    import torch.fx._symbolic_trace as st

    if not hasattr(st, "_is_fx_tracing_flag"):
        yield
        return
    flag = st._is_fx_tracing_flag
    st._is_fx_tracing_flag = False
    try:
        yield
    finally:
        st._is_fx_tracing_flag = flag


def core_aten_decompositions() -> dict[OpOverload, Callable[..., Any]]:
    """PyTorch's decomposition table down to the core-ATen opset."""
    from torch._decomp import core_aten_decompositions as _core_aten_decompositions

    return dict(_core_aten_decompositions())


def make_fx(
    fn: Callable[..., Any],
    *,
    decomposition_table: Mapping[OpOverload, Callable[..., Any]] | None = None,
    tracing_mode: str = "real",
    record_stack_traces: bool = False,
    allow_non_fake_inputs: bool = False,
) -> Callable[..., torch.fx.GraphModule]:
    """``torch.fx.experimental.proxy_tensor.make_fx``; ``allow_non_fake_inputs`` is its private
    ``_allow_non_fake_inputs`` (real tensors closed over or passed in are faked on the fly)."""
    from torch.fx.experimental.proxy_tensor import make_fx as _make_fx

    return _make_fx(
        fn,
        decomposition_table=decomposition_table,
        tracing_mode=tracing_mode,  # type: ignore[arg-type]
        record_stack_traces=record_stack_traces,
        _allow_non_fake_inputs=allow_non_fake_inputs,
    )


def op_name(op: OpOverload) -> tuple[str, str]:
    """``(name, overload)`` of an ATen overload: ``aten.add_.Tensor`` -> ``("add_", "Tensor")``,
    ``aten.relu.default`` -> ``("relu", "default")``."""
    return op._schema.name.split("::")[-1], op._overloadname


def tree_leaves(tree: Any) -> list[Any]:
    """Leaves of a nested list/tuple/dict structure in torch's pytree order (``None`` is a leaf,
    unlike in ``jax.tree_util``)."""
    import torch.utils._pytree as _torch_pytree

    return _torch_pytree.tree_leaves(tree)


def tree_flatten(tree: Any) -> tuple[list[Any], Any]:
    """``(leaves, spec)`` of a nested structure (torch's pytree)."""
    import torch.utils._pytree as _torch_pytree

    return _torch_pytree.tree_flatten(tree)


def tree_unflatten(leaves: list[Any], spec: Any) -> Any:
    """Inverse of :func:`tree_flatten`."""
    import torch.utils._pytree as _torch_pytree

    return _torch_pytree.tree_unflatten(leaves, spec)


_VERSION = operator.attrgetter("_version")


def tensor_versions(tensors: Sequence[torch.Tensor]) -> int:
    """The sum of the tensors' in-place version counters (``Tensor._version``, private): it grows
    with every in-place write to any of them. A C-level map, about 0.07 µs a tensor."""
    return sum(map(_VERSION, tensors))


def traced_tensor(t: torch.Tensor) -> bool:
    """Whether ``t`` is a value being traced (it holds no data to read): a tensor subclass (a
    fake, a functional tensor), a meta tensor, or a plain ``torch.Tensor`` wrapping one under
    functorch's ``functionalize`` (``torch._C._functorch.is_functorch_wrapped_tensor``, private;
    without it only the first three are recognised)."""
    import torch

    if type(t) is not torch.Tensor or t.device.type == "meta":
        return True
    wrapped = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)
    return bool(wrapped(t)) if wrapped is not None else False
