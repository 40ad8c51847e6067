"""The small library synthesized host programs call: ``_dy.truth``, ``_dy.call``, region runners.

A :class:`RegionRunner` is what ``_region_N(...)`` names in a host program. Per call it computes
the input signature of the live-in values, looks up (or captures, lowers and jits) the compiled
graph for that signature, runs it, and rebuilds the live-out tuple. Python outputs that depend only
on the signature (shapes, modules, counters computed from static values) come back from the cache
without touching the device.

Scalars read back from tensors on the host (``k = t.item()``) are passed to regions as 0-d array
inputs first, so a new value does not recompile; if the region needs the value itself (a Python
index, a shape, a static branch), tracing fails and the runner falls back to specialising on it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
import torch
from jax._src.array import ArrayImpl

from dycl_jax.capture import signature
from dycl_jax.capture.trace import Captured, DataDependentError, trace
from dycl_jax.lower import to_jax
from dycl_jax.runtime import io

_ARRAY_IMPL = ArrayImpl  # exact type of a concrete jax array (faster than isinstance on jax.Array)

# Parameters used by region calls: None means "the converted model's own".
PARAMS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "dycl_params", default=None
)
RECORD: contextvars.ContextVar[list[tuple[Any, ...]] | None] = contextvars.ContextVar(
    "dycl_record", default=None
)


class _Undefined:
    """Value of a local that the original program has not assigned yet on this path."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        raise NameError("local variable used before assignment (in the original forward)")


UNDEFINED = _Undefined()


@dataclasses.dataclass
class Stats:
    region_calls: int = 0
    host_reads: int = 0
    compiles: int = 0
    compile_seconds: float = 0.0
    capture_seconds: float = 0.0


@dataclasses.dataclass
class _Entry:
    jitted: Callable[..., tuple[Any, ...]] | None
    captured: Captured
    params: tuple[Any, ...]

    def run(self, leaves: list[Any]) -> tuple[Any, ...]:
        if self.jitted is None:
            return self.captured.plan.build(())
        override = PARAMS.get()
        if override is None:
            outs = self.jitted(*self.params, *leaves)
        else:
            outs = self.jitted(*(override[n] for n in self.captured.param_names), *leaves)
        return self.captured.plan.build(outs)


class RegionRunner:
    """Callable standing for one region in a host program."""

    def __init__(
        self,
        name: str,
        fn: Callable[..., tuple[Any, ...]],
        live_in: tuple[str, ...],
        dynamic: frozenset[int],
        span: str,
        session: Session,
        program: str,
    ) -> None:
        self.name = name
        self.fn = fn
        self.live_in = live_in
        self.dynamic = dynamic
        self.span = span
        self.session = session
        self.program = program
        self.cache: dict[tuple[Any, ...], _Entry] = {}

    def __call__(self, *values: Any) -> tuple[Any, ...]:
        state = self.session.state_attrs
        if state:  # module attributes forward writes are inputs too (see Session.state_attrs)
            values = (*values, *(o.__dict__.get(a, UNDEFINED) for o, a in state))
        key, leaves = signature.split(values, self.dynamic)
        entry = self.cache.get(key)
        if entry is None:
            entry, key, leaves = self._compile(key, values)
        session = self.session
        session.stats.region_calls += 1
        rec = RECORD.get()
        if rec is not None:
            rec.append(("region", self.program, self.name))
        return entry.run(leaves)

    def _compile(
        self, key: tuple[Any, ...], values: tuple[Any, ...]
    ) -> tuple[_Entry, tuple[Any, ...], list[Any]]:
        # One capture at a time per model: tracing re-parametrises the shared torch module.
        with self.session.capture_lock:
            entry = self.cache.get(key)
            if entry is not None:
                return entry, key, signature.split(values, self.dynamic)[1]
            s = self.session
            fn = self._with_state(len(values) - len(s.state_attrs))
            try:
                captured = trace(fn, s.root, s.param_names, s.torch_params, values, self.dynamic)
            except DataDependentError:
                if not self.dynamic:
                    raise
                # A host scalar is needed as a Python value here: specialise on it from now on.
                self.dynamic = frozenset()
                self.cache.clear()
                captured = trace(fn, s.root, s.param_names, s.torch_params, values, self.dynamic)
            s.stats.capture_seconds += captured.seconds
            if s.debug >= 3:
                print(
                    f"[dycl_jax] {self.program}.{self.name} ({self.span}) ATen graph:\n{captured.gm.code}"
                )
            has_outputs = any(n.op == "output" and n.args[0] for n in captured.gm.graph.nodes)
            jitted = jax.jit(to_jax(captured.gm)) if has_outputs else None
            params = tuple(s.params[n] for n in captured.param_names)
            entry = _Entry(jitted, captured, params)
            key, leaves = signature.split(values, self.dynamic)
            if jitted is not None:
                t0 = time.perf_counter()
                jitted(*params, *leaves)  # compile now so the first call's cost is attributed here
                s.stats.compile_seconds += time.perf_counter() - t0
            s.stats.compiles += 1
            self.cache[key] = entry
            return entry, key, leaves

    def _with_state(self, n: int) -> Callable[..., tuple[Any, ...]]:
        """The region function, with module state attributes set to the traced values."""
        state = self.session.state_attrs
        if not state:
            return self.fn

        def fn(*values: Any) -> tuple[Any, ...]:
            saved = [o.__dict__.get(a, UNDEFINED) for o, a in state]
            try:
                for (o, a), v in zip(state, values[n:]):
                    if v is not UNDEFINED:
                        o.__dict__[a] = v
                return self.fn(*values[:n])
            finally:
                for (o, a), v in zip(state, saved):
                    if v is UNDEFINED:
                        o.__dict__.pop(a, None)
                    else:
                        o.__dict__[a] = v

        return fn


