"""Turn a captured core-ATen FX graph into a pure JAX function.

``to_jax(gm)`` returns ``fn(*flat_inputs) -> tuple(flat_outputs)``: positional arguments in the
graph's placeholder order, one output per graph output. The function is pure, so the caller jits it.
Interpretation happens only while JAX traces, so this loop costs nothing per call.

Every result is cast to the dtype PyTorch computed for that node (its fake tensor in
``node.meta["val"]``), which enforces PyTorch's type promotion whatever ``jnp`` would have done.
Errors raised by a lowering are re-raised as :class:`~dycl_jax.errors.LoweringError` naming the
ATen overload and the user's source line that produced the node.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import fx

from dycl_jax.compat import TRACER, OpOverload, op_name, tree_leaves
from dycl_jax.errors import (
    CaptureError,
    DataDependentError,
    DyclError,
    LoweringError,
    MissingLoweringError,
    UnsupportedConstructError,
    location_from_stack_trace,
)
from dycl_jax.lower import dtypes
from dycl_jax.lower.registry import Lowering, lookup

_RANDOM_OPS = ("rand", "bernoulli", "normal", "multinomial", "uniform", "poisson", "exponential")


def _functional_variant(target: OpOverload) -> OpOverload | None:
    """``aten.add_.Tensor`` -> ``aten.add.Tensor`` (None if ``target`` is not an in-place op)."""
    name, overload = op_name(target)
    if not name.endswith("_") or name.startswith("_"):
        return None
    packet = getattr(torch.ops.aten, name[:-1], None)
    return getattr(packet, overload, None) if packet is not None else None


def _resolve(target: OpOverload) -> tuple[Lowering, bool]:
    """The lowering for ``target`` and whether it is an in-place op run functionally.

    Decompositions run below functionalization, so a few in-place ops (``add_`` inside the GRU
    cell decomposition) reach the graph; they act on fresh temporaries, and the interpreter
    rebinds the mutated node to the functional result.
    """
    try:
        return lookup(target), False
    except MissingLoweringError:
        functional = _functional_variant(target)
        if functional is None:
            raise
        return lookup(functional), True


# PyTorch's CPU kernels for these reject operands of different dtypes, but their fake-tensor meta
# functions do not; so the check is made here, or a model PyTorch refuses would run.
_SAME_DTYPE_OPS = {
    torch.ops.aten.mm.default,
    torch.ops.aten.bmm.default,
    torch.ops.aten.addmm.default,
    torch.ops.aten.baddbmm.default,
    torch.ops.aten.convolution.default,
    torch.ops.aten.mv.default,
    torch.ops.aten.dot.default,
}


def _check_operand_dtypes(node: fx.Node) -> None:
    metas = [a.meta.get("val") for a in node.args if isinstance(a, fx.Node)]
    found = {m.dtype for m in metas if isinstance(m, torch.Tensor)}
    if len(found) > 1:
        names = " and ".join(sorted(str(d).removeprefix("torch.") for d in found))
        raise CaptureError(
            f"{node.target} expects operands of one dtype, got {names} (PyTorch raises here too)",
            location_from_stack_trace(node.meta.get("stack_trace")),
            hint="cast the input (e.g. x.float()) or pass the dtype the model's weights have",
        )


# Ops that turn a tensor into a Python number while tracing (a value read hidden in an op's
# argument): they cannot be in a compiled region.
_VALUE_READS = {torch.ops.aten._local_scalar_dense.default}


def check_supported(gm: fx.GraphModule) -> None:
    """Raise for the first op PyTorch would refuse or that has no lowering (with the user's line)."""
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target in _SAME_DTYPE_OPS:
            _check_operand_dtypes(node)
        if node.target in _VALUE_READS:
            raise DataDependentError(
                f"{node.target} reads a tensor's value inside a region (an argument that "
                "must be a Python number, e.g. narrow(dim, start_tensor, n))",
                location_from_stack_trace(node.meta.get("stack_trace")),
                hint="read it first with int(t) / t.item() in forward",
            )
        if (
            node.op == "call_function"
            and not isinstance(node.target, OpOverload)
            and node.target is not operator.getitem
        ):
            # torch.cond / torch.while_loop / torch.map: PyTorch's higher-order control flow
            raise UnsupportedConstructError(
                f"{getattr(node.target, '__name__', node.target)} (a higher-order operator such "
                "as torch.cond or torch.while_loop) has no lowering",
                location_from_stack_trace(node.meta.get("stack_trace")),
                hint="write the control flow in Python (`if cond: ... else: ...`, a `while` "
                "loop): dycl_jax splits the program there and runs the branch taken",
            )
        if node.op == "call_function" and isinstance(node.target, OpOverload):
            try:
                lowering, _ = _resolve(node.target)
                first = next((a for a in node.args if isinstance(a, fx.Node)), None)
                val = first.meta.get("val") if first is not None else None
                if (
                    lowering.accepts is not None
                    and isinstance(val, torch.Tensor)
                    and not lowering.accepts[0](val)
                ):
                    raise MissingLoweringError(f"{node.target} on {lowering.accepts[1]}")
            except MissingLoweringError as e:
                hint = None
                if any(r in e.overload for r in _RANDOM_OPS):
                    hint = (
                        "random sampling inside a compiled region has no faithful translation (its "
                        "numbers would differ from PyTorch's); sampling written in forward or a "
                        "method (torch.rand, bernoulli, multinomial) runs in PyTorch on the host "
                        "instead: move it out of the lambda or library code that makes it"
                    )
                raise MissingLoweringError(
                    e.overload, location_from_stack_trace(node.meta.get("stack_trace")), hint
                ) from None


def _cast_like(value: Any, meta: Any) -> Any:
    if isinstance(meta, torch.Tensor):
        want = dtypes.to_jax(meta.dtype)
        if isinstance(value, jax.Array | TRACER) and value.dtype != want:
            return value.astype(want)
        if not isinstance(value, jax.Array | TRACER):
            return jnp.asarray(value, dtype=want)
        return value
    if isinstance(meta, list | tuple) and isinstance(value, list | tuple):
        return type(value)(_cast_like(v, m) for v, m in zip(value, meta))
    return value


# Ops that reinterpret bits: computing them in float32 would change what they mean.
_BITWISE_OPS = {torch.ops.aten.view.dtype}


# Binary kernels that read a 0-d second operand as an unrounded float32 scalar (PyTorch's CPU
# mul and div take it through their scalar path; every other kernel, and these with the 0-d
# tensor first, cast it to the result's dtype). Measured on torch 2.13 against float16 results.
_SCALAR_SECOND = frozenset({torch.ops.aten.mul.Tensor, torch.ops.aten.div.Tensor})


def _zero_dim_to_result(args: Any, meta: Any, keep_second: bool = False) -> Any:
    """For a float16 / bfloat16 result: 0-d float operands of a wider dtype (a float32 threshold
    tensor added to half activations) rounded to the result's dtype first. A 0-d tensor takes no
    part in type promotion, and PyTorch's elementwise kernels cast every tensor operand to the
    common dtype before computing in float32 (Python scalars, not tensors, stay unrounded)."""
    if not isinstance(meta, torch.Tensor) or not meta.is_floating_point():
        return args
    to = dtypes.to_jax(meta.dtype)
    if to not in dtypes.REDUCED_FLOATS:
        return args
    return tuple(
        a.astype(to)
        if isinstance(a, jax.Array | TRACER)
        and a.ndim == 0
        and a.dtype != to
        and jnp.issubdtype(a.dtype, jnp.floating)
        and not (keep_second and i == 1)
        else a
        for i, a in enumerate(args)
    )


def _opmath(value: Any) -> Any:
    """float16 / bfloat16 operands widened to float32, inside lists and tuples.

    PyTorch's CPU kernels compute reduced-precision floats in float32 ("opmath") and round once
    per op, with a Python scalar operand kept in float32 rather than rounded to half first. Each
    op here does the same: its operands are widened, it computes in float32, and ``_cast_like``
    rounds the result to the dtype PyTorch gave it."""
    if isinstance(value, jax.Array | TRACER):
        return value.astype(jnp.float32) if value.dtype in dtypes.REDUCED_FLOATS else value
    if isinstance(value, list | tuple):
        return type(value)(_opmath(v) for v in value)
    if isinstance(value, dict):
        return {k: _opmath(v) for k, v in value.items()}
    return value


def _in_common_dtype(node: fx.Node, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Tensor and number operands cast to the dtype PyTorch computes the op in
    (``torch.result_type``): a float16 tensor compared with ``0.95`` compares with 0.95 rounded to
    float16, as PyTorch does, not with the float32 0.95 (a value exactly at the threshold would
    take the other branch)."""
    probes: list[Any] = []
    for a in node.args:
        val = a.meta.get("val") if isinstance(a, fx.Node) else a
        if isinstance(val, torch.Tensor):  # a real tensor of the same dtype and 0-d-ness
            probes.append(torch.empty((1,) * min(val.dim(), 1), dtype=val.dtype))
        elif isinstance(val, bool | int | float):
            probes.append(val)
        else:
            return args
    if len(probes) != 2 or not isinstance(probes[0], torch.Tensor):
        return args
    common = torch.result_type(probes[0], probes[1])
    wrap = None
    if not common.is_floating_point and not common.is_complex and common is not torch.bool:
        info = torch.iinfo(common)
        span = info.max - info.min + 1

        def wrap(v: int) -> int:  # PyTorch casts the Python int to the dtype: it wraps around
            return (v - info.min) % span + info.min

    dt = dtypes.to_jax(common)

    def operand(a: Any) -> Any:
        if type(a) is int:
            if wrap is not None:
                return jnp.asarray(wrap(a), dt)
            if jnp.issubdtype(dt, jnp.floating) and -(2**63) <= a < 2**63:
                # from int64, rounded once (through float32 for half types), as PyTorch converts;
                # jnp.asarray goes through float64 (2**60 + 2**36 + 1 would round twice)
                f = np.int64(a).astype(np.float32 if dt in dtypes.REDUCED_FLOATS else dt)
                return jnp.asarray(f, dt)
        return jnp.asarray(a, dt)

    return tuple(
        operand(a) if isinstance(a, jax.Array | TRACER | bool | int | float) else a for a in args
    )


def _call_node(node: fx.Node, env: dict[fx.Node, Any]) -> Any:
    def load(a: Any) -> Any:
        return fx.node.map_arg(a, lambda n: env[n])

    args, kwargs = load(node.args), load(node.kwargs)
    if node.target is operator.getitem:
        return args[0][args[1]]
    if not isinstance(node.target, OpOverload):
        raise LoweringError(f"unexpected call target {node.target!r} in captured graph")
    lowering, inplace = _resolve(node.target)
    meta = node.meta.get("val")
    if lowering.common_dtype:
        args = _in_common_dtype(node, args)
    elif lowering.cast_to_meta and node.target not in _BITWISE_OPS:
        args = _zero_dim_to_result(args, meta, node.target in _SCALAR_SECOND)
        args, kwargs = _opmath(args), _opmath(kwargs)
    if lowering.needs_meta:
        kwargs = {**kwargs, "_meta": meta}
    out = lowering.fn(*args, **kwargs)
    out = _cast_like(out, meta) if lowering.cast_to_meta else out
    if inplace and isinstance(node.args[0], fx.Node):
        env[node.args[0]] = out
    return out


def _bug(node: fx.Node, e: Exception) -> LoweringError:
    return LoweringError(
        f"lowering {node.target} failed: {type(e).__name__}: {e}",
        location_from_stack_trace(node.meta.get("stack_trace")),
        hint="this is a dycl_jax bug; please report it with this message",
    )


def to_jax(gm: fx.GraphModule) -> Callable[..., tuple[Any, ...]]:
    """A pure JAX function computing ``gm``: ``fn(*flat_inputs) -> tuple(flat_outputs)``."""
    check_supported(gm)
    nodes = list(gm.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]

    def fn(*inputs: Any) -> tuple[Any, ...]:
        if len(inputs) != len(placeholders):
            raise LoweringError(f"graph takes {len(placeholders)} inputs, got {len(inputs)}")
        env: dict[fx.Node, Any] = dict(zip(placeholders, inputs))
        for node in nodes:
            if node.op == "call_function":
                try:
                    env[node] = _call_node(node, env)
                except DyclError:
                    raise
                except NotImplementedError as e:
                    # A lowering's documented refusal (e.g. a data-dependent output shape: the
                    # runner then runs the region in PyTorch on the host instead).
                    kind = DataDependentError if "data-dependent" in str(e) else CaptureError
                    raise kind(
                        f"{node.target}: {e}",
                        location_from_stack_trace(node.meta.get("stack_trace")),
                        hint="output shapes must not depend on tensor values inside a region",
                    ) from None
                except ValueError as e:
                    if "zero-size array" not in str(e):
                        raise _bug(node, e) from e
                    # PyTorch raises here (max/argmax of an empty tensor): the runner runs the
                    # region in PyTorch for this signature, which raises that very error, or
                    # runs the user's `except` around it, as eager does
                    raise DataDependentError(
                        f"{node.target} reduces an empty tensor and has no identity value: "
                        "data-dependent",
                        location_from_stack_trace(node.meta.get("stack_trace")),
                        hint="give the reduction a dim, or avoid empty inputs on this path",
                    ) from None
                except Exception as e:
                    raise _bug(node, e) from e
            elif node.op == "output":
                flat = tree_leaves(node.args[0])
                return tuple(env[o] if isinstance(o, fx.Node) else o for o in flat)
            elif node.op == "get_attr":
                env[node] = jnp.asarray(dtypes.tensor_to_numpy(getattr(gm, node.target)))
        raise LoweringError("captured graph has no output node")

    return fn
