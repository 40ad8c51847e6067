"""The select a staged region computes an ``if`` with, at capture time (see ``ir.stage``).

``select(pred, then_fn, then_args, else_fn, else_args)`` runs while a staged region is traced: it
traces *both* branches, each on its own copies of the tensors it reads (so an in-place op in one
branch is not seen by the other, as when only one runs), and returns, per output,
``torch.where(pred, then_value, else_value)``. That equals running the taken branch alone only
when both branches give results of the same structure, shape and dtype, and the same Python
values; otherwise it raises :class:`StagingFailed` and the runner runs the region's fallback (the
original host statements) for that signature. A condition that is a Python value (a shape test)
picks its branch while tracing, as the host would.

Each select also records, in program order, the *path code* of its condition: 1 or 0 for the
branch taken, -1 where an enclosing select did not take the branch it sits in. A staged region
returns the codes as extra outputs; the runner reads them only when the path is being recorded
(``ConvertedModel.record``, checked mode), so a staged ``if`` is still a distinct path there.

**Cost.** Selecting computes the branch not taken too. Each branch is traced under a counting
dispatch mode (see ``MAX_BRANCH_COST`` for the unit); the runner stages a signature only when the
costlier branch of each top-level select stays under it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from dycl_jax.capture.trace import changed_container, container_snapshot
from dycl_jax.runtime import io

# Work units of the costlier branch below which a staged select pays. A unit is a FLOP of a
# matmul, convolution or attention (``torch.utils.flop_counter``) or an eighth of a tensor element
# an op reads or writes, whichever is more per op (a batch-1 ``Linear`` is bound by reading its
# weights, a convolution by its FLOPs). Measured on the 2-core reference machine with a gate whose
# branch is n Linear(d, d) or Conv2d(d, d, 3) layers, computing the branch every call beat
# reading the condition and dispatching the branch on the host up to about 5e5-1e6 units (1.2-1.7x
# faster below, 0.4-0.9x above).
MAX_BRANCH_COST = 1_000_000.0
_FREE = frozenset({torch.ops.aten.clone.default, torch.ops.aten.copy.default})


class StagingFailed(Exception):
    """A staged region cannot compute this signature in-graph (the reason is the message)."""


@dataclasses.dataclass
class Trace:
    """State of one staged capture: path codes, enclosing conditions, branch costs."""

    codes: list[Any] = dataclasses.field(default_factory=list)
    active: list[Any] = dataclasses.field(default_factory=list)  # enclosing branch conditions
    costs: list[tuple[int, float]] = dataclasses.field(default_factory=list)  # (line, cost)

    def code(self, taken: Any) -> Any:
        """The path code of a condition ``taken`` (bool or 0-d bool tensor) here: -1 where an
        enclosing select's condition does not lead here."""
        code = taken.to(torch.int8) if isinstance(taken, torch.Tensor) else int(taken)
        for outer in reversed(self.active):  # only traced conditions: static picks push none
            if not isinstance(code, torch.Tensor):
                code = torch.full_like(outer, code, dtype=torch.int8)
            code = torch.where(outer, code, torch.full_like(code, -1))
        return code


_CURRENT: contextvars.ContextVar[Trace | None] = contextvars.ContextVar(
    "dycl_staging", default=None
)


@contextlib.contextmanager
def collect() -> Iterator[Trace]:
    """Collect the selects of one staged capture."""
    trace = Trace()
    token = _CURRENT.set(trace)
    try:
        yield trace
    finally:
        _CURRENT.reset(token)


