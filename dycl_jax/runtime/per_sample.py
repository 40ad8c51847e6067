"""Per-sample paths in a batch: ``ConvertedModel.per_sample``.

DyNN code is written for one sample (``if conf.item() > t: return``), so a batch must behave as
if each row ran alone. ``per_sample`` runs the host program once per **group** of rows that took
the same path so far, with every tensor a :class:`Rows` value (one batch-1 row per group member,
stacked on a leading axis) and every region ``jax.vmap``-ed over the group, so each row keeps
exact batch-1 semantics (``squeeze()``, ``x[0]``, ``.view(-1)``).

**Splitting.** A read of a tensor's value on the host (a condition, ``.item()``, ``.tolist()``,
``int(t)``, a host-run op whose result shape differs per row) gives one value per row. If the
rows agree, the group goes on with that value. If not, the run stops (:class:`Split`) and each
subgroup of rows that agree runs the program again as a **replay**: the events before the split
(region calls, host-run ops, reads) are answered from the parent's record — region outputs
sliced to the subgroup's rows, reads with the agreed values — so nothing is recomputed and no
device value is read twice; from the split point on, the subgroup runs live. Results go back in
row order.

Group sizes are padded to powers of two (repeating the first row), so a region compiles its
vmapped form at most once per bucket. With several devices (or a ``jax.sharding.Mesh`` given),
each group's rows are sharded over them and everything else replicated: ``jax.jit`` with
shardings, JAX's own distribution (:class:`Layout`). Programs that write module attributes
(recurrent state kept on the module) are refused: a replay would write them again.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import operator
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

from dycl_jax.capture import signature
from dycl_jax.errors import InputError, InternalError
from dycl_jax.lower import dtypes
from dycl_jax.portable import hostlib, plan
from dycl_jax.runtime import io

if TYPE_CHECKING:
    from dycl_jax.runtime.runner import RegionRunner


class Split(BaseException):  # not Exception: a user's `except Exception` must not catch it
    """The rows of a group disagree at event ``index``; ``values`` holds each row's value."""

    def __init__(self, index: int, values: list[Any]) -> None:
        super().__init__(index)
        self.index = index
        self.values = values


class Rows:
    """A tensor with one value per row of the running group: ``data[i]`` is row i's batch-1
    tensor. Host conversions read every row and agree or split (see the module docstring)."""

    __slots__ = ("_data", "_idx", "n")

    def __init__(self, data: Any, n: int, idx: np.ndarray | None = None) -> None:
        # (bucket, *row shape): rows past n repeat row 0 (padding). With ``idx``, the rows
        # ``data[idx]``, gathered on first use: a replay hands many values on that are never used.
        self._data = data
        self._idx = idx
        self.n = n

    @property
    def data(self) -> Any:
        if self._idx is not None:
            self._data = _gather(self._data, self._idx)
            self._idx = None
        return self._data

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape[1:])

    @property
    def dtype(self) -> Any:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return len(self._data.shape) - 1

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return int(self._data.shape[1])

    def item(self) -> Any:
        return _read(self, _item, lazy=True)

    def scalar(self, fn: Callable[[Any], Any]) -> Any:
        """``int(t)`` / ``float(t)`` of each row, lazy (see :class:`Scalars`)."""
        return _read(self, lambda a: fn(_scalar(a)), lazy=True)

    def tolist(self) -> Any:
        return _read(self, lambda a: a.tolist())

    def contains(self, v: Any) -> bool:
        """``v in t``, per row: ``(t == v).any()`` read back (rows agree or split)."""
        if type(v) is Rows:
            raise InputError(
                "per_sample: `v in t` with a per-row v; run this model row by row with cm(row)"
            )
        return bool(_read(self, lambda a: hostlib.contains(np.asarray(a), v)))

    def numpy(self) -> Any:
        return _read(self, np.array)

    def __bool__(self) -> bool:
        return bool(_read(self, _truth))

    def __int__(self) -> int:
        return int(_read(self, lambda a: int(_item(a))))

    def __float__(self) -> float:
        return float(_read(self, lambda a: float(_item(a))))

    def __index__(self) -> int:
        return int(_read(self, _index))

    def __complex__(self) -> complex:
        return complex(_read(self, lambda a: complex(_item(a))))

    def __iter__(self) -> Iterator[Any]:
        raise InputError(
            "per_sample: this model iterates a tensor on the host; run it row by row with cm(row)"
        )

    def __repr__(self) -> str:
        return f"Rows({self.n} x {self.shape}, {self.dtype})"


