"""Host ops without torch: the torch ops a host program runs between compiled regions, in numpy.

A converted program runs some torch ops on the host (``_dy.eager``, ``_dy.eager_method``,
``_dy.eager_getitem``): their output shape depends on values (``nonzero``, ``unique``, ``x[mask]``),
their result on exact ties is PyTorch's own CPU algorithm (``topk``, ``sort``, ``median``), or
they return a Python value (``allclose``). A saved artifact runs where torch is not installed, so
this module computes them with numpy, following PyTorch's semantics and result types: indices are
int64, masks bool, values keep the input's dtype (float16, and bfloat16 from ``ml_dtypes``, which
are ordered through float32, exactly), 0-d results are 0-d arrays, ``torch.return_types`` results
are named tuples (:class:`return_types`), Python results are Python ``bool``.

* :data:`FUNCTIONS` — ``torch.<name>(t, ...)``, keyed ``"torch.<name>"``.
* :data:`METHODS` — ``t.<name>(...)``, keyed ``"<name>"``, called as ``METHODS[name](t, ...)``.
* :func:`getitem` — ``t[index]`` (boolean masks, integer index arrays, mixed tuples).

Arguments these do not implement (``out=``, named dims, ``torch.where``'s three-argument form)
raise :class:`Unsupported`, naming the op.

Ties. PyTorch's CPU ``topk``, ``kthvalue``, ``median`` (with ``dim``) select with their own
partition algorithms, and unstable ``sort``/``argsort`` and ``mode`` use ``std::sort``; which of
several equal values comes first there is not reproducible here. These return equal values in
index order (lowest index first; ``mode`` gives the last index of its value, as PyTorch's
sort-and-scan does on short rows), which is PyTorch's result whenever there are no ties, and log
a warning once per op when a tie could change the result. Measured with torch 2.13 (CPU, Linux):

* on all-equal inputs ``topk(k=1)`` returns index 2 of 4, 3 of 6, 10 of 16, 28 of 40, and
  ``topk(k=2)`` of 4 returns ``[2, 3]`` (largest or smallest); ``kthvalue(k=1)`` returns index 1 of
  4, 4 of 6, 13 of 16; ``median(dim=0)`` returns index 1 of 4, 2 of 6, 7 of 16, 19 of 40;
* unstable ``sort``/``argsort`` (ascending or descending) and ``mode`` keep equal values in index
  order for rows of up to 16 elements (libstdc++'s ``std::sort`` is an insertion sort there; 3000
  random tie-heavy rows agreed), and differ from 17 on (``sort`` of 40 zeros starts
  ``[30, 21, 22, ...]``, ``mode`` of 40 zeros returns index 19), so those two warn only from 17;
* ``sort(stable=True)`` keeps index order among equal values, descending too
  (``[1, 3, 3, 2, 3]`` descending: ``[1, 2, 4, 3, 0]``) — reproduced exactly, no warning.

NaN is the largest value for ordering, as in PyTorch: last ascending, first descending, selected
first by ``topk(largest=True)``; ``median`` of a row with NaN is NaN at the row's first NaN.
``mode`` compares with a plain ``<`` in PyTorch, so NaN's place there is the sort's accident: rows
with NaN warn. Values-only results (``msort``, ``median`` without ``dim``, ``unique``) are the
same whatever the tie order, up to the sign of zero (``0.0`` and ``-0.0`` are equal values).
"""

from __future__ import annotations

import collections
import functools
import inspect
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from dycl_jax.log import logger


class Unsupported(Exception):
    """An argument combination of a host op that this torch-free implementation does not cover."""


class return_types:  # named like torch.return_types
    """Named results like ``torch.return_types``: unpack, index, or ``.values``/``.indices``."""

    class topk(NamedTuple):
        values: Any
        indices: Any

    class sort(NamedTuple):
        values: Any
        indices: Any

    class kthvalue(NamedTuple):
        values: Any
        indices: Any

    class mode(NamedTuple):
        values: Any
        indices: Any

    class median(NamedTuple):
        values: Any
        indices: Any


def return_type(name: str, fields: tuple[str, ...]) -> type:
    """The NamedTuple standing for ``torch.return_types.<name>`` (one class per name)."""
    known: Any = getattr(return_types, name, None)
    if known is None or known._fields != fields:
        known = _namedtuple(name, fields)
        setattr(return_types, name, known)
    return known  # type: ignore[no-any-return]