class Session:
    """Per converted model: parameters, statistics, and the programs of dynamic callees."""

    def __init__(
        self,
        root: torch.nn.Module | None,
        program_factory: Callable[[Any, Any], Program],
        debug: int = 0,
    ) -> None:
        self.root = root
        self.debug = debug
        named: dict[str, torch.Tensor] = {}
        if root is not None:
            # One name per tensor: a module registered twice (SkipNet's shared downsample) must be
            # re-parametrised once, or restoring it would leave the traced stand-in behind.
            for n, p in root.named_parameters():
                named[n] = p
            for n, b in root.named_buffers():
                named[n] = b
        self.param_names = tuple(named)
        self.torch_params = tuple(t.detach() for t in named.values())
        self.params: dict[str, Any] = {}
        with jax.enable_x64(True):
            for n, t in zip(self.param_names, self.torch_params):
                self.params[n] = jax.numpy.asarray(t.cpu().numpy())
        self.stats = Stats()
        # Module attributes that host code writes (e.g. a recurrent gate's hidden state). Regions
        # read them as extra inputs so no capture bakes in a value that later changes.
        self.state_attrs: list[tuple[Any, str]] = []
        self._factory = program_factory
        self.programs: dict[tuple[Any, int], Program] = {}
        self._lock = threading.RLock()
        self.capture_lock = threading.RLock()

    def program_for(self, fn: Any, owner: Any) -> Program:
        key = (fn, id(owner))
        prog = self.programs.get(key)
        if prog is None:
            with self._lock:
                prog = self.programs.get(key)
                if prog is None:
                    prog = self._factory(fn, owner)
                    self.programs[key] = prog
        return prog


class Program:
    """One converted function: its host function and region runners."""

    def __init__(
        self,
        qualname: str,
        host_source: str,
        host: Callable[..., Any],
        owner: Any,
        regions: list[Any],
    ) -> None:
        self.qualname = qualname
        self.host_source = host_source
        self.host = host
        self.owner = owner
        self.regions = regions  # rewrite.regions.Region
        self.runners: list[RegionRunner] = []

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.owner is not None:
            return self.host(self.owner, *args, **kwargs)
        return self.host(*args, **kwargs)


class Runtime:
    """The ``_dy`` object of host programs."""

    UNDEFINED = UNDEFINED

    def __init__(self, session: Session) -> None:
        self.session = session

    def truth(self, v: Any) -> bool:
        """``bool(v)`` with PyTorch's rules for one-element tensors; one device read."""
        if type(v) is _ARRAY_IMPL:
            self.session.stats.host_reads += 1
            if v.size != 1:
                raise RuntimeError(
                    f"Boolean value of Tensor with more than one value is ambiguous (shape {v.shape})"
                )
            b = bool(v.item())  # one device->host copy; measured cheaper than bool(v) or np.asarray
        elif isinstance(v, jax.Array):  # a tracer, e.g. under jax.grad of ConvertedModel.apply
            b = bool(v)
        else:
            b = bool(v)
        rec = RECORD.get()
        if rec is not None:
            rec.append(("cond", b))
        return b

    def numpy(self, t: Any) -> Any:
        """``t.numpy()``: a host copy as a numpy array, like PyTorch's."""
        self.session.stats.host_reads += 1
        return np.array(t)

    def eager(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a torch op whose output shape depends on values (nonzero, unique, ...) in PyTorch."""
        self.session.stats.host_reads += 1
        return io.from_torch(fn(*io.to_torch(args), **io.to_torch(kwargs)))

    def eager_method(self, t: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        self.session.stats.host_reads += 1
        return io.from_torch(
            getattr(io.to_torch(t), name)(*io.to_torch(args), **io.to_torch(kwargs))
        )

    def eager_getitem(self, t: Any, index: Any) -> Any:
        """``t[mask]`` (output shape depends on the mask) run by PyTorch on the host."""
        self.session.stats.host_reads += 1
        return io.from_torch(io.to_torch(t)[io.to_torch(index)])

    def call(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a dynamic callee (submodule, method or function) through its own host program."""
        fn, owner = resolve_callable(f)
        prog = self.session.program_for(fn, owner)
        return prog.run(args, kwargs)


def resolve_callable(f: Any) -> tuple[Any, Any]:
    """(function, bound owner) for a module, bound method or function."""
    if isinstance(f, torch.nn.Module):
        inst = f.__dict__.get("forward")
        if inst is not None:
            return resolve_callable(inst)
        return type(f).forward, f
    if hasattr(f, "__func__") and hasattr(f, "__self__"):
        return f.__func__, f.__self__
    return f, None


@contextlib.contextmanager
def record() -> Iterator[list[tuple[Any, ...]]]:
    """Collect the path a call takes: ('region', program, name) and ('cond', bool) events."""
    events: list[tuple[Any, ...]] = []
    token = RECORD.set(events)
    try:
        yield events
    finally:
        RECORD.reset(token)
