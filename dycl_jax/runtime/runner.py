"""Region runners: what ``_region_N(...)`` names in a host program.

Per call a :class:`RegionRunner` computes the input signature of the live-in values, looks up (or
captures, lowers and jits) the compiled graph for that signature, runs it, and rebuilds the
live-out tuple. Python outputs that depend only on the signature (shapes, modules, counters
computed from static values) come back from the cache without touching the device.

Scalars read back from tensors on the host (``k = t.item()``) are passed to regions as 0-d array
inputs first, so a new value does not recompile; if the region needs the value itself (a Python
index, a shape, a static branch), tracing fails and the runner falls back to specialising on it.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import random
import time
import types
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import torch
from jax import lax

from dycl_jax.analysis import facts
from dycl_jax.capture import guards, signature
from dycl_jax.capture.guards import Guard
from dycl_jax.capture.trace import (
    Captured,
    reads_tensors,
    trace,
    traced_values_left,
    watching_shadows,
)
from dycl_jax.errors import (
    CaptureError,
    DataDependentError,
    DyclError,
    LoweringError,
    MissingLoweringError,
    OpaqueOutputError,
    SourceLocation,
    StateWriteError,
    UnsupportedConstructError,
    UserCodeError,
    internal_stage,
)
from dycl_jax.ir.code import to_ast as to_ast_code
from dycl_jax.ir.program import Region
from dycl_jax.log import logger
from dycl_jax.lower import check_supported, to_jax
from dycl_jax.portable import plan
from dycl_jax.runtime import io, per_sample, staging
from dycl_jax.runtime.context import OBSERVER, PARAMS, RECORD
from dycl_jax.runtime.library import UNDEFINED

_MANY_COMPILES = 8  # warn (once) when one region has been compiled this many times

if TYPE_CHECKING:
    from dycl_jax.runtime.session import Session


@dataclasses.dataclass
class Stats:
    region_calls: int = 0
    host_reads: int = 0
    compiles: int = 0
    compile_seconds: float = 0.0
    capture_seconds: float = 0.0
    per_sample_groups: int = 0  # groups of rows ConvertedModel.per_sample ran to the end
    per_sample_sharded_calls: int = 0  # vmapped region calls with rows sharded over a mesh
    eager_region_calls: int = 0  # regions run in PyTorch on the host (see _Entry.eager)


# Regions whose parameters total at most this many bytes close over them as constants of their
# executable (see _Entry.frozen): each argument of a jitted call costs dispatch time (about
# 0.15-0.5 us here), and a residual stage passes dozens. Larger ones stay arguments: constants
# are copied into the executable (memory, compile time) while their compute hides the dispatch.
FREEZE_MAX_BYTES = 4 << 20
# ... and whose work (``staging.graph_work``: FLOPs, or an eighth of the elements read and
# written) is at most this: above it the arguments' dispatch is a few percent of the call, while
# a frozen executable is compiled per module instance; with parameters as arguments isomorphic
# regions (the 27 residual blocks of an SDN-ResNet56) share one. Measured on the paper-size
# SDN-ResNet56: first call's compiles 5.4 s frozen, 2.8 s shared (20 regions, 7 executables).
FREEZE_MAX_WORK = 1_000_000.0


@dataclasses.dataclass
class _Entry:
    jitted: Callable[..., tuple[Any, ...]] | None  # parameters first, then the leaves
    captured: Captured
    params: tuple[Any, ...]
    # Module attributes the capture read as constants; the entry is valid while they hold.
    guards: guards.GuardSet
    refs: list[Any] = dataclasses.field(default_factory=list)  # ids in the key stay unique
    # The same graph with ``params`` closed over (constants of the executable): what plain calls
    # run. None when the session passes parameters as arguments (weights changed since
    # convert, or too large); ``apply`` and ``per_sample`` always use ``jitted``.
    frozen: Callable[..., tuple[Any, ...]] | None = None
    # Set where the capture failed because the code reads a tensor's value where the program
    # could not be split (an element of a nonzero() result as an index, numpy over a list of
    # tensors, a library's validation): PyTorch runs the region's statements on the host for
    # this signature, as eager does (see RegionRunner._eager_entry). ``captured`` is None then.
    # Also where an op has no lowering or PyTorch's tracer rejects the code. ``why``: which.
    eager: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None
    why: str = ""

    def valid(self) -> bool:
        return self.guards.holds()

    def run(self, leaves: list[Any], values: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.eager is not None:
            return self.eager(values)
        if self.jitted is None:
            return self.captured.plan.build((), values)
        override = PARAMS.get()
        if override is not None:
            outs = self.jitted(*(override[n] for n in self.captured.param_names), *leaves)
        elif self.frozen is not None:
            outs = self.frozen(*leaves)
        else:
            outs = self.jitted(*self.params, *leaves)
        return self.captured.plan.build(outs, values)


@contextlib.contextmanager
def held_as_torch(values: tuple[Any, ...]) -> Iterator[None]:
    """Arrays the host stored inside plain objects and the containers they hold (a beam
    hypothesis' state, a tree node's ``state``, a cache object's lists), reachable from a
    region's live-ins, as torch tensors while PyTorch runs the region; afterwards whatever those
    objects and containers hold (written, appended to, replaced) is converted back, in place. A
    tensor the region neither replaced nor wrote gives back the very array it was made from
    (the caller's own numpy array stays that object)."""
    touched: list[Any] = []
    seen: set[int] = set()
    # tensor id -> (tensor, its version, the array it was made from)
    made: dict[int, tuple[torch.Tensor, int, Any]] = {}

    converted: dict[int, Any] = {}  # array id -> its tensor (one array met twice: one tensor)

    def as_torch(x: Any) -> Any:
        if not _array_like(x):
            return x
        if id(x) in converted:
            return converted[id(x)]
        t = converted[id(x)] = io.to_torch_owned(x)
        if isinstance(t, torch.Tensor):
            made[id(t)] = (t, t._version, x)
        return t

    def back(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            was = made.get(id(x))
            if was is not None and was[0] is x and x._version == was[1]:
                return was[2]
        elif id(x) in seen:
            return x  # a container or object converted in place itself (the same object)
        return io.from_torch(x)

    def visit(v: Any, depth: int) -> None:
        # (depth counts the objects passed through: containers of containers are followed to
        # the end, as the arrays in them must be tensors)
        if depth > 4 or id(v) in seen:
            return
        if type(v) is list:
            seen.add(id(v))
            touched.append(v)
            v[:] = [as_torch(x) for x in v]
            for x in v:
                visit(x, depth)
        elif type(v) is dict:
            seen.add(id(v))
            touched.append(v)
            for k, x in list(v.items()):
                v[k] = as_torch(x)
                visit(v[k], depth)
        elif type(v) is tuple:
            for x in v:
                visit(x, depth)
        elif isinstance(v, types.FunctionType):
            # `solve(lambda z: self.f(z, x), z0)` made on the host: the cells it closes over
            seen.add(id(v))
            for cell in v.__closure__ or ():
                try:
                    x = cell.cell_contents
                except ValueError:  # (a cell not bound yet)
                    continue
                if _array_like(x):
                    touched.append(cell)
                    cell.cell_contents = x = as_torch(x)
                visit(x, depth + 1)
        elif isinstance(v, types.MethodType):
            visit(v.__self__, depth)
        elif isinstance(v, functools.partial):
            seen.add(id(v))
            args = tuple(as_torch(x) for x in v.args)
            keywords = {k: as_torch(x) for k, x in v.keywords.items()}
            if any(a is not b for a, b in zip(args, v.args)) or any(
                keywords[k] is not x for k, x in v.keywords.items()
            ):
                touched.append(v)
                v.__setstate__((v.func, args, keywords, v.__dict__ or None))  # type: ignore[attr-defined]
            for x in (v.func, *args, *keywords.values()):
                visit(x, depth + 1)
        elif guards.plain_object(v) and not isinstance(v, torch.Tensor):
            seen.add(id(v))
            touched.append(v)
            for k, x in guards.fields(v).items():
                if _array_like(x):
                    x = as_torch(x)
                    guards.set_field(v, k, x)
                visit(x, depth + 1)
            # a dict or list subclass keeps entries too (transformers' ModelOutput, an
            # OrderedDict whose entries are its fields; a LogitsProcessorList)
            for k, x in _held_entries(v):
                if _array_like(x):
                    (dict if isinstance(v, dict) else list).__setitem__(v, k, as_torch(x))
                visit(x, depth + 1)

    for v in values:
        visit(v, 0)
    try:
        yield
    finally:
        for v in touched:
            if isinstance(v, types.CellType):
                v.cell_contents = back(v.cell_contents)
            elif isinstance(v, functools.partial):
                v.__setstate__(  # type: ignore[attr-defined]
                    (
                        v.func,
                        tuple(back(x) for x in v.args),
                        {k: back(x) for k, x in v.keywords.items()},
                        v.__dict__ or None,
                    )
                )
            elif type(v) is list:
                plan.refill(v, [back(x) for x in v])
            elif type(v) is dict:
                plan.refill(v, {k: back(x) for k, x in v.items()})
            else:
                for k, x in guards.fields(v).items():
                    guards.set_field(v, k, back(x))
                for k, x in _held_entries(v):
                    (dict if isinstance(v, dict) else list).__setitem__(v, k, back(x))


# Signatures differing only in the values of Python numbers that a region compiles before it
# passes those numbers as 0-d arrays (see RegionRunner._vary_numbers).
_NUMBER_VALUES = 3

_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def _arithmetic_only(live_in: tuple[str, ...], body: tuple[Any, ...]) -> frozenset[int]:
    """The positions of the live-ins that a region's code (``body``: its Code items) reads
    only as operands of ``+ - * /`` (a 0-d array computes the same there). A number used as a
    key, an index, a count, in a comparison or given to a function is a Python value the code
    may rely on (``{0: 1.5}.get(k, 2.0)`` with ``k`` an array silently takes the default)."""
    ok = set(live_in)
    seen: set[str] = set()
    for c in body:
        for tree in to_ast_code(c):
            parents: dict[int, ast.AST] = {}
            for node in ast.walk(tree):
                for child in ast.iter_child_nodes(node):
                    parents[id(child)] = node
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and node.id in ok:
                    seen.add(node.id)
                    parent = parents.get(id(node))
                    if not (
                        isinstance(node.ctx, ast.Load)
                        and (
                            (isinstance(parent, ast.BinOp) and isinstance(parent.op, _ARITHMETIC))
                            or (isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.USub))
                        )
                    ):
                        ok.discard(node.id)
    return frozenset(i for i, n in enumerate(live_in) if n in ok and n in seen)


def _held_entries(v: Any) -> list[tuple[Any, Any]]:
    """(key, value) of what a dict or list subclass holds besides its attributes; []."""
    if isinstance(v, dict):
        return list(v.items())
    if isinstance(v, list):
        return list(enumerate(v))
    return []


def _given_as_torch(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A region's live-ins for a run in PyTorch: arrays as tensors that own their storage (one
    array met twice is one tensor), inside tuples too; lists, dicts and other objects are the
    caller's own (``held_as_torch`` converts what they hold, in place, for the run)."""
    memo: dict[int, torch.Tensor] = {}

    def one(v: Any) -> Any:
        if isinstance(v, jax.Array | np.ndarray):
            if id(v) not in memo:
                memo[id(v)] = io.to_torch_owned(v)
            return memo[id(v)]
        if type(v) is tuple:
            items = tuple(one(x) for x in v)
            return v if all(a is b for a, b in zip(items, v)) else items
        if isinstance(v, tuple) and _holds_arrays(v):  # named tuples, struct sequences
            return io.to_torch_owned(v)
        return v

    return tuple(one(v) for v in values)


def _given_objects(given: tuple[Any, ...]) -> set[int]:
    """The ids of the lists, dicts and plain objects among ``given``, and inside its tuples,
    lists and dicts (``ks = cache["k"]`` handed back is the list the dict holds)."""
    out: set[int] = set()
    todo = list(given)
    while todo and len(out) < 100_000:
        v = todo.pop()
        if type(v) is tuple:
            todo.extend(v)
        elif type(v) in (list, dict):
            if id(v) not in out:
                out.add(id(v))
                todo.extend(v.values() if type(v) is dict else v)
        elif guards.plain_object(v):
            out.add(id(v))
    return out


def _handed_back(o: Any, given: set[int]) -> Any:
    """A result of a region run in PyTorch as the host keeps it: a list, dict or object it was
    given is that object (its contents already converted back by ``held_as_torch``); tensors
    become numpy arrays inside new containers."""
    if id(o) in given:
        return o
    t = type(o)
    if t is list or t is tuple:
        return t(_handed_back(x, given) for x in o)
    if t is dict:
        return {k: _handed_back(x, given) for k, x in o.items()}
    return io.from_torch(o)


def _array_like(x: Any) -> bool:
    return isinstance(x, jax.Array | np.ndarray) or (type(x) is tuple and _holds_arrays(x))


@contextlib.contextmanager
def _state_as_torch(attrs: Iterable[tuple[Any, str]]) -> Iterator[None]:
    """Module state the host keeps as arrays (``self.inf = ...`` written by host code), as torch
    tensors while a region runs in PyTorch; afterwards whatever the attributes hold (changed in
    place or replaced by the region) is converted back."""
    swapped = []
    refilled = []
    for o, a in attrs:
        v = o.__dict__.get(a, UNDEFINED)
        if _array_like(v):
            o.__dict__[a] = io.to_torch_owned(v)  # (an LSTM's (h, c) too)
            swapped.append((o, a))
        elif type(v) in (list, dict):  # the same object, its entries converted in place
            refilled.append(plan.refill(v, io.to_torch_owned(v)))
    try:
        yield
    finally:
        for o, a in swapped:
            if a in o.__dict__:
                o.__dict__[a] = io.from_torch(o.__dict__[a])
        for c in refilled:
            plan.refill(c, io.from_torch(c))


def _holds_arrays(v: Any) -> bool:
    return any(
        isinstance(x, jax.Array | np.ndarray) or (type(x) in (tuple, list) and _holds_arrays(x))
        for x in v
    )


def _modules_in(values: tuple[Any, ...]) -> list[torch.nn.Module]:
    """The modules among ``values`` and inside the lists, tuples and dicts among them."""
    out = []
    for v in values:
        if isinstance(v, torch.nn.Module):
            out.append(v)
        elif type(v) in (list, tuple, dict):
            out.extend(
                m for m in (v.values() if type(v) is dict else v) if isinstance(m, torch.nn.Module)
            )
    return out


def _frozen(captured: Captured, params: tuple[Any, ...]) -> Callable[..., tuple[Any, ...]]:
    """``captured``'s graph jitted with ``params`` closed over."""
    fn = to_jax(captured.gm)

    def run(*leaves: Any) -> tuple[Any, ...]:
        # The barrier keeps XLA from folding the weights into other constants (batch-norm
        # scales into convolution weights): folded, results would differ in the last bits
        # from the same graph run with the weights as arguments (apply, saved artifacts).
        return fn(*lax.optimization_barrier(params), *leaves)

    return jax.jit(run)


class RegionRunner:
    """Callable standing for one region in a host program."""

    def __init__(
        self,
        region: Region,
        fn: Callable[..., tuple[Any, ...]],
        session: Session,
        program: str,
        local_defs: tuple[tuple[str, int, int], ...] = (),
    ) -> None:
        self.name = region.name
        # (name, first line, last line) of functions defined inside the program's function:
        # a value read inside one of them is explained as such
        self.local_defs = local_defs
        self.fn = fn
        self.live_in = region.live_in
        self.live_out = region.live_out
        # Live-in positions holding host scalars: passed as 0-d arrays while the region allows.
        self.dynamic = frozenset(
            i for i, n in enumerate(region.live_in) if n in region.host_scalars
        )
        self.span = region.span
        self.read_after = region.read_after
        self.opaque_calls = region.opaque_calls
        self.location = SourceLocation(region.filename, region.first_line)
        # where PyTorch's own exception may be raised (see _as_pytorch): the first statement,
        # and the first of each region merged into this one
        self.first_statement_lines = tuple(
            line
            for i in (0, *region.joins)
            if i < len(region.body)
            for line in region.body[i].lines
        )
        self.session = session
        self.program = program
        # The session's state attributes (see Session.state_attrs) this region's captures read:
        # inputs of its signature (passed after the live-ins). Learned from what tracing reads,
        # so a region that never reads state neither keys on it nor recompiles when it changes.
        # Those it names itself start there: the first capture then reads a copy, never the
        # object itself (a defaultdict read would add a key to it).
        text = "\n".join(c.text for c in region.body)
        self.state: list[tuple[Any, str]] = [
            (o, a) for o, a in session.state_attrs if f".{a}" in text and not facts.registered(o, a)
        ]
        self.cache: dict[tuple[Any, ...], _Entry] = {}
        # Every entry with guards, per key (the cache holds the one last used).
        self._variants: dict[tuple[Any, ...], list[_Entry]] = {}
        self.compiles = 0
        self._numbers_made_dynamic = False  # see _vary_numbers
        self._body = region.body
        self._arithmetic: frozenset[int] | None = None  # see _vary_numbers (made on first use)
        self._numbers_added: frozenset[int] = frozenset()  # its positions, until one capture

    def __call__(self, *values: Any) -> tuple[Any, ...]:
        rows = per_sample.CURRENT.get()
        if rows is not None:  # inside ConvertedModel.per_sample: vmapped over the group
            return rows.region(self, values)
        values = self._with_state_values(values)
        key, leaves = signature.split(values, self.dynamic)
        entry = self.cache.get(key)
        if entry is None and len(self.cache) >= _NUMBER_VALUES and self._vary_numbers(key, values):
            key, leaves = signature.split(values, self.dynamic)
            entry = self.cache.get(key)
        if entry is None or (entry.guards and not entry.valid()):
            entry, key, leaves, values = self._compile(key, values)
        return self._run(entry, leaves, RECORD.get(), values)

    def _run(
        self, entry: _Entry, leaves: list[Any], rec: list[Any] | None, values: tuple[Any, ...]
    ) -> tuple[Any, ...]:
        """Run a compiled entry: counted, recorded, observed."""
        self.session.stats.region_calls += 1
        if rec is not None:
            rec.append(("region", self.program, self.name))
        observer = OBSERVER.get()
        if observer is not None:
            return observer(self.program, self.name, lambda: entry.run(leaves, values))
        return entry.run(leaves, values)

    def _compile(
        self, key: tuple[Any, ...], values: tuple[Any, ...]
    ) -> tuple[_Entry, tuple[Any, ...], list[Any], tuple[Any, ...]]:
        """The entry for ``values`` (live-ins, then this region's state), with its key and
        leaves, and the values it was keyed on (grown by any state the capture read)."""
        # One capture at a time per model: tracing re-parametrises the shared torch module.
        with self.session.capture_lock:
            # Another variant of this signature whose guards hold (e.g. a threshold set back).
            for entry in (self.cache.get(key), *self._variants.get(key, ())):
                if entry is not None and entry.valid():
                    self.cache[key] = entry
                    return entry, key, signature.split(values, self.dynamic)[1], values
            stale = self.cache.get(key)
            if stale is not None:
                failed = [g for g in stale.guards if not g.holds()]
                logger.info(
                    "%s.%s: recapturing, changed since: %s",
                    self.program,
                    self.name,
                    ", ".join(map(str, failed)),
                )
                if any(guards.brings_modules(g) for g in failed):
                    self.session.reread_structure()  # a swapped submodule's own parameters
            s = self.session
            n = len(values) - len(self.state)
            self._check_opaque_inputs(values[:n])
            fn = self._traced(self._with_state(n))
            seen: list[tuple[Any, str]] = []
            try:
                captured, read = self._capture(fn, values, seen)
                if not self.dynamic:  # (checked in _capture otherwise)
                    check_supported(captured.gm)  # a value read hidden in an op's argument
            except Exception as e:
                # state read for the first time: passed as an input from now on, traced again
                if self._learn_state(seen):
                    return self._compile_with_state(values[:n])
                if isinstance(e, DataDependentError):
                    # (inside a function defined in forward, which dycl_jax does not split: said
                    # so, and PyTorch runs the region all the same)
                    err = self._in_local_def(e)
                    if isinstance(self, StagedRunner):
                        raise err from None
                    return self._eager_entry(key, values, self._without_state(n), err)
                if isinstance(e, _PYTORCH_RUNS) and not isinstance(self, StagedRunner):
                    self._no_traced_values_left(e)
                    return self._eager_entry(key, values, self._without_state(n), e)
                if isinstance(e, UserCodeError):
                    if isinstance(self, StagedRunner):
                        raise  # its fallback runs the statements (probing them would run twice)
                    self._no_traced_values_left(e)
                    failure = self._as_pytorch(fn, values, e)
                    if failure is not None:
                        raise failure from None
                    # PyTorch runs it (`itertools.islice(seq, t)`, an op its tracer rejects):
                    # so does this region, for this signature
                    return self._eager_entry(key, values, self._without_state(n), e)
                if isinstance(e, OpaqueOutputError):
                    i = e.index
                    name = self.live_out[i] if i is not None and i < len(self.live_out) else None
                    raise OpaqueOutputError(e.type_name, e.where, self.location, name) from None
                if isinstance(e, DyclError):
                    raise e.located(self.location) from e.__cause__
                raise
            if self._learn_state(seen):
                return self._compile_with_state(values[:n])
            self._check_lost_writes(captured)
            state = {(id(o), a) for o, a in self.state}  # inputs already, keyed by value
            entry_guards = (
                tuple(g for g in read if (id(g.obj), g.name) not in state)
                + tuple(guards.global_guards(self.fn, read, values, s.program_codes()))
                + tuple(guards.mode_guards(captured.modes))
                + tuple(guards.class_guards(s.root, self.fn))
                + tuple(guards.structure_guard(s.root))
                + tuple(guards.object_guards(values, self.fn))
            )
            s.stats.capture_seconds += captured.seconds
            logger.debug(
                "%s.%s (%s) ATen graph:\n%s", self.program, self.name, self.span, captured.gm.code
            )
            has_outputs = any(n.op == "output" and n.args[0] for n in captured.gm.graph.nodes)
            params = tuple(s.params[n] for n in captured.param_names)
            refs: list[Any] = []  # objects keyed by identity: kept alive with the entry
            key, leaves = signature.split(values, self.dynamic, refs)
            try:
                entry = self._lowered(captured, params, entry_guards, refs, leaves, has_outputs)
            except (DataDependentError, *_PYTORCH_RUNS) as e:  # e.g. a data-dependent shape
                if isinstance(self, StagedRunner):
                    raise
                if not isinstance(e, DataDependentError):
                    self._no_traced_values_left(e)
                return self._eager_entry(key, values, self._without_state(n), e)
            s.stats.compiles += 1
            logger.info(
                "compiled %s.%s (%s): signature %d, capture %.0f ms",
                self.program,
                self.name,
                self.span,
                len(self.cache) + 1,
                captured.seconds * 1e3,
            )
            self.cache[key] = entry
            if entry_guards:
                self._variants.setdefault(key, []).append(entry)
            self.compiles += 1
            if self.compiles == _MANY_COMPILES:
                logger.warning(
                    "%s.%s (%s) has been compiled %d times (new shapes, dtypes, static values or "
                    "changed module attributes each time); see DYCL_DEBUG=1 for what changed",
                    self.program,
                    self.name,
                    self.span,
                    self.compiles,
                )
            return entry, key, leaves, values

    def _lowered(
        self,
        captured: Captured,
        params: tuple[Any, ...],
        entry_guards: tuple[Guard, ...],
        refs: list[Any],
        leaves: list[Any],
        has_outputs: bool,
    ) -> _Entry:
        """The compiled entry of ``captured``, its executable built and run once (compiled)."""
        s = self.session
        with internal_stage("lower", self.location):
            jitted = self._executable(captured) if has_outputs else None
            entry = _Entry(jitted, captured, params, guards.GuardSet(entry_guards), refs)
            if jitted is not None:
                t0 = time.perf_counter()
                if (
                    s.freeze_params
                    and _nbytes(params) <= FREEZE_MAX_BYTES
                    and staging.graph_work(captured.gm) <= FREEZE_MAX_WORK
                ):
                    entry.frozen = _frozen(captured, params)
                    entry.frozen(*leaves)  # compile now: the first call's cost is counted
                else:
                    jitted(*params, *leaves)
                s.stats.compile_seconds += time.perf_counter() - t0
        return entry

    def _check_opaque_inputs(self, values: tuple[Any, ...]) -> None:
        """Refuse live-ins a capture cannot see into: an iterator (consumed once, while
        tracing, it would never advance again). (A function made on the host whose closure
        holds arrays is fine: its arrays are leaves of the signature.)"""
        for name, v in zip(self.live_in, values):
            if hasattr(type(v), "__next__") and not isinstance(v, jax.Array | np.ndarray):
                raise UnsupportedConstructError(
                    f"{name} is an iterator made on the host and consumed in a compiled region",
                    self.location,
                    hint=f"make a list of it first (`{name} = list(...)`)",
                )

    def _eager_entry(
        self,
        key: tuple[Any, ...],
        values: tuple[Any, ...],
        fn: Callable[..., tuple[Any, ...]],
        e: DyclError,
    ) -> tuple[_Entry, tuple[Any, ...], list[Any], tuple[Any, ...]]:
        """An entry that runs the region's statements in PyTorch on the host: where its code
        reads a tensor's value that the analysis did not split out (``x[j[0]]`` with ``j`` a
        row of ``nonzero()``, ``np.argmax`` over a list of tensors), fails only while traced,
        or uses an op with no JAX lowering (``torch.fft``, a sampler the analysis did not see):
        eager PyTorch's own semantics, read every call (no guards). Slower than a compiled
        region, and neither differentiable through ``apply`` nor saved in a torch-free
        artifact."""
        location = e.location or self.location
        # (a data-dependent read is the model's nature; a missing lowering or a tracer failure
        # is ours, and slow: said louder)
        log = logger.info if isinstance(e, DataDependentError) else logger.warning
        log(
            "%s.%s (%s): runs in PyTorch on the host for this signature: %s at %s",
            self.program,
            self.name,
            self.span,
            e.message,
            location,
        )
        where = f"{self.program}.{self.name} ({self.span})"

        def run(vals: tuple[Any, ...]) -> tuple[Any, ...]:
            if PARAMS.get() is not None:
                raise UnsupportedConstructError(
                    f"apply: region {where} runs in PyTorch on the host ({e.message}), so it "
                    "cannot take the parameters given to apply",
                    location,
                    hint="make the value read visible in forward (e.g. `k = int(t)`), so the "
                    "region compiles"
                    if isinstance(e, DataDependentError)
                    else "keep the unsupported operation out of the path that is differentiated",
                )
            self.session.stats.eager_region_calls += 1
            # the caller's lists, dicts and objects themselves (what the code appends to or
            # sets on them is the caller's change, as in eager; a list met twice is one list),
            # their arrays as tensors while it runs (held_as_torch)
            given = _given_as_torch(vals)
            with (
                torch.no_grad(),
                _state_as_torch(self.session.state_attrs),
                held_as_torch(given),
            ):
                outs = fn(*given)  # values only, as the compiled regions give
            # a buffer it registered (a longer rotary cache) is what the next region reads
            self.session.refresh_if_stale()
            return tuple(_handed_back(o, _given_objects(given)) for o in outs)

        entry = _Entry(None, None, (), guards.GuardSet(()), eager=run, why=e.message)  # type: ignore[arg-type]
        self.cache[key] = entry
        return entry, key, signature.split(values, self.dynamic)[1], values

    def _no_traced_values_left(self, e: DyclError) -> None:
        """Before a region whose capture failed runs in PyTorch: raise ``e`` if the failed
        capture left traced tensors in the model's state (library code that appended to a cache
        object on the module), which the region run in PyTorch would then read."""
        root = self.session.root
        where = traced_values_left(root.modules()) if root is not None else None
        if where is not None:
            logger.info(
                "%s.%s: the failed capture left a traced tensor in %s",
                self.program,
                self.name,
                where,
            )
            raise e.located(self.location) from e.__cause__

    def _as_pytorch(
        self, fn: Callable[..., tuple[Any, ...]], values: tuple[Any, ...], e: UserCodeError
    ) -> BaseException | None:
        """What to raise when the region's code raised while traced: PyTorch's own exception
        when the region, run eagerly on the real values, raises from its first statement
        (``try: y = x.view(3, -1) except RuntimeError:`` then takes the user's handler, as in
        eager); ``e`` when it raises later; None when PyTorch runs it (the random generators
        are left as they were: the region then runs once more, for real)."""
        cause = e.__cause__
        try:
            with torch.no_grad(), _random_state_kept():
                fn(*io.to_torch(values))
        except Exception as eager:
            # eager's own exception, even of another type than the trace's (argmax of an empty
            # tensor: IndexError on CPU, RuntimeError from its meta kernel): PyTorch raises it
            if cause is None:
                return e.located(self.location)
            first = set(self.first_statement_lines)
            line = _raising_line(eager, self.location.filename)
            if line is None or line in first:
                return eager
            return CaptureError(
                f"{e.message} (PyTorch raises {type(eager).__name__} here too; raised as a "
                "CaptureError because earlier statements of the same compiled region ran before "
                "it: an except: or finally: around it would see their results unassigned)",
                SourceLocation(self.location.filename, line),
                hint="check the input shapes and dtypes; inside a try: block, make the "
                "operation that can fail its first statement",
            )
        return None

    def _learn_state(self, read: list[tuple[Any, str]]) -> bool:
        """Add the session state attributes in ``read`` that this region does not pass yet;
        True when it grew (its compiled signatures are then keyed wrongly: forgotten)."""
        state = self.session.state_attrs
        # A module attribute holding the very container another module keeps as state (a list
        # shared by parent and child, written by one, read by the other) is that state too.
        held = {id(v) for o, a in state if facts.held_state(v := o.__dict__.get(a))}
        for r, n in read:
            v = r.__dict__.get(n)
            if id(v) in held and facts.held_state(v) and (r, n) not in state:
                state.append((r, n))
        known = {(id(o), a) for o, a in self.state}
        new = [
            (o, a)
            for o, a in state
            if (id(o), a) not in known
            and not facts.registered(o, a)
            and any(r is o and n == a for r, n in read)
        ]
        if not new:
            return False
        self.state.extend(new)
        self.clear()
        return True

    def _compile_with_state(
        self, live_in: tuple[Any, ...]
    ) -> tuple[_Entry, tuple[Any, ...], list[Any], tuple[Any, ...]]:
        values = self._with_state_values(live_in)
        return self._compile(signature.split(values, self.dynamic)[0], values)

    def _with_state_values(self, live_in: tuple[Any, ...]) -> tuple[Any, ...]:
        """The live-ins followed by the current values of this region's state attributes."""
        if not self.state:
            return live_in
        return (*live_in, *(o.__dict__.get(a, UNDEFINED) for o, a in self.state))

    def _traced(self, fn: Callable[..., tuple[Any, ...]]) -> Callable[..., tuple[Any, ...]]:
        """The function capture traces (a staged region adds its path codes)."""
        return fn

    def _executable(self, captured: Captured) -> Any:
        """The jitted function of ``captured``, shared with any earlier capture of the same
        graph (isomorphic regions over different module instances, e.g. the 6th and 7th
        identical residual block: their parameters are arguments, so one XLA executable per
        input signature serves all of them)."""
        key = structure_key(captured.gm)
        cache = self.session.executables
        if key is not None and key in cache:
            return cache[key]
        jitted = jax.jit(to_jax(captured.gm))
        if key is not None:
            cache[key] = jitted
        return jitted

    def _check_lost_writes(self, captured: Captured) -> None:
        """Refuse a capture that writes in place a live-in read after the region that the
        region does not hand back: a write the analysis did not see (``nn.init.zeros_(h)``,
        through a view a helper returned), which the host's ``h`` would never show."""
        for i, where in captured.written:
            name = self.live_in[i] if i < len(self.live_in) else None
            if name is not None and name in self.read_after:
                raise UnsupportedConstructError(
                    f"in-place write to {name!r} (or to a tensor it holds) in a form dycl_jax "
                    "does not follow (a function writing its argument, a view made by a "
                    f"helper or an alias it cannot see); the region would drop it, and {name!r} "
                    "is read afterwards (in this function, or by its caller)",
                    where or self.location,
                    hint=f"write with a method on {name!r} itself (`{name}.mul_(2)`, "
                    f"`{name}[i] = v`), or compute the new value and rebind it",
                )

    def _in_local_def(self, e: DataDependentError) -> DyclError:
        """``e`` restated when it happened inside a function defined in forward: dycl_jax splits
        only the functions it analyses (methods, module forwards, module-level functions)."""
        loc = e.location
        if loc is None or loc.filename != self.location.filename or isinstance(e, StateWriteError):
            return e
        for name, first, last in self.local_defs:
            if first <= loc.lineno <= last:
                return UnsupportedConstructError(
                    f"{name}, a function defined inside {self.program.rsplit('.', 1)[-1]}, "
                    "reads a tensor's value (a condition or conversion): dycl_jax splits "
                    "methods and module-level functions at such reads, not functions "
                    "defined inside another",
                    loc,
                    hint=f"make {name} a method of the module (or a module-level function)",
                )
        return e

    def _capture(
        self,
        fn: Callable[..., tuple[Any, ...]],
        values: tuple[Any, ...],
        seen: list[tuple[Any, str]],
    ) -> tuple[Captured, list[Guard]]:
        """Trace ``fn`` on ``values``: the graph and the module attributes it read. ``seen``
        collects every attribute read, by failed traces too."""
        state = self._state_from(values)
        try:
            captured = self._capture_with(fn, values, seen, state)
            self._numbers_added = frozenset()  # (they hold for this region)
            return captured
        except (DataDependentError, UserCodeError):
            if not self._numbers_added:
                raise
            # Numbers made 0-d arrays by _vary_numbers are needed as Python values here:
            # specialise on them again (the signatures compiled before them stay valid)
            self.dynamic = self.dynamic - self._numbers_added
            self._numbers_added = frozenset()
            state = self._state_from(values)
            return self._capture_with(fn, values, seen, state)

    def _capture_with(
        self,
        fn: Callable[..., tuple[Any, ...]],
        values: tuple[Any, ...],
        seen: list[tuple[Any, str]],
        state: int | None,
    ) -> tuple[Captured, list[Guard]]:
        s = self.session
        try:
            with guards.record(s.root, seen) as read:
                captured = self._trace_with_params(fn, values, self.dynamic, state)
            if self.dynamic:
                # A host scalar used where an op needs a Python number (torch.arange(k),
                # x.narrow(1, 0, k)) is read back inside the graph: specialise on it instead.
                check_supported(captured.gm)
                # A Python number in PyTorch promotes like a "wrapped number" (a float32 0-d
                # tensor times a Python float stays float32); the 0-d float64 array standing for
                # it does not. Trace once with the Python values too: if the array version
                # computes in a dtype the Python-value version never uses, specialise instead.
                with guards.record(s.root, seen):
                    static = self._trace_with_params(fn, values, frozenset(), None)
                if _node_dtypes(captured, scalar_math=False) - _node_dtypes(static):
                    raise DataDependentError("host scalar changes type promotion")
                if _narrow_scalar_math(captured):
                    raise DataDependentError("host scalar arithmetic below Python's precision")
        except (DataDependentError, UserCodeError):
            if not self.dynamic or self._numbers_added:
                raise
            # A host scalar is needed as a Python value here (a 0-d array where an op takes a
            # number, e.g. arange(0, n, dtype=...)): specialise on it from now on.
            self.dynamic = frozenset()
            self.clear()
            state = self._state_from(values)
            with guards.record(s.root, seen) as read:
                captured = self._trace_with_params(fn, values, self.dynamic, state)
        return captured, read

    def _trace_with_params(
        self,
        fn: Callable[..., tuple[Any, ...]],
        values: tuple[Any, ...],
        dynamic: frozenset[int],
        state: int | None,
    ) -> Captured:
        """``trace`` with the parameters of the modules among ``values`` as inputs; again with
        every parameter of the model if the graph read another one (through a global, a helper
        object), which it would otherwise hold as a constant."""
        s = self.session
        names, tensors = s.params_under(_modules_in(values))
        if len(names) < len(s.param_names):
            with watching_shadows() as touched:
                try:
                    captured: Captured | None = trace(
                        fn,
                        s.root,
                        names,
                        tensors,
                        values,
                        dynamic,
                        state,
                        s.shadows(names),
                        containers_kept=self.opaque_calls,
                    )
                except Exception:  # traced again with every parameter, below
                    captured = None
            if (
                captured is not None
                and not touched
                and not reads_tensors(captured.gm, s.torch_params)
            ):
                return captured
        return trace(
            fn,
            s.root,
            s.param_names,
            s.torch_params,
            values,
            dynamic,
            state,
            containers_kept=self.opaque_calls,
        )

    def _state_from(self, values: tuple[Any, ...]) -> int | None:
        """The index of the first leaf of the state values (after the live-ins), which the
        region must not write in place; None without state."""
        if not self.state:
            return None
        return signature.leaf_starts(values, self.dynamic)[len(values) - len(self.state)]

    def reload_params(self, params: dict[str, Any]) -> None:
        """Point every compiled entry at new parameter arrays (same names, shapes and dtypes)."""
        entries = {id(e): e for e in self.cache.values()}
        entries.update({id(e): e for es in self._variants.values() for e in es})
        for e in entries.values():
            if e.captured is None:
                continue  # runs in PyTorch: it reads the module's own tensors
            e.params = tuple(params[n] for n in e.captured.param_names)
            e.frozen = None  # its constants are the old weights

    def _vary_numbers(self, key: tuple[Any, ...], values: tuple[Any, ...]) -> bool:
        """Once, when ``key`` is new and ``_NUMBER_VALUES`` compiled signatures differ from it
        only in the values of Python numbers among the live-ins (an ODE solver's step size
        ``h``, a decoding loop's position ``t``): pass those numbers as 0-d arrays from now on,
        as host scalars are (``Region.host_scalars``), so a new value does not recompile. A
        capture that needs one as a Python value specialises again (see ``_capture``)."""
        if self._numbers_made_dynamic:
            return False
        # live-ins used only as operands of arithmetic (`x * alpha`): the only numbers it varies
        if self._arithmetic is None:
            self._arithmetic = _arithmetic_only(self.live_in, self._body)
        arithmetic = self._arithmetic
        numbers = {
            i
            for i, v in enumerate(values[: len(self.live_in)])
            if i not in self.dynamic
            and i in arithmetic
            and type(v) in (int, float)
            and signature.scalar_input(v)
        }
        if not numbers:
            return False
        varying: set[int] = set()
        similar = 0
        for k in self.cache:
            if len(k) != len(key):
                continue
            diff = {j for j, (a, b) in enumerate(zip(k, key)) if a != b}
            if diff and diff <= numbers:
                similar += 1
                varying |= diff
        if similar < _NUMBER_VALUES:
            return False
        self._numbers_made_dynamic = True
        self._numbers_added = frozenset(varying)
        self.dynamic = self.dynamic | self._numbers_added
        logger.info(
            "%s.%s (%s): %s passed as 0-d arrays from now on (a new value each call)",
            self.program,
            self.name,
            self.span,
            ", ".join(self.live_in[i] for i in sorted(varying)),
        )
        return True

    def clear(self) -> None:
        """Forget every compiled signature (the region's inputs changed meaning)."""
        self.cache.clear()
        self._variants.clear()

    def _without_state(self, n: int) -> Callable[..., tuple[Any, ...]]:
        """The region function on its live-ins alone (the state values passed after them
        dropped): run in PyTorch, it reads and writes the module's state itself."""
        if not self.state:
            return self.fn
        return lambda *values: self.fn(*values[:n])

    def _with_state(self, n: int) -> Callable[..., tuple[Any, ...]]:
        """The region function, with module state attributes set to the traced values (put
        back afterwards)."""
        state = self.state
        if not state:
            return self.fn

        def fn(*values: Any) -> tuple[Any, ...]:
            saved = [o.__dict__.get(a, UNDEFINED) for o, a in state]
            given = values[n:]
            entries = [_entries(v) for v in given]
            try:
                for (o, a), v in zip(state, given):
                    if v is not UNDEFINED:
                        o.__dict__[a] = v
                outs = self.fn(*values[:n])
                for (o, a), v, before in zip(state, given, entries):
                    if before is not None and _entries(v) != before:
                        # self.state["hidden"] = (h,): a compiled region would change only the
                        # copy of the container it was given
                        raise StateWriteError(
                            f"changes {type(o).__name__}.{a}, a list or dict the module keeps, "
                            "while traced (a compiled region would not repeat it)",
                            self.location,
                        )
                return outs
            finally:
                for (o, a), v in zip(state, saved):
                    if v is UNDEFINED:
                        o.__dict__.pop(a, None)
                    else:
                        o.__dict__[a] = v

        return fn


def _entries(v: Any) -> tuple[Any, ...] | None:
    """What a list or dict holds, by identity (None for anything else)."""
    if type(v) is list:
        return tuple(id(x) for x in v)
    if type(v) is dict:
        return tuple((k, id(x)) for k, x in v.items())
    return None


def _nbytes(arrays: tuple[Any, ...]) -> int:
    return sum(int(getattr(a, "nbytes", 0)) for a in arrays)


def _raising_line(e: BaseException, filename: str) -> int | None:
    """The line of ``filename`` deepest in ``e``'s traceback (where the user's code raised)."""
    line = None
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _computed(captured: Captured) -> Iterator[tuple[Any, bool]]:
    """(value, scalar-only) for each op of the captured graph: scalar-only when it computes on
    the 0-d float64 / int64 inputs alone (a host scalar ``k``: ``0.5 * k``), or selects
    between such values."""
    scalar: set[Any] = set()
    for node in captured.gm.graph.nodes:
        val = node.meta.get("val")
        if node.op == "placeholder":
            if getattr(val, "shape", None) == () and val.dtype in (torch.float64, torch.int64):
                scalar.add(node)
        elif node.op == "call_function":
            ins = node.all_input_nodes
            if node.target is torch.ops.aten.where.self and getattr(val, "shape", None) == ():
                # a 0-d select of them (a staged if's merge of two numbers); torch.where(mask,
                # v, k) broadcast to a mask is a tensor op, typed by PyTorch's promotion
                ins = [a for a in node.args[1:] if isinstance(a, torch.fx.Node)]
            only = bool(ins) and all(i in scalar for i in ins)
            if only:
                scalar.add(node)
            yield val, only


def _node_dtypes(captured: Captured, scalar_math: bool = True) -> set[Any]:
    """The dtypes of every value the captured graph computes. ``scalar_math=False`` leaves out
    scalar-only arithmetic: it is Python's double / int arithmetic, whatever dtype a static
    trace gives it."""
    out: set[Any] = set()
    for val, only in _computed(captured):
        if only and not scalar_math:
            continue
        for v in val if isinstance(val, list | tuple) else (val,):
            dtype = getattr(v, "dtype", None)
            if dtype is not None:
                out.add(dtype)
    return out


_PYTHON_PRECISION = (torch.float64, torch.int64, torch.bool, torch.complex128)


def _narrow_scalar_math(captured: Captured) -> bool:
    """Whether arithmetic on the host-scalar inputs alone computes in a dtype narrower than
    Python's (``n / 3`` of an int64 input is float32 in PyTorch, a double in Python): the value
    must then be specialised, computed by Python at capture time."""
    return any(
        only and getattr(val, "dtype", torch.float64) not in _PYTHON_PRECISION
        for val, only in _computed(captured)
    )


def structure_key(gm: Any) -> tuple[Any, ...] | None:
    """A key equal for two captured graphs that compute the same function of their positional
    inputs: every node's op, target, arguments (other nodes by position) and result shapes and
    dtypes; placeholder names (which follow parameter names) left out. None when the graph
    holds constants (get_attr), whose values the key would have to include."""
    index: dict[Any, int] = {}
    out: list[Any] = []
    for i, node in enumerate(gm.graph.nodes):
        if node.op == "get_attr":
            return None
        index[node] = i
        meta = _meta_key(node.meta.get("val"))
        if node.op == "placeholder":
            out.append(("placeholder", meta))
            continue
        args = torch.fx.node.map_arg((node.args, node.kwargs), lambda a: ("node", index[a]))
        out.append((node.op, str(node.target), repr(args), meta))
    return tuple(out)


def _meta_key(val: Any) -> Any:
    if isinstance(val, torch.Tensor):
        return (tuple(d if type(d) is int else repr(d) for d in val.shape), str(val.dtype))
    if isinstance(val, list | tuple):
        return tuple(_meta_key(v) for v in val)
    return repr(val)


class StagedRunner(RegionRunner):
    """A staged region (``ir.stage``): its host statements in one graph, each ``if`` a select.

    Per signature it captures the staged graph; where that fails (``staging.StagingFailed``: the
    branches disagree, or the branch not taken costs more than a dispatch saves; or any other
    capture error) it runs ``fallback``, the original host statements, for that signature. If
    the first signature already falls back, the host program is pointed at the fallback for good
    (``rebind``), so a model whose branches are costly pays nothing for having been staged.
    Gradients (``ConvertedModel.apply``) always take the fallback: a select's untaken branch can
    turn a zero cotangent into NaN (``0 * inf``), which taking one branch never does.
    """

    def __init__(
        self,
        region: Region,
        fn: Callable[..., tuple[Any, ...]],
        session: Session,
        program: str,
        local_defs: tuple[tuple[str, int, int], ...] = (),
    ) -> None:
        super().__init__(region, fn, session, program, local_defs)
        self.fallback: Callable[..., tuple[Any, ...]] = _unbound
        self.rebind: Callable[[Callable[..., tuple[Any, ...]]], None] | None = None
        self.unstaged: dict[tuple[Any, ...], str] = {}  # signature -> why it runs the fallback
        self.staged = 0  # signatures compiled in-graph
        self._trace: list[staging.Trace] = []

    def __call__(self, *values: Any) -> tuple[Any, ...]:
        rows = per_sample.CURRENT.get()
        if rows is not None:
            return rows.region(self, values)
        if PARAMS.get() is not None:
            return self.fallback(*values)
        args = values
        values = self._with_state_values(values)
        key, leaves = signature.split(values, self.dynamic)
        entry = self.cache.get(key)
        if entry is None and len(self.cache) >= _NUMBER_VALUES and self._vary_numbers(key, values):
            key, leaves = signature.split(values, self.dynamic)
            entry = self.cache.get(key)
        if entry is None or (entry.guards and not entry.valid()):
            if key in self.unstaged:
                return self.fallback(*args)
            try:
                entry, key, leaves, values = self._compile(key, values)
            except Exception as e:  # the fallback runs it (and raises) as before
                return self._unstage(key, e, args)
            self.staged += 1
        rec = RECORD.get()
        outs = self._run(entry, leaves, rec, values)
        if rec is not None:
            for code in outs[-1]:  # the path inside: one code per select, in program order
                v = int(code)
                if v >= 0:
                    rec.append(("cond", bool(v)))
        return outs[:-1]

    def _unstage(self, key: tuple[Any, ...], e: Exception, args: tuple[Any, ...]) -> Any:
        cause: BaseException | None = e
        while cause is not None and not isinstance(cause, staging.StagingFailed):
            cause = cause.__cause__  # capture wraps what the select raised while tracing
        reason = str(cause or e).splitlines()[0][:300]
        self.unstaged[key] = reason
        logger.info(
            "%s.%s (%s): runs on the host for this signature: %s",
            self.program,
            self.name,
            self.span,
            reason,
        )
        if not self.staged and self.rebind is not None:
            self.rebind(self.fallback)  # never staged: the host program calls the fallback
        return self.fallback(*args)

    def _traced(self, fn: Callable[..., tuple[Any, ...]]) -> Callable[..., tuple[Any, ...]]:
        box = self._trace

        def traced(*values: Any) -> tuple[Any, ...]:
            with staging.collect() as trace:
                outs = fn(*values)
            box[:] = [trace]
            return (*outs, tuple(trace.codes))

        return traced

    def _capture(
        self,
        fn: Callable[..., tuple[Any, ...]],
        values: tuple[Any, ...],
        seen: list[tuple[Any, str]],
    ) -> tuple[Captured, list[Guard]]:
        captured, read = super()._capture(fn, values, seen)
        if any(_mutable(s) for s in captured.plan.spec):
            raise staging.StagingFailed(
                "a list or dict comes out of the staged if: rebuilt by the region it would be a "
                "copy, and the host program may rely on it being the same object"
            )
        for line, cost in self._trace[0].costs if self._trace else ():
            if cost > staging.MAX_BRANCH_COST:
                raise staging.StagingFailed(
                    f"the if at line {line}: a branch costs ~{cost:.3g} work units when not "
                    f"taken (limit {staging.MAX_BRANCH_COST:.3g})"
                )
        return captured, read


def _mutable(spec: Any) -> bool:
    """Whether an output plan entry rebuilds (or holds) a list, dict or set."""
    tag = spec[0]
    if tag in ("t", "a"):
        return False
    if tag == "c":
        return isinstance(spec[1], list | dict | set)
    if tag in ("d", "L", "D", "r", "i", "j") or (tag == "l" and spec[1] is list):
        return True
    return any(_mutable(x) for x in spec[2])


def _unbound(*values: Any) -> tuple[Any, ...]:  # pragma: no cover - the loader binds it
    raise AssertionError("staged region without a fallback")


# Failures of ours that PyTorch does not have: the region runs in PyTorch instead.
_PYTORCH_RUNS = (MissingLoweringError, LoweringError)


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    """torch's, numpy's and Python's global random states as they were before."""
    py = random.getstate()
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(np_state)