class Scalars:
    """A Python number read back from a tensor, one per row of the running group, kept lazy:
    arithmetic and comparisons apply per row with Python's own semantics, a region takes it as
    one 0-d input per row, and only a decision (``if``, ``int()``, an index, a format) makes
    the rows agree or split. So ``if conf.item() > t:`` splits by the comparison, not by the
    confidence value of every row."""

    __slots__ = ("values",)

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def _op(self, other: Any, op: Callable[[Any, Any], Any], reverse: bool = False) -> Any:
        theirs = other.values if type(other) is Scalars else [other] * len(self.values)
        pairs = list(zip(self.values, theirs, strict=True))
        if reverse:
            return self.map(lambda i: op(pairs[i][1], pairs[i][0]))
        return self.map(lambda i: op(pairs[i][0], pairs[i][1]))

    def map(self, fn: Callable[[int], Any]) -> Scalars:
        """Row i's ``fn(i)`` for every row; rows where it raises part ways with the others.
        Never collapsed to one value: a replay must make the same decisions as its parent."""
        return Scalars(_current().rowwise(fn, len(self.values)))

    def agree(self, convert: Callable[[Any], Any] = lambda v: v) -> Any:
        run = _current()
        values = run.rowwise(lambda i: convert(self.values[i]), len(self.values))
        return run.decide(values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        attrs = self.map(lambda i: getattr(self.values[i], name))
        if all(callable(a) for a in attrs.values):  # c.is_integer(): a method of each row's
            return lambda *a, **k: attrs.map(lambda i: attrs.values[i](*a, **k))
        return attrs

    def __divmod__(self, other: Any) -> Any:
        return (self // other, self % other)

    def __invert__(self) -> Any:
        return self.map(lambda i: ~self.values[i])

    def __trunc__(self) -> Any:
        return self.map(lambda i: math.trunc(self.values[i]))

    def __floor__(self) -> Any:
        return self.map(lambda i: math.floor(self.values[i]))

    def __ceil__(self) -> Any:
        return self.map(lambda i: math.ceil(self.values[i]))

    def __bool__(self) -> bool:
        return bool(self.agree(bool))

    def __int__(self) -> int:
        return int(self.agree(int))

    def __float__(self) -> float:
        return float(self.agree(float))

    def __complex__(self) -> complex:
        return complex(self.agree(complex))

    def __index__(self) -> int:
        return int(self.agree(operator.index))

    def __hash__(self) -> int:
        return hash(self.agree())

    def __str__(self) -> str:
        return str(self.agree())

    def __format__(self, spec: str) -> str:
        return format(self.agree(), spec)

    def __round__(self, ndigits: int | None = None) -> Any:
        return self.map(lambda i: round(self.values[i], ndigits))

    def __neg__(self) -> Any:
        return self.map(lambda i: -self.values[i])

    def __pos__(self) -> Any:
        return self.map(lambda i: +self.values[i])

    def __abs__(self) -> Any:
        return self.map(lambda i: abs(self.values[i]))

    def __repr__(self) -> str:
        return f"Scalars({self.values!r})"


def _binary(op: Callable[[Any, Any], Any]) -> tuple[Any, Any]:
    def forward(self: Scalars, other: Any) -> Any:
        return self._op(other, op)

    def backward(self: Scalars, other: Any) -> Any:
        return self._op(other, op, reverse=True)

    return forward, backward


for _name, _fn in (
    ("add", operator.add),
    ("sub", operator.sub),
    ("mul", operator.mul),
    ("truediv", operator.truediv),
    ("floordiv", operator.floordiv),
    ("mod", operator.mod),
    ("pow", operator.pow),
    ("and", operator.and_),
    ("or", operator.or_),
    ("xor", operator.xor),
    ("lshift", operator.lshift),
    ("rshift", operator.rshift),
):
    _f, _b = _binary(_fn)
    setattr(Scalars, f"__{_name}__", _f)
    setattr(Scalars, f"__r{_name}__", _b)
for _name, _fn in (
    ("lt", operator.lt),
    ("le", operator.le),
    ("gt", operator.gt),
    ("ge", operator.ge),
    ("eq", operator.eq),
    ("ne", operator.ne),
):
    setattr(Scalars, f"__{_name}__", _binary(_fn)[0])


def scalars(values: list[Any]) -> Any:
    """Per-row values: the one value when every row has it, else a :class:`Scalars`."""
    first = values[0]
    if all(_same(first, v) for v in values[1:]):
        return first
    return Scalars(values)


def _current() -> _Run:
    run = CURRENT.get()
    if run is None:
        raise InputError("a per_sample value was used outside ConvertedModel.per_sample")
    return run


def _item(a: np.ndarray) -> Any:
    if a.size != 1:
        raise RuntimeError(f"a Tensor with {a.size} elements cannot be converted to Scalar")
    return a.reshape(()).item()


def _scalar(a: np.ndarray) -> Any:
    if a.size != 1:
        raise ValueError("only one element tensors can be converted to Python scalars")
    return a.reshape(()).item()


def _truth(a: np.ndarray) -> bool:
    if a.size != 1:
        raise RuntimeError(hostlib.AMBIGUOUS[a.size == 0])
    return bool(a.reshape(()).item())


def _index(a: np.ndarray) -> int:
    if a.size != 1 or not np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_:
        raise TypeError(
            f"only integer tensors of a single element can be converted to an index, not {a.size}"
        )
    return operator.index(a.reshape(()).item())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and a.tobytes() == b.tobytes()
        )
    return type(a) is type(b) and repr(a) == repr(b)  # repr: NaN equals NaN, 0.0 is not -0.0


@dataclasses.dataclass
class _Event:
    kind: str  # "region", "eager" or "read"
    value: Any
    tag: Any = None  # a region event: which runner
    # A region whose outputs keep live-in lists/dicts themselves (portable.plan "i"/"j"...):
    # (graph outputs, plan, staged), so a replay rebuilds them around its own objects.
    rebuild: tuple[Any, Any, bool] | None = None


class _Run:
    """One execution of the host program for a group of rows (``rows``: original indices)."""

    def __init__(
        self,
        rows: list[int],
        parent: list[_Event],
        positions: np.ndarray | None,
        decision: tuple[int, Any] | None,
        cache: dict[Any, Any],
    ) -> None:
        self.rows = rows
        self.parent = parent  # the events before the split, over the parent's rows
        self.positions = positions  # this group's rows' positions among the parent's
        self.decision = decision  # (event index, value) this group takes at the split
        self.events: list[_Event] = []
        self.cache = cache  # vmapped executables, shared by every run
        # The Split raised in this run, if any (if the program returns anyway, it caught it).
        self.split: Split | None = None

    # ---- events ----------------------------------------------------------------------------------

    def _replayed(self, kind: str, tag: Any = None) -> tuple[bool, Any]:
        i = len(self.events)
        if i < len(self.parent):
            e = self.parent[i]
            if e.kind != kind or e.tag != tag:  # the same program, the same decisions
                raise InternalError(
                    f"per_sample replay diverged at event {i}: {e.kind} {e.tag} recorded, "
                    f"{kind} {tag} now",
                    stage="per_sample",
                )
            value = _slice(e.value, self.positions)  # per-row values: this group's rows
            self.events.append(_Event(kind, value, tag))
            return True, value
        return False, None

    def _event(self, kind: str, live: Callable[[], Any]) -> Any:
        """One event: the parent's (sliced to this group) in a replay, else ``live()``."""
        done, value = self._replayed(kind)
        if done:
            return value
        value = live()
        self.events.append(_Event(kind, value))
        return value

    def rowwise(self, fn: Callable[[int], Any], n: int) -> list[Any]:
        """``fn(i)`` for each row; if it raises on some rows only, they part ways (an event,
        always recorded, so a replay sees the same events); if on all, the first error."""
        values: list[Any] = []
        errors: list[BaseException | None] = []
        for i in range(n):
            try:
                values.append(fn(i))
                errors.append(None)
            except Exception as e:
                values.append(None)
                errors.append(e)
        if not self.decide([e is None for e in errors]):
            error = next((e for e in errors if e is not None), None)
            if error is None:
                raise InternalError(
                    "per_sample: rows decided to raise but none did", stage="per_sample"
                )
            raise error
        return values

    def read(self, v: Rows, convert: Callable[[np.ndarray], Any], lazy: bool = False) -> Any:
        """Each row's ``convert`` of its tensor: the agreed value, a lazy :class:`Scalars`
        (``lazy``), or a split."""
        if self._replays(2):  # which rows raise, then the value: both the parent's
            self._replayed("read")
            return self._replayed("read")[1]
        host = np.asarray(v.data)  # one device read for the whole group
        values = self.rowwise(lambda r: convert(host[r]), v.n)
        if lazy:
            return self._event("read", lambda: scalars(values))
        return self._event("read", lambda: self._agreed(values))

    def _replays(self, k: int) -> bool:
        """The next ``k`` events all come from the parent."""
        return len(self.events) + k <= len(self.parent)

    def decide(self, values: list[Any]) -> Any:
        """A Python decision on per-row values (``if``, an index): agree or split."""
        return self._event("read", lambda: self._agreed(values))

    def _agreed(self, values: list[Any]) -> Any:
        i = len(self.events)
        if self.decision is not None and self.decision[0] == i:
            return self.decision[1]
        if self.split is not None:
            # A split is propagating (through a `finally:` that decides again): the group
            # parts at the first one; later decisions cannot be trusted, the run is over.
            raise self.split
        if any(not _same(values[0], x) for x in values[1:]):
            self.split = Split(i, values)
            raise self.split
        return values[0]

    def eager(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        """A torch op run on the host (data-dependent shape), row by row."""
        if self._replays(3):  # which rows raise, their shapes, the value: the parent's
            self._replayed("read")
            self._replayed("read")
            return self._replayed("eager")[1]
        n = self.size

        def one(r: int) -> Any:
            a, k = io.map_structure(partial(_row_torch, r=r), (args, kwargs))
            return io.from_torch(fn(*a, **k))

        results = self.rowwise(one, n)
        self.decide([_shapes(x) for x in results])  # rows whose results differ in shape part
        return self._event("eager", lambda: _stack_results(results, bucket(n)))

    @property
    def size(self) -> int:
        return len(self.rows)

    # ---- regions ---------------------------------------------------------------------------------

    def region(self, runner: RegionRunner, values: tuple[Any, ...]) -> tuple[Any, ...]:
        from dycl_jax.runtime.runner import StagedRunner

        tag = (runner.program, runner.name)
        i = start = len(self.events)
        if i < len(self.parent) and self.parent[i].kind == "region" and self.parent[i].tag == tag:
            again = self.parent[i].rebuild
            if again is None:
                return self._replayed("region", tag)[1]  # type: ignore[no-any-return]
            raw, spec, is_staged = again
            raw = _slice(raw, self.positions)
            outs = plan.build(spec, raw, values)
            outs = outs[:-1] if is_staged else outs
            self.events.append(_Event("region", outs, tag, (raw, spec, is_staged)))
            return outs
        markers: dict[int, Any] = {}

        def stand_in(v: Any) -> Any:
            if type(v) is not Rows:
                return v
            m = np.zeros(v.shape, dtype=v.dtype)
            markers[id(m)] = v.data
            return m

        def nested(v: Any) -> Any:
            return v.agree() if type(v) is Scalars else stand_in(v)

        # Per-row Python numbers: one 0-d input per row where the region takes the number as
        # an array (a host scalar), else they must agree (the region specialises on it).
        per_row: dict[int, Scalars] = {}
        rep_list = []
        for i, v in enumerate(values):
            if type(v) is Scalars:
                if i in runner.dynamic and all(signature.scalar_input(x) for x in v.values):
                    if len({type(x) for x in v.values}) == 1:
                        per_row[i] = v
                        rep_list.append(v.values[0])
                        continue
                v = v.agree()
            rep_list.append(io.map_structure(nested, v))
        rep = tuple(rep_list)
        dynamic = runner.dynamic
        key, leaves = signature.split(rep, dynamic)
        staged = isinstance(runner, StagedRunner)
        # A staged region that runs its host version records that version's events instead
        # (decided the same way on a replay: the runner remembers the signature).
        if isinstance(runner, StagedRunner) and key in runner.unstaged:
            return runner.fallback(*values)
        entry = runner.cache.get(key)
        if entry is None or (entry.guards and not entry.valid()):
            try:
                entry, key, leaves, rep = runner._compile(key, rep)
            except Exception as e:
                if not staged:
                    raise
                return runner._unstage(key, e, values)  # type: ignore[attr-defined, no-any-return]
            if runner.dynamic != dynamic:  # it specialises on host scalars: they must agree
                del self.events[start:]  # this attempt's agreements: made again, as a replay will
                return self.region(runner, values)
            key, leaves = signature.split(rep, dynamic)  # compile split `values` afresh
        if entry.eager is not None:
            raise InputError(
                f"per_sample: region {runner.name} ({runner.span}) runs in PyTorch on the host "
                f"({entry.why}), row by row only; run this model with cm(row)"
            )
        if per_row:
            starts = signature.leaf_starts(rep, runner.dynamic)
            size = bucket(self.size)
            for pos, sv in per_row.items():
                kind = np.int64 if type(sv.values[0]) is int else np.float64
                vals = sv.values + [sv.values[0]] * (size - len(sv.values))
                markers[id(leaves[starts[pos]])] = np.asarray(vals, kind)
        outs, again = self._vmapped(runner, entry, leaves, markers, staged, values)
        self.events.append(_Event("region", outs, tag, again))
        return outs

    def _vmapped(
        self,
        runner: RegionRunner,
        entry: Any,
        leaves: list[Any],
        markers: dict[int, Any],
        staged: bool,
        values: tuple[Any, ...],
    ) -> tuple[tuple[Any, ...], tuple[Any, Any, bool] | None]:
        runner.session.stats.region_calls += 1
        if entry.jitted is None:
            outs = entry.captured.plan.build((), values)
            return (outs[:-1] if staged else outs), _again(entry, (), staged)
        n = self.size
        axes = tuple(0 if id(leaf) in markers else None for leaf in leaves)
        args = [markers[id(leaf)] if id(leaf) in markers else leaf for leaf in leaves]
        fn = entry.jitted.__wrapped__  # type: ignore[attr-defined]
        size = bucket(n)
        layout = LAYOUT.get()
        vkey = (id(fn), axes, len(entry.params), size, layout)
        vmapped = self.cache.get(vkey)
        if vmapped is None:
            in_axes = (None,) * len(entry.params) + axes
            batched = jax.vmap(fn, in_axes=in_axes, axis_size=size)
            if layout is None:
                vmapped = jax.jit(batched)
            else:  # rows sharded over the mesh, the rest replicated: XLA distributes the work
                shardings = tuple(layout.rows if a == 0 else layout.replicated for a in in_axes)
                vmapped = jax.jit(batched, in_shardings=shardings, out_shardings=layout.rows)
            self.cache[vkey] = (vmapped, fn)  # fn kept alive: its id is in the key
        else:
            vmapped = vmapped[0]
        if layout is None:
            raw = vmapped(*entry.params, *args)
        else:
            runner.session.stats.per_sample_sharded_calls += 1
            params = layout.replicate(entry.params)
            placed = [jax.device_put(a, layout.rows if x == 0 else layout.replicated)
                      for a, x in zip(args, axes)]  # fmt: skip
            raw = vmapped(*params, *placed)
        rows = tuple(Rows(o, n) for o in raw)
        outs = entry.captured.plan.build(rows, values)
        return (outs[:-1] if staged else outs), _again(entry, rows, staged)


def _again(entry: Any, raw: tuple[Any, ...], staged: bool) -> tuple[Any, Any, bool] | None:
    """What a replay needs to rebuild a region's outputs around its own live-in objects: only
    when the plan returns live-in lists / dicts themselves (or shares one among outputs)."""
    spec = entry.captured.plan.spec
    return (raw, spec, staged) if plan.keeps_identity(spec) else None


def bucket(n: int) -> int:
    """The padded group size for ``n`` rows: the next power of two; with rows sharded over a
    mesh of ``d`` devices, ``d`` times the next power of two of ``n / d``, so every device holds
    the same number of rows."""
    layout = LAYOUT.get()
    if layout is None:
        return 1 << (n - 1).bit_length()
    d = layout.devices
    return d * (1 << (-(-n // d) - 1).bit_length())


class Layout:
    """Where a per_sample group's rows live: sharded over ``mesh`` (all its axes, flattened),
    everything else replicated. One per mesh (:meth:`choose`): vmapped executables are cached
    by layout."""

    def __init__(self, mesh: jax.sharding.Mesh) -> None:
        P = jax.sharding.PartitionSpec
        self.mesh = mesh
        self.rows = jax.sharding.NamedSharding(mesh, P(tuple(mesh.axis_names)))
        self.replicated = jax.sharding.NamedSharding(mesh, P())
        self.devices = int(mesh.devices.size)
        self._copies: dict[int, tuple[Any, Any]] = {}

    def replicate(self, arrays: tuple[Any, ...]) -> tuple[Any, ...]:
        """Parameters copied to every device once (kept while the original lives)."""
        out = []
        for a in arrays:
            hit = self._copies.get(id(a))
            if hit is None or hit[0] is not a:
                hit = self._copies[id(a)] = (a, jax.device_put(a, self.replicated))
            out.append(hit[1])
        return tuple(out)

    @staticmethod
    def choose(mesh: Any) -> Layout | None:
        """``per_sample``'s ``mesh`` argument as a layout: None (default) shards over every
        device of the default backend when there are several; False never shards."""
        if mesh is False:
            return None
        if mesh is None or mesh is True:
            devices = jax.devices()
            if len(devices) < 2:
                return None
            mesh = jax.sharding.Mesh(np.asarray(devices), ("rows",))
        if not isinstance(mesh, jax.sharding.Mesh):
            raise InputError(f"per_sample: mesh must be a jax.sharding.Mesh, got {mesh!r}")
        if mesh.devices.size < 2:
            return None
        layout = _LAYOUTS.get(mesh)
        if layout is None:
            layout = _LAYOUTS[mesh] = Layout(mesh)
        return layout


_LAYOUTS: dict[Any, Layout] = {}


# The layout of the running per_sample call (None: one device).
LAYOUT: contextvars.ContextVar[Layout | None] = contextvars.ContextVar(
    "dycl_per_sample_layout", default=None
)


def _padded(positions: np.ndarray) -> np.ndarray:
    """``positions`` padded to its bucket by repeating the first."""
    pad = bucket(len(positions)) - len(positions)
    return np.concatenate([positions, np.repeat(positions[:1], pad)]) if pad else positions


_take = jax.jit(lambda data, idx: data[idx])  # one dispatch, not jnp indexing's several


def _gather(data: Any, idx: np.ndarray) -> Any:
    return data[idx] if isinstance(data, np.ndarray) else _take(data, idx)


def _slice(value: Any, positions: np.ndarray | None) -> Any:
    """``value`` with its Rows restricted to ``positions`` (and padded to their bucket)."""
    if positions is None:
        return value
    idx = _padded(positions)
    n = len(positions)

    def cut(v: Any) -> Any:
        if type(v) is Rows:
            if v._idx is not None:  # compose with a pending selection
                return Rows(v._data, n, v._idx[idx])
            return Rows(v._data, n, idx)
        if type(v) is Scalars:
            return Scalars([v.values[p] for p in positions])  # never collapsed (see map)
        return v

    return io.map_structure(cut, value)


def _row_torch(v: Any, r: int) -> Any:
    if type(v) is Rows:
        return dtypes.numpy_to_tensor(np.asarray(v.data[r]))
    if isinstance(v, jax.Array | np.ndarray):
        return dtypes.numpy_to_tensor(v)
    return v


def _leaves(value: Any) -> list[Any]:
    """The leaves of ``value`` (through lists, tuples, dicts, dataclasses), in order."""
    out: list[Any] = []
    io.map_structure(out.append, value)
    return out


def _like(template: Any, leaves: list[Any]) -> Any:
    """``template``'s structure with ``leaves`` in place of its own, in order."""
    it = iter(leaves)
    return io.map_structure(lambda v: next(it), template)


def _shapes(value: Any) -> Any:
    return repr(
        [(np.shape(v), str(v.dtype)) if isinstance(v, np.ndarray) else v for v in _leaves(value)]
    )


def _stack_results(results: list[Any], size: int) -> Any:
    """Per-row host results of one structure as one value with Rows leaves (padded)."""
    n = len(results)
    pad = [0] * (size - n)
    return _like(
        results[0],
        [
            Rows(np.stack([col[i] for i in (*range(n), *pad)]), n)
            if isinstance(col[0], np.ndarray)
            else col[0]
            for col in zip(*map(_leaves, results), strict=True)
        ],
    )


# ---- the context the runtime consults -------------------------------------------------------------

CURRENT: contextvars.ContextVar[_Run | None] = contextvars.ContextVar(
    "dycl_per_sample", default=None
)


def _read(v: Rows, convert: Callable[[np.ndarray], Any], lazy: bool = False) -> Any:
    return _current().read(v, convert, lazy)


@contextlib.contextmanager
def _setting(var: contextvars.ContextVar[Any], value: Any) -> Iterator[None]:
    """``var`` set to ``value`` for the block (the running group, the layout)."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


# ---- the driver ------------------------------------------------------------------------------------


def run(
    call: Callable[[tuple[Any, ...], dict[str, Any]], Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    cache: dict[Any, Any],
    max_groups: int = 1024,
    layout: Layout | None = None,
) -> list[tuple[list[int], Any]]:
    """``call`` (the host program on inputs) run per group of rows: (the group's rows, its
    result with Rows leaves) for each group (see :func:`unstack`); ``cache`` keeps the vmapped
    region executables between calls; ``layout`` shards each group's rows over a mesh."""
    with _setting(LAYOUT, layout):
        n = _rows(args, kwargs)
        if n == 0:
            return []
        split_args = _per_row((args, kwargs), n)
        done: list[tuple[list[int], Any]] = []  # (rows, result with Rows leaves) per group
        todo = [_Run(list(range(n)), [], None, None, cache)]
        while todo:
            group = todo.pop()
            if len(done) + len(todo) >= max_groups:
                raise InputError(
                    f"per_sample: more than {max_groups} groups; run fewer rows at once"
                )
            a, k = _slice(split_args, np.asarray(group.rows))
            try:
                with _setting(CURRENT, group):
                    out = call(a, k)
            except Split:
                assert group.split is not None
                todo.extend(reversed(_children(group, group.split)))
                continue
            if group.split is not None:
                raise InputError(
                    "per_sample: forward catches every exception (a bare `except:` or `except "
                    "BaseException`) around code where rows of the batch take different paths",
                    hint="catch the exceptions forward expects (e.g. `except ValueError`), or call "
                    "the model row by row",
                )
            done.append((group.rows, out))
        return done


def unstack(groups: list[tuple[list[int], Any]]) -> list[Any]:
    """Each row's own result, in row order (its tensors of the row's batch-1 shape)."""
    n = sum(len(rows) for rows, _ in groups)
    results: list[Any] = [None] * n
    for rows, out in groups:
        split = _Unstacker()
        for pos, row in enumerate(rows):
            results[row] = io.map_structure(partial(split, pos=pos), out)
    return results


class _Unstacker:
    """Rows leaves cut into rows, one jitted call per leaf."""

    def __init__(self) -> None:
        self.done: dict[int, Any] = {}

    def __call__(self, v: Any, pos: int) -> Any:
        if type(v) is Scalars:
            return v.values[pos]
        if type(v) is not Rows:
            return v
        parts = self.done.get(id(v))
        if parts is None:
            parts = self.done[id(v)] = _rows_of(jnp.asarray(v.data))
        return parts[pos]


_rows_of = jax.jit(lambda data: tuple(data[i] for i in range(data.shape[0])))


def _children(group: _Run, s: Split) -> list[_Run]:
    """The subgroups of ``group`` that agree at the split, each to be replayed."""
    order: list[Any] = []
    members: dict[int, list[int]] = {}
    for pos, value in enumerate(s.values):
        for i, seen in enumerate(order):
            if _same(seen, value):
                members[i].append(pos)
                break
        else:
            members[len(order)] = [pos]
            order.append(value)
    out = []
    for i, value in enumerate(order):
        positions = np.asarray(members[i])
        rows = [group.rows[p] for p in members[i]]
        # the events before the split only (a `finally:` may have recorded more after it)
        out.append(_Run(rows, group.events[: s.index], positions, (s.index, value), group.cache))
    return out


def _rows(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    sizes: set[int] = set()

    def visit(v: Any) -> None:
        if isinstance(v, torch.Tensor | np.ndarray | jax.Array):
            if np.ndim(v) == 0:
                raise InputError("per_sample: a 0-d tensor argument has no rows")
            sizes.add(int(v.shape[0]))

    io.map_structure(visit, (args, kwargs))
    if len(sizes) != 1:
        raise InputError(
            f"per_sample: every tensor argument must have the same number of rows (got {sizes})"
        )
    return sizes.pop()


def _per_row(value: Any, n: int) -> Any:
    """Tensor arguments as Rows of batch-1 rows (``x[i:i+1]``); other values shared."""

    def leaf(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            v = dtypes.tensor_to_numpy(v)
        if isinstance(v, np.ndarray | jax.Array):
            return Rows(np.asarray(v).reshape((n, 1, *v.shape[1:])), n)
        return v

    return io.map_structure(leaf, value)


def stack(results: list[Any]) -> Any:
    """Per-row results of one structure: tensor leaves concatenated on dim 0, Python scalars as
    arrays of shape (rows,)."""
    hint = "use per_sample(..., stack=False) for the list of per-row results"
    specs = {repr(io.map_structure(lambda v: None, res)) for res in results}
    if len(specs) > 1:
        raise InputError("per_sample(stack=True): the rows' results differ in structure", hint=hint)
    flat = [_leaves(res) for res in results]
    columns = []
    for col in zip(*flat, strict=True):
        first = col[0]
        if isinstance(first, jax.Array | np.ndarray):
            if not all(isinstance(c, jax.Array | np.ndarray) for c in col):
                raise InputError(
                    "per_sample(stack=True): a result is a tensor on some rows only", hint=hint
                )
            if any(c.dtype != first.dtype for c in col) or any(
                np.shape(c)[1:] != np.shape(first)[1:] or np.ndim(c) != np.ndim(first) for c in col
            ):
                raise InputError(
                    "per_sample(stack=True): the rows' tensors differ in shape or dtype", hint=hint
                )
            arrays = [jnp.asarray(c) for c in col]
            columns.append(jnp.stack(arrays) if np.ndim(first) == 0 else jnp.concatenate(arrays))
        elif type(first) in (bool, int, float, complex):
            if any(type(c) is not type(first) for c in col):
                raise InputError(
                    "per_sample(stack=True): a Python number of different types across rows "
                    f"({sorted({type(c).__name__ for c in col})})",
                    hint=hint,
                )
            columns.append(jnp.asarray(col))
        elif all(type(c) is type(first) and (c is first or c == first) for c in col):
            columns.append(first)
        else:
            raise InputError(
                f"per_sample(stack=True): rows give different {type(first).__name__} values",
                hint=hint,
            )
    return _like(results[0], columns)