_namedtuple: Any = collections.namedtuple


# Rows up to this long are sorted by insertion sort in libstdc++'s std::sort (stable in effect).
_INSERTION_SORT_MAX = 16

_warned: set[str] = set()


def _warn_once(key: str, why: str) -> None:
    """Log once per ``key`` (an op) and process that its result may differ from PyTorch's."""
    if key in _warned:
        return
    _warned.add(key)
    logger.warning("%s: %s (logged once per process)", key, why)


def _warn_ties(op: str) -> None:
    _warn_once(
        op,
        "the input has equal values whose order decides the result, and PyTorch's CPU kernel "
        "breaks such ties by its own algorithm: the indices (order) of equal values here are "
        "index order and may differ from PyTorch's",
    )


# ---------------------------------------------------------------------------------------------
# helpers


def _tensor(x: Any) -> np.ndarray:
    """A numpy view of a tensor argument (numpy array or scalar, jax array)."""
    return np.asarray(x)


def _key(a: np.ndarray) -> np.ndarray:
    """``a`` as numpy can compare and sort it: ``ml_dtypes`` floats (bfloat16, ...) as float32."""
    return a.astype(np.float32) if a.dtype.kind == "V" else a


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind in "fV"


def _isnan(k: np.ndarray) -> np.ndarray:
    return np.isnan(k) if k.dtype.kind in "fc" else np.zeros(k.shape, bool)


def _index(op: str, name: str, v: Any) -> int:
    try:
        return operator.index(v)
    except TypeError:
        raise Unsupported(f"{op}: {name}={v!r} is not an integer") from None


def _dim(op: str, dim: Any, ndim: int) -> int:
    """Wrap a (negative) dim like PyTorch; a 0-d tensor has one dim, -1 or 0."""
    if isinstance(dim, str):
        raise Unsupported(f"{op}: named dim {dim!r}")
    d = _index(op, "dim", dim)
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})"
        )
    return d % n


def _last(a: np.ndarray, d: int) -> np.ndarray:
    """``a`` with dim ``d`` moved last (a 0-d ``a`` as one element)."""
    return np.moveaxis(a.reshape(1) if a.ndim == 0 else a, d, -1)


def _unlast(r: np.ndarray, d: int, ndim: int) -> np.ndarray:
    """Undo :func:`_last` on a result with the same number of dims."""
    return r.reshape(()) if ndim == 0 else np.moveaxis(r, -1, d)


def _reduced(r: np.ndarray, d: int, ndim: int, keepdim: bool) -> np.ndarray:
    """A per-row result of a reduction over dim ``d``, with ``keepdim`` like PyTorch."""
    return np.expand_dims(r, d) if keepdim and ndim > 0 else r


def _orderable(op: str, a: np.ndarray, bool_ok: bool) -> None:
    if a.dtype.kind == "c" or (a.dtype.kind == "b" and not bool_ok):
        raise TypeError(f'"{op}" is not implemented for {a.dtype} tensors (as in PyTorch)')


def _nonempty_dim(op: str, x: np.ndarray, d: int) -> None:
    if x.shape[-1] == 0:
        raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")


def _argsort(k: np.ndarray, descending: bool) -> np.ndarray:
    """Stable argsort along the last axis, NaN largest; descending keeps index order too."""
    if not descending:
        return np.argsort(k, axis=-1, kind="stable")
    # the reverse of a stable ascending sort of the reversed row: descending, ties in index order
    n = k.shape[-1]
    return np.flip(n - 1 - np.argsort(np.flip(k, -1), axis=-1, kind="stable"), -1)


def _adjacent_equal(s: np.ndarray) -> np.ndarray:
    """For sorted keys, whether each element equals the next (NaN equal to NaN)."""
    left, right = s[..., :-1], s[..., 1:]
    return (left == right) | (_isnan(left) & _isnan(right))


def _i64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# data-dependent output shape


def nonzero(input: Any, *, as_tuple: bool = False) -> Any:
    """``torch.nonzero``: ``(count, ndim)`` int64 indices in row-major order; ``as_tuple=True``
    gives one int64 array per dim (a 0-d input counts as 1-d)."""
    a = _key(_tensor(input))
    if as_tuple:
        return tuple(_i64(i) for i in np.nonzero(np.atleast_1d(a)))
    return _i64(np.argwhere(a))


