"""The ATen -> JAX op table.

A :class:`Lowering` maps one or more ATen overloads to a small function of ``jax.numpy``/``lax``.
Register with the decorator::

    @lowers(aten.add.Tensor, aten.add.Scalar)
    def _aten_add(x, y, alpha=1):
        return x + y * alpha if alpha != 1 else x + y

A lowering receives the node's positional and keyword arguments with graph values replaced by JAX
arrays; everything else (ints, floats, lists, ``torch.dtype``) arrives as the Python value the graph
holds. With ``needs_meta=True`` it also gets ``_meta``: the node's fake tensor (or tuple of them),
i.e. PyTorch's own answer for the result's shape and dtype.

After every lowering the interpreter casts the result to the dtype PyTorch computed (from the node's
fake tensor), so PyTorch's type promotion holds even where ``jnp`` promotes differently; a lowering
only has to get the *values* right.

Registration is strict: registering an overload twice raises. Lookup tries the exact overload, then
raises :class:`~dycl_jax.errors.MissingLoweringError` (the interpreter adds the user's source line).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from dycl_jax.compat import OpOverload, OpOverloadPacket
from dycl_jax.errors import MissingLoweringError


@dataclasses.dataclass(frozen=True)
class Lowering:
    """One table entry: the overload, its JAX implementation and flags."""

    target: OpOverload
    fn: Callable[..., Any]
    needs_meta: bool = False
    # False for lowerings whose result dtype legitimately differs from the fake tensor's
    # (never the case today; kept so a lowering can opt out of the final cast explicitly).
    cast_to_meta: bool = True
    # Operands cast to PyTorch's common dtype of the op's inputs (torch.result_type), not widened
    # to float32: comparisons, whose bool result does not say which dtype they compared in.
    common_dtype: bool = False
    # What the lowering computes as PyTorch does, judged on its first tensor argument (the fake
    # tensor traced), and what it does not (words for the message): another input is a missing
    # lowering, so the region runs in PyTorch. uint8 bilinear upsampling is PyTorch's own
    # fixed-point kernel; as_strided of a view addresses the view's storage.
    accepts: tuple[Callable[[Any], bool], str] | None = None


LOWERINGS: dict[OpOverload, Lowering] = {}

FLOAT_INPUTS = (lambda v: v.dtype.is_floating_point, "an input that is not floating point")


def lowers(
    *targets: OpOverload | OpOverloadPacket,
    needs_meta: bool = False,
    cast_to_meta: bool = True,
    common_dtype: bool = False,
    accepts: tuple[Callable[[Any], bool], str] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the lowering of ``targets``.

    A packet (``aten.sum``) registers all of its overloads not registered explicitly elsewhere is
    *not* supported on purpose: name overloads so the table is exact and coverage is honest.
    """

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for target in targets:
            if not isinstance(target, OpOverload):
                raise TypeError(f"@lowers needs OpOverloads (e.g. aten.add.Tensor), got {target}")
            if target in LOWERINGS:
                raise ValueError(
                    f"duplicate lowering for {target}: {LOWERINGS[target].fn.__qualname__} "
                    f"and {fn.__qualname__}"
                )
            LOWERINGS[target] = Lowering(
                target, fn, needs_meta, cast_to_meta, common_dtype, accepts
            )
        return fn

    return register


def lookup(target: OpOverload) -> Lowering:
    """The lowering for ``target``, or MissingLoweringError naming the overload."""
    try:
        return LOWERINGS[target]
    except KeyError:
        raise MissingLoweringError(str(target)) from None


def registered() -> list[str]:
    """Names of every registered overload, sorted."""
    return sorted(str(t) for t in LOWERINGS)