class _Cost(TorchDispatchMode):
    """Counts the work of the ops dispatched while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0.0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.total += op_work(func, args, kwargs, out)
        return out


def op_work(func: Any, args: Any, kwargs: dict[str, Any], out: Any) -> float:
    """Work units of one ATen op call (see ``MAX_BRANCH_COST``): its FLOPs or an eighth of
    the tensor elements it reads and writes, whichever is more; views, metadata and copies none."""
    if func.is_view or func.namespace == "prim" or func in _FREE:
        return 0.0  # no work once XLA has fused them
    counter = flop_registry.get(func._overloadpacket)
    flops = float(counter(*args, **kwargs, out_val=out)) if counter is not None else 0.0
    return max(flops, _element_work(args, kwargs, out))


def _element_work(args: Any, kwargs: dict[str, Any], out: Any) -> float:
    """An eighth of the tensor elements an op reads and writes."""
    outs = out if isinstance(out, list | tuple) else (out,)
    return 8.0 * sum(
        v.numel() for v in (*args, *kwargs.values(), *outs) if isinstance(v, torch.Tensor)
    )


def graph_work(gm: torch.fx.GraphModule) -> float:
    """Work units of a captured graph, from the shapes its nodes recorded while traced."""
    total = 0.0
    for node in gm.graph.nodes:
        if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
            continue
        args, kwargs = torch.fx.node.map_aggregate(
            (node.args, node.kwargs),
            lambda a: a.meta.get("val") if isinstance(a, torch.fx.Node) else a,
        )
        out = node.meta.get("val")
        try:
            total += op_work(node.target, args, kwargs, out)
        except Exception:  # a FLOP counter that cannot read these arguments: elements only
            total += _element_work(args, kwargs, out)
    return total


def select(
    pred: Any,
    then_fn: Callable[..., tuple[Any, ...]],
    then_args: tuple[Any, ...],
    else_fn: Callable[..., tuple[Any, ...]],
    else_args: tuple[Any, ...],
) -> tuple[Any, ...]:
    trace = _CURRENT.get()
    if trace is None:  # outside a staged capture: the host's semantics
        return then_fn(*then_args) if bool(pred) else else_fn(*else_args)
    if not isinstance(pred, torch.Tensor):
        static = bool(pred)  # a Python value (a shape test): part of the signature
        trace.codes.append(trace.code(static))
        return then_fn(*then_args) if static else else_fn(*else_args)
    if pred.numel() != 1:
        raise StagingFailed(f"a condition with {pred.numel()} elements (bool() would raise)")
    c = pred.reshape(())
    if c.dtype != torch.bool:
        c = c != 0  # bool(t) of a number: nonzero (NaN is true)
    trace.codes.append(trace.code(c))
    top = not trace.active
    outs = []
    costs = []
    for taken, fn, args in ((c, then_fn, then_args), (~c, else_fn, else_args)):
        trace.active.append(taken)
        try:
            given = _fresh(args)
            before = {id(t): (t, _writes(t)) for t in _tensors(given)}
            containers = container_snapshot(given)
            with _Cost() as cost:
                out = fn(*given)
            if changed_container(containers, out):
                # (a call the analysis cannot name, `hooks["exit"](outs, i)`): the host runs
                # the branch, where the region's capture checks it
                raise StagingFailed("a branch changes a list or dict it is given")
            returned = {id(t) for t in _tensors(out)}
            for key, (t, version) in before.items():
                if _writes(t) != version and key not in returned:
                    # the branch writes a value it does not hand back (a write the analysis
                    # did not see): the host runs it, where the region's capture checks it
                    raise StagingFailed("a branch writes one of its inputs in place")
            outs.append(out)
        finally:
            trace.active.pop()
        costs.append(cost.total)
    if top:
        line = getattr(then_fn, "__code__", None)
        trace.costs.append((line.co_firstlineno if line else 0, max(costs)))
    memo: dict[tuple[int, int], Any] = {}
    return tuple(_merge(c, a, b, i, memo) for i, (a, b) in enumerate(zip(*outs, strict=True)))


def _writes(t: torch.Tensor) -> int:
    """A count that moves with every in-place write to ``t`` (under functionalization, its
    mutation counter; else its version counter)."""
    if torch._is_functional_tensor(t):
        return int(torch._functionalize_mutation_counter(t))
    return int(t._version)


def _tensors(v: Any) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []

    def keep(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            found.append(x)
        return x

    io.map_structure(keep, v)
    return found


def _fresh(v: Any) -> Any:
    """``v`` with every tensor it holds (through lists, tuples, dicts, dataclasses) copied; one
    tensor met at several places (``hs = [h, h]``) is one copy, so a write through one place
    is seen at the others, as when the branch runs alone."""
    copies: dict[int, torch.Tensor] = {}

    def copy(x: Any) -> Any:
        if not isinstance(x, torch.Tensor):
            return x
        if id(x) not in copies:
            copies[id(x)] = x.clone()
        return copies[id(x)]

    return io.map_structure(copy, v)


_SCALARS = (bool, int, float, complex, str, bytes, type(None))


def _merge(c: torch.Tensor, a: Any, b: Any, index: int, memo: dict[tuple[int, int], Any]) -> Any:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        pair = (id(a), id(b))
        if pair in memo:  # the same tensors at another place: the same result there
            return memo[pair]
        if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
            raise StagingFailed(
                f"output {index}: {tuple(a.shape)} {a.dtype} in one branch, "
                f"{tuple(b.shape)} {b.dtype} in the other"
            )
        memo[pair] = torch.where(c, a, b)
        return memo[pair]
    ta, tb = type(a), type(b)
    if ta is not tb:
        raise StagingFailed(
            f"output {index}: {ta.__name__} in one branch, {tb.__name__} in the other"
        )
    if ta is list or ta is tuple or (isinstance(a, tuple) and hasattr(ta, "_fields")):
        if len(a) != len(b):
            raise StagingFailed(f"output {index}: lengths {len(a)} and {len(b)}")
        merged = [_merge(c, x, y, index, memo) for x, y in zip(a, b)]
        return ta(*merged) if hasattr(ta, "_fields") else ta(merged)
    if ta is dict:
        if list(a) != list(b):
            raise StagingFailed(f"output {index}: dict keys differ")
        return {k: _merge(c, a[k], b[k], index, memo) for k in a}
    if a is b:
        return a
    if ta in _SCALARS and a == b and repr(a) == repr(b):  # repr: 0.0 and -0.0 differ
        return a
    raise StagingFailed(f"output {index}: the branches give different Python values")