def argwhere(input: Any) -> np.ndarray:
    """``torch.argwhere``: ``torch.nonzero(input)``."""
    return nonzero(input)


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """``torch.where(condition)``: ``torch.nonzero(condition, as_tuple=True)``."""
    if input is not None or other is not None:
        raise Unsupported(
            "torch.where(condition, input, other) is elementwise, not a host op; only the "
            "one-argument form torch.where(condition) is implemented here"
        )
    return nonzero(condition, as_tuple=True)


def masked_select(input: Any, mask: Any) -> np.ndarray:
    """``torch.masked_select``: the elements of ``input`` where the bool ``mask`` is true, after
    broadcasting the two, as a 1-d array in row-major order."""
    a, m = _tensor(input), _tensor(mask)
    if m.dtype != np.bool_:
        raise RuntimeError("masked_select: expected BoolTensor for mask")
    a, m = np.broadcast_arrays(a, m)
    return a[m]


def _runs(starts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Run ids of ``n`` sorted elements whose run starts are ``starts``, and run lengths."""
    ids = np.cumsum(starts) - 1
    return ids, np.diff(np.append(np.flatnonzero(starts), n)).astype(np.int64)


def _unique_result(out: np.ndarray, inverse: Any, counts: Any, ri: bool, rc: bool) -> Any:
    """``torch.unique``'s result: the values alone, or a tuple with the flags' extras."""
    if not (ri or rc):
        return out
    return (out, *([inverse] if ri else []), *([counts] if rc else []))


def _unique_rows(
    op: str, a: np.ndarray, dim: Any, consecutive: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique slices of ``a`` along ``dim`` (sorted lexicographically unless ``consecutive``)."""
    if a.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = _dim(op, dim, a.ndim)
    n = a.shape[d]
    if a.size == 0:
        if n != 0:
            raise RuntimeError(
                "There are 0 sized dimensions, and they aren't selected, so unique cannot be "
                "applied"
            )
        return a, _i64(np.zeros(0)), _i64(np.zeros(0))
    rows = np.moveaxis(a, d, 0).reshape(n, -1)
    k = _key(rows)
    if not consecutive and _isnan(k).any():
        _warn_once(
            "unique(dim)",
            "slices with NaN, which PyTorch orders by a plain '<': the order of the unique "
            "slices may differ from PyTorch's",
        )
    order = np.arange(n) if consecutive else np.lexsort(k.T[::-1])
    s = k[order]
    starts = np.ones(n, bool)
    starts[1:] = (s[1:] != s[:-1]).any(axis=1)
    ids, counts = _runs(starts, n)
    inverse = np.empty(n, np.int64)
    inverse[order] = ids
    out = rows[order[starts]].reshape((-1, *(m for i, m in enumerate(a.shape) if i != d)))
    return np.moveaxis(out, 0, d), inverse, counts


def _unique_flat(a: np.ndarray, consecutive: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    flat = a.reshape(-1)
    k = _key(flat)
    order = np.arange(flat.size) if consecutive else np.argsort(k, kind="stable")
    s = k[order]
    starts = np.ones(flat.size, bool)
    starts[1:] = s[1:] != s[:-1]  # NaN != NaN: every NaN is its own value, as in PyTorch
    ids, counts = _runs(starts, flat.size)
    inverse = np.empty(flat.size, np.int64)
    inverse[order] = ids
    return flat[order[starts]], inverse.reshape(a.shape), counts


def unique(
    input: Any,
    sorted: bool = True,
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: Any = None,
) -> Any:
    """``torch.unique``: sorted unique values of the flattened input (or unique slices along
    ``dim``, sorted lexicographically), with the inverse indices (input's shape, or ``(size,)``
    along ``dim``) and the counts when asked, as a tuple of the requested parts. PyTorch's CPU
    unique sorts whatever ``sorted`` says (measured); NaNs are all distinct, as in PyTorch."""
    a = _tensor(input)
    if dim is None:
        out, inverse, counts = _unique_flat(a, consecutive=False)
    else:
        out, inverse, counts = _unique_rows("torch.unique", a, dim, consecutive=False)
    return _unique_result(out, inverse, counts, return_inverse, return_counts)


def _unique_consecutive_parts(
    input: Any, return_inverse: bool = False, return_counts: bool = False, dim: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = _tensor(input)
    if dim is not None and not (a.ndim == 1 and dim == 0):
        # PyTorch computes all parts along a dim (which it returns when the dispatch asks)
        return _unique_rows("torch.unique_consecutive", a, dim, consecutive=True)
    out, inverse, counts = _unique_flat(a, consecutive=True)
    empty = _i64(np.zeros(0))  # the parts not asked for
    return out, inverse if return_inverse else empty, counts if return_counts else empty


def unique_consecutive(
    input: Any, return_inverse: bool = False, return_counts: bool = False, dim: Any = None
) -> Any:
    """``Tensor.unique_consecutive``: collapses runs of equal consecutive values (of the
    flattened input, or of equal consecutive slices along ``dim``); results as ``unique``."""
    parts = _unique_consecutive_parts(input, return_inverse, return_counts, dim)
    return _unique_result(*parts, return_inverse, return_counts)


def _torch_unique_consecutive(*args: Any, **kwargs: Any) -> Any:
    """``torch.unique_consecutive``, the function: as the method, except that the parts it
    returns are picked by ``torch.functional``'s boolean dispatch, which reads the two flags
    swapped when they are positional (PyTorch 2.13: ``torch.unique_consecutive(x, True)``
    returns ``(output, counts)``, the counts empty as not asked for)."""
    parts = _unique_consecutive_parts(*args, **kwargs)
    inverse = kwargs["return_inverse"] if "return_inverse" in kwargs else args[2:3] == (True,)
    counts = kwargs["return_counts"] if "return_counts" in kwargs else args[1:2] == (True,)
    return _unique_result(*parts, bool(inverse), bool(counts))


def bincount(input: Any, weights: Any = None, minlength: Any = 0) -> np.ndarray:
    """``torch.bincount``: counts (int64) of each value of a 1-d non-negative integer input, with
    length ``max(input) + 1`` or ``minlength``. With ``weights``: sums of the weights, float32
    for float32 weights and float64 otherwise, accumulated in input order like PyTorch's loop."""
    a = _tensor(input)
    length = _index("torch.bincount", "minlength", minlength)
    if length < 0:
        raise RuntimeError("minlength should be >= 0")
    if a.ndim != 1 or a.dtype.kind not in "iu" or (a.size and a.min() < 0):
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    idx = a.astype(np.int64)
    size = max(length, int(idx.max()) + 1 if idx.size else 0)
    if weights is None or idx.size == 0:  # PyTorch: an empty input counts, whatever the weights
        return np.bincount(idx, minlength=size).astype(np.int64)
    w = _tensor(weights)
    if w.ndim != 1 or w.shape[0] != a.shape[0]:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    out = np.zeros(size, np.float32 if w.dtype == np.float32 else np.float64)
    np.add.at(out, idx, w.astype(out.dtype))
    return out


# ---------------------------------------------------------------------------------------------
# tie-sensitive


def topk(input: Any, k: Any, dim: Any = -1, largest: bool = True, sorted: bool = True) -> Any:
    """``torch.topk``: the ``k`` largest (``largest=False``: smallest) values along ``dim`` and
    their indices, largest first (smallest first), NaN largest. ``sorted=False`` leaves PyTorch's
    order unspecified (its partition order); here they come sorted, with a warning."""
    a = _tensor(input)
    _orderable("topk", a, bool_ok=False)
    d = _dim("torch.topk", -1 if dim is None else dim, a.ndim)
    k = _index("torch.topk", "k", k)
    x = _last(a, d)
    n = x.shape[-1]
    if not 0 <= k <= n:
        raise RuntimeError("selected index k out of range")
    if a.ndim == 0:  # PyTorch returns the element itself for k=0 too
        return return_types.topk(a.copy(), _i64(0))
    kx = _key(x)
    order = _argsort(kx, descending=largest)
    if k and _adjacent_equal(np.take_along_axis(kx, order, -1))[..., :k].any():
        _warn_ties("topk")
    if not sorted and k > 1:
        _warn_once(
            "topk(sorted=False)",
            "PyTorch leaves the k values in its partition's order; they are sorted here, so their "
            "order may differ from PyTorch's",
        )
    idx = order[..., :k]
    values = np.take_along_axis(x, idx, -1)
    return return_types.topk(_unlast(values, d, a.ndim), _unlast(_i64(idx), d, a.ndim))


def _sort(op: str, input: Any, dim: Any, descending: bool, stable: bool) -> return_types.sort:
    a = _tensor(input)
    _orderable(op, a, bool_ok=True)
    d = _dim(op, dim, a.ndim)
    x = _last(a, d)
    kx = _key(x)
    order = _argsort(kx, descending)
    if (
        not stable
        and x.shape[-1] > _INSERTION_SORT_MAX
        and _adjacent_equal(np.take_along_axis(kx, order, -1)).any()
    ):
        _warn_ties(op)
    values = np.take_along_axis(x, order, -1)
    return return_types.sort(_unlast(values, d, a.ndim), _unlast(_i64(order), d, a.ndim))


def sort(input: Any, dim: Any = -1, descending: bool = False, *, stable: Any = False) -> Any:
    """``torch.sort``: values and indices along ``dim``, NaN largest; equal values in index order
    (``stable=True`` is PyTorch's exactly, descending too)."""
    return _sort("sort", input, dim, descending, bool(stable))


def argsort(input: Any, dim: Any = -1, descending: bool = False, *, stable: Any = False) -> Any:
    """``torch.argsort``: the indices of ``torch.sort``."""
    return _sort("argsort", input, dim, descending, bool(stable)).indices


def msort(input: Any) -> np.ndarray:
    """``torch.msort``: the values of ``torch.sort`` along dim 0."""
    return _sort("msort", input, 0, False, True).values


def kthvalue(input: Any, k: Any, dim: Any = -1, keepdim: bool = False) -> Any:
    """``torch.kthvalue``: the ``k``-th smallest value (1-based) along ``dim`` and its index, NaN
    largest."""
    a = _tensor(input)
    _orderable("kthvalue", a, bool_ok=False)
    d = _dim("torch.kthvalue", -1 if dim is None else dim, a.ndim)
    k = _index("torch.kthvalue", "k", k)
    x = _last(a, d)
    if not 1 <= k <= x.shape[-1]:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    kx = _key(x)
    order = _argsort(kx, descending=False)
    if _adjacent_equal(np.take_along_axis(kx, order, -1))[..., max(k - 2, 0) : k].any():
        _warn_ties("kthvalue")
    idx = order[..., k - 1]
    values = np.take_along_axis(x, idx[..., None], -1)[..., 0]
    return return_types.kthvalue(
        _reduced(values, d, a.ndim, keepdim), _reduced(_i64(idx), d, a.ndim, keepdim)
    )


def median(input: Any, dim: Any = None, keepdim: bool = False) -> Any:
    """``torch.median``: the lower median (the ``(n - 1) // 2``-th smallest); NaN when there is a
    NaN. Without ``dim``: of all elements, a 0-d array (NaN for an empty float input). With
    ``dim``: values and indices along it, a NaN's index being the row's first NaN."""
    a = _tensor(input)
    _orderable("median", a, bool_ok=False)
    if dim is None:
        if keepdim:
            raise Unsupported("torch.median: keepdim without dim")
        flat = a.reshape(-1)
        kf = _key(flat)
        if flat.size == 0:
            if not _is_float(a):
                raise Unsupported("torch.median of an empty integer tensor (undefined in PyTorch)")
            return np.array(np.nan).astype(a.dtype)
        nan = _isnan(kf)
        i = np.argmax(nan) if nan.any() else np.argsort(kf, kind="stable")[(flat.size - 1) // 2]
        return flat[i : i + 1].reshape(())
    d = _dim("torch.median", dim, a.ndim)
    x = _last(a, d)
    _nonempty_dim("median", x, d)
    kx = _key(x)
    order = _argsort(kx, descending=False)
    k = (x.shape[-1] - 1) // 2
    nan = _isnan(kx)
    row_nan = nan.any(axis=-1)
    ties = _adjacent_equal(np.take_along_axis(kx, order, -1))[..., max(k - 1, 0) : k + 1]
    if (ties.any(axis=-1) & ~row_nan).any():
        _warn_ties("median")
    idx = np.where(row_nan, np.argmax(nan, axis=-1), order[..., k])
    values = np.take_along_axis(x, idx[..., None], -1)[..., 0]
    return return_types.median(
        _reduced(values, d, a.ndim, keepdim), _reduced(_i64(idx), d, a.ndim, keepdim)
    )


def mode(input: Any, dim: Any = -1, keepdim: bool = False) -> Any:
    """``torch.mode``: the most frequent value along ``dim`` (the smallest of equally frequent
    ones) and the index of its last occurrence, as PyTorch's sort-and-scan finds it."""
    a = _tensor(input)
    _orderable("mode", a, bool_ok=True)
    d = _dim("torch.mode", dim, a.ndim)
    x = _last(a, d)
    _nonempty_dim("mode", x, d)
    kx = _key(x)
    order = _argsort(kx, descending=False)
    s = np.take_along_axis(kx, order, -1)
    n = s.shape[-1]
    pos = np.arange(n)
    starts = np.ones(s.shape, bool)
    starts[..., 1:] = s[..., 1:] != s[..., :-1]  # a run of equal values; every NaN on its own
    run_start = np.maximum.accumulate(np.where(starts, pos, 0), axis=-1)
    ends = np.ones(s.shape, bool)
    ends[..., :-1] = starts[..., 1:]
    length = np.where(ends, pos - run_start + 1, 0)
    best = np.argmax(length, axis=-1)[..., None]  # the first longest run ends here
    if n > _INSERTION_SORT_MAX and (np.take_along_axis(length, best, -1) > 1).any():
        _warn_ties("mode")
    if _isnan(kx).any():
        _warn_once(
            "mode(NaN)",
            "the input has NaN, which PyTorch's mode sorts by a plain '<': the result may differ "
            "from PyTorch's",
        )
    idx = np.take_along_axis(order, best, -1)[..., 0]
    values = np.take_along_axis(x, idx[..., None], -1)[..., 0]
    return return_types.mode(
        _reduced(values, d, a.ndim, keepdim), _reduced(_i64(idx), d, a.ndim, keepdim)
    )


# ---------------------------------------------------------------------------------------------
# Python results


def _opmath(dtype: np.dtype) -> np.dtype:
    """The dtype PyTorch's CPU kernels compute ``dtype`` in: float32 for float16/bfloat16."""
    return np.dtype(np.float32) if dtype.itemsize < 4 else dtype


def allclose(
    input: Any, other: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:
    """``torch.allclose``: ``torch.isclose(...).all()`` — ``input == other`` or
    ``|input - other| <= atol + |rtol * other|`` (finite), broadcast, computed as PyTorch does:
    in the tensors' dtype (rounded to it after each step), integers and bools in float32; the
    two dtypes must match. Python bool."""
    a, b = _tensor(input), _tensor(other)
    if a.dtype != b.dtype:
        raise RuntimeError(f"{a.dtype} did not match {b.dtype}")
    if rtol < 0 or atol < 0:
        raise RuntimeError("rtol and atol must be greater than or equal to zero")
    ka, kb = _key(a), _key(b)
    close = ka == kb
    if equal_nan and _is_float(a):
        close |= _isnan(ka) & _isnan(kb)
    if rtol == 0 and atol == 0:
        return bool(close.all())
    if _is_float(a):
        dtype, op = a.dtype, _opmath(a.dtype)
        fa, fb = a.astype(op), b.astype(op)
    else:  # integers and bools: the default dtype, float32
        dtype = op = np.dtype(np.float32)
        fa, fb = ka.astype(op), kb.astype(op)
    with np.errstate(all="ignore"):  # inf - inf is NaN, not close, as in PyTorch
        rounded = (fb * op.type(rtol)).astype(dtype).astype(op)
        allowed = (np.abs(rounded) + op.type(atol)).astype(dtype).astype(op)
        actual = np.abs((fa - fb).astype(dtype).astype(op))
    close |= np.isfinite(actual) & (actual <= allowed)
    return bool(close.all())


def equal(input: Any, other: Any) -> bool:
    """``torch.equal``: same shape and all elements equal (NaN unequal; dtypes may differ).
    Python bool."""
    a, b = _key(_tensor(input)), _key(_tensor(other))
    return a.shape == b.shape and bool((a == b).all())


def is_nonzero(input: Any) -> bool:
    """``torch.is_nonzero``: the single element is not zero (NaN is nonzero). Python bool."""
    a = _key(_tensor(input))
    if a.size == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if a.size > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(a.reshape(()) != 0)


# ---------------------------------------------------------------------------------------------
# indexing


def _array_like(v: Any) -> bool:
    return hasattr(type(v), "__array__") and not isinstance(v, np.generic)


def _as_tuple(index: Any) -> tuple[Any, ...]:
    """The index as a tuple, like PyTorch: a short list holding tensors, sequences, slices,
    ``None`` or ``...`` is a tuple of indices (``t[[i, j]]`` is ``t[i, j]``); another list is an
    integer or bool index array."""
    if isinstance(index, tuple):
        return index
    if isinstance(index, list) and len(index) < 32:
        if any(
            _array_like(v) or isinstance(v, list | tuple | slice) or v is None or v is Ellipsis
            for v in index
        ):
            return tuple(index)
    return (index,)


def _item(v: Any) -> Any:
    """One index item: ``None``, ``...``, a slice, a Python int or bool, or an int64 or bool
    array (uint8 arrays are masks, as in PyTorch)."""
    if v is None or v is Ellipsis:
        return v
    if isinstance(v, slice):
        if v.step is not None and operator.index(v.step) <= 0:
            raise ValueError("step must be greater than zero")
        return v
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    arr = np.asarray(v)
    if isinstance(v, list | tuple) and arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype == np.uint8:
        arr = arr != 0
    if arr.dtype.kind not in "biu":
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    if arr.ndim == 0:  # a 0-d integer tensor selects like an int; a 0-d bool like True/False
        return bool(arr) if arr.dtype == np.bool_ else int(arr)
    return arr if arr.dtype == np.bool_ else arr.astype(np.int64)


def getitem(t: Any, index: Any) -> np.ndarray:
    """``t[index]`` with PyTorch's semantics: basic indexing as numpy; index arrays (int, or bool
    masks over one or more dims) as numpy's advanced indexing, except that integers are applied
    first, as selections (PyTorch: ``x[0, :, [0, 1]]`` has shape ``(3, 2)`` for ``x`` of shape
    ``(2, 3, 4)``; numpy says ``(2, 3)``), and ``True``/``False`` are a new dim of length 1/0."""
    a = _tensor(t)
    items = [_item(v) for v in _as_tuple(index)]
    if sum(v is Ellipsis for v in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")

    def used(v: Any) -> int:  # dims of ``a`` an item consumes
        if isinstance(v, np.ndarray):
            return v.ndim if v.dtype == np.bool_ else 1
        return 0 if v is None or v is Ellipsis or isinstance(v, bool) else 1

    rest = max(a.ndim - sum(used(v) for v in items), 0)
    items = [w for v in items for w in ([slice(None)] * rest if v is Ellipsis else [v])]
    if not any(isinstance(v, np.ndarray | bool) for v in items):
        return np.asarray(a[tuple(items)])
    # First ints, slices and None (basic indexing, as PyTorch applies them); then the index
    # arrays, and True/False as index [0]/[] into a new dim of length 1, on what is left.
    first: list[Any] = []
    second: list[Any] = []
    for v in items:
        if isinstance(v, np.ndarray):
            first += [slice(None)] * used(v)
            second.append(v)
        elif isinstance(v, bool):
            first.append(None)
            second.append(_i64([0] if v else []))
        elif isinstance(v, int):
            first.append(v)
        else:
            first.append(v)
            second.append(slice(None))
    return np.asarray(a[tuple(first)][tuple(second)])


# ---------------------------------------------------------------------------------------------
# registries


def _checked(
    name: str, fn: Callable[..., Any], like: Callable[..., Any] | None = None
) -> Callable[..., Any]:
    """``fn``, raising :class:`Unsupported` for arguments outside its signature (or ``like``'s):
    ``out=``, extra positionals, misspelt keywords."""
    sig = inspect.signature(like or fn)

    @functools.wraps(like or fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            sig.bind(*args, **kwargs)
        except TypeError as e:
            raise Unsupported(f"{name}: unsupported arguments ({e})") from None
        return fn(*args, **kwargs)

    return call


_OPS: dict[str, Callable[..., Any]] = {
    "nonzero": nonzero,
    "masked_select": masked_select,
    "unique": unique,
    "unique_consecutive": unique_consecutive,
    "argwhere": argwhere,
    "bincount": bincount,
    "topk": topk,
    "sort": sort,
    "argsort": argsort,
    "msort": msort,
    "kthvalue": kthvalue,
    "mode": mode,
    "median": median,
    "allclose": allclose,
    "equal": equal,
    "is_nonzero": is_nonzero,
}

FUNCTIONS: dict[str, Callable[..., Any]] = {
    f"torch.{name}": _checked(f"torch.{name}", fn) for name, fn in {**_OPS, "where": where}.items()
}
FUNCTIONS["torch.unique_consecutive"] = _checked(
    "torch.unique_consecutive", _torch_unique_consecutive, like=unique_consecutive
)
METHODS: dict[str, Callable[..., Any]] = {
    name: _checked(f"Tensor.{name}", fn) for name, fn in _OPS.items()
}
