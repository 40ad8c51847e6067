"""dycl_jax.portable.hostops: the torch-free host ops agree with PyTorch on the same data — values,
dtypes, shapes and result structure — for inputs without ties, and say so when ties may differ."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np
import pytest
import torch

from dycl_jax.portable import hostops
from dycl_jax.portable.hostops import FUNCTIONS, METHODS, Unsupported, getitem

NAN = float("nan")
FLOATS = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
NUMERIC = [torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.uint8]


def to_np(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


def assert_like(got: Any, want: Any) -> None:
    """``got`` (hostops) is ``want`` (torch): same structure, shapes, dtypes and values."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, np.ndarray), type(got)
        assert got.shape == tuple(want.shape)
        assert got.dtype == to_np(want).dtype
        if want.dtype == torch.bfloat16:
            got, want = got.astype(np.float32), want.float()
        np.testing.assert_array_equal(got, want.numpy())
    elif isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        if hasattr(want, "_fields") or type(want).__module__ == "torch.return_types":
            assert type(got).__name__ == type(want).__name__
            named: Any = got
            assert_like(named.values, want.values)  # type: ignore[attr-defined]
            assert_like(named.indices, want.indices)  # type: ignore[attr-defined]
        for g, w in zip(got, want):
            assert_like(g, w)
    else:
        assert type(got) is type(want) and got == want


def distinct(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Values without ties (negative ones too where the dtype has them)."""
    n = int(np.prod(shape))
    g = torch.Generator().manual_seed(seed)
    t = torch.randperm(n, generator=g)
    if dtype.is_floating_point or dtype in (torch.int64, torch.int32):
        t = t - n // 2
    return t.reshape(shape).to(dtype)


def with_nan(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``t`` with one NaN in each row along ``dim`` (at different positions)."""
    t = t.clone().movedim(dim, -1)
    n = t.shape[-1]
    rows = t.reshape(-1, n)
    for r in range(rows.shape[0]):
        rows[r, (3 * r + 1) % n] = NAN
    return rows.reshape(t.shape).movedim(-1, dim)


def np_args(args: Any) -> Any:
    return [to_np(a) if isinstance(a, torch.Tensor) else a for a in args]


def both(name: str, t: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``FUNCTIONS['torch.<name>'](numpy t, ...)`` and ``torch.<name>(t, ...)``."""
    got = FUNCTIONS[f"torch.{name}"](to_np(t), *np_args(args), **kwargs)
    return got, getattr(torch, name)(t, *args, **kwargs)


def check(name: str, t: torch.Tensor, *args: Any, **kwargs: Any) -> None:
    """Function and method forms against torch."""
    got, want = both(name, t, *args, **kwargs)
    assert_like(got, want)
    got = METHODS[name](to_np(t), *np_args(args), **kwargs)
    assert_like(got, getattr(t, name)(*args, **kwargs))


@pytest.fixture
def warnings_seen() -> Any:
    """The dycl_jax warnings logged during a test (pytest runs with ``-p no:logging``)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.WARNING)
    log = logging.getLogger("dycl_jax")
    log.addHandler(handler)
    hostops._warned.clear()
    yield records
    log.removeHandler(handler)
    hostops._warned.clear()


SHAPES_DIMS = [((7,), 0), ((7,), -1), ((3, 5), 1), ((3, 5), 0), ((2, 3, 4), -2), ((2, 3, 4), 2)]


# ----------------------------------------------------------------------------- tie-sensitive


@pytest.mark.parametrize("dtype", NUMERIC + [torch.float64])
@pytest.mark.parametrize("shape,dim", SHAPES_DIMS)
@pytest.mark.parametrize("largest", [True, False])
def test_topk(dtype: torch.dtype, shape: tuple[int, ...], dim: int, largest: bool) -> None:
    t = distinct(shape, dtype)
    for k in (0, 1, shape[dim]):
        check("topk", t, k, dim=dim, largest=largest)
    assert_like(*both("topk", t, 2, dim, largest))


@pytest.mark.parametrize("largest", [True, False])
def test_topk_nan_and_unsorted(largest: bool, warnings_seen: Any) -> None:
    t = with_nan(distinct((4, 9), torch.float32), 1)
    check("topk", t, 3, largest=largest)
    check("topk", t, 9, largest=largest)
    got, want = both("topk", distinct((4, 40), torch.float32), 5, sorted=False)
    order = np.argsort(got.indices, -1)
    w_order = want.indices.argsort(-1)
    np.testing.assert_array_equal(
        np.take_along_axis(got.indices, order, -1), want.indices.gather(-1, w_order)
    )
    np.testing.assert_array_equal(
        np.take_along_axis(got.values, order, -1), want.values.gather(-1, w_order)
    )
    assert [r.getMessage().split(":")[0] for r in warnings_seen] == ["topk(sorted=False)"]


def test_topk_edge_shapes() -> None:
    check("topk", torch.zeros(3, 0), 0, dim=1)
    check("topk", torch.zeros(0, 4), 2, dim=1)
    check("topk", torch.tensor(3.0), 1)
    check("topk", torch.tensor(3.0), 0)
    with pytest.raises(RuntimeError):
        FUNCTIONS["torch.topk"](np.zeros(3), 4)
    with pytest.raises(TypeError):
        FUNCTIONS["torch.topk"](np.zeros(3, bool), 1)
    with pytest.raises(IndexError):
        FUNCTIONS["torch.topk"](np.zeros((2, 3)), 1, dim=2)


@pytest.mark.parametrize("dtype", NUMERIC + [torch.bool])
@pytest.mark.parametrize("shape,dim", SHAPES_DIMS + [((0,), 0), ((2, 0, 3), 1), ((), 0)])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_argsort(
    dtype: torch.dtype, shape: tuple[int, ...], dim: int, descending: bool
) -> None:
    t = distinct(shape, dtype)
    # bool has ties: only stable sorts compare exactly (and short rows, see test_sort_short_ties)
    for stable in (True,) if dtype == torch.bool else (False, True):
        check("sort", t, dim=dim, descending=descending, stable=stable)
        check("argsort", t, dim=dim, descending=descending, stable=stable)
    assert_like(*both("sort", t, dim=dim, descending=descending))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int64])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_stable_ties_exact(dtype: torch.dtype, descending: bool, warnings_seen: Any) -> None:
    g = torch.Generator().manual_seed(1)
    t = torch.randint(0, 4, (3, 50), generator=g).to(dtype)
    if dtype.is_floating_point:
        t[:, ::7] = NAN
        t[0, 3] = -0.0
    check("sort", t, dim=1, descending=descending, stable=True)
    check("argsort", t, dim=-1, descending=descending, stable=True)
    check("sort", t, dim=0, descending=descending, stable=True)
    assert_like(*both("sort", torch.tensor([1.0, 3, 3, 2, 3]), descending=True, stable=True))
    assert warnings_seen == []


@pytest.mark.parametrize("n", [2, 5, 16])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_short_ties(n: int, descending: bool, warnings_seen: Any) -> None:
    # PyTorch's unstable CPU sort is an insertion sort (stable) for rows of up to 16
    t = torch.randint(0, 3, (6, n), generator=torch.Generator().manual_seed(n)).float()
    t[1, 0] = NAN
    check("sort", t, -1, descending)
    check("argsort", t, -1, descending)
    assert warnings_seen == []


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool])
@pytest.mark.parametrize("shape", [(5,), (4, 3), (3, 2, 2), (0, 3)])
def test_msort(dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    check("msort", distinct(shape, dtype))


def test_sort_nan() -> None:
    t = torch.tensor([[1.0, NAN, 3, NAN, 2], [NAN, 0, -1, 5, 4]])
    for descending in (False, True):
        check("sort", t, dim=1, descending=descending, stable=True)
        check("argsort", t, dim=1, descending=descending, stable=True)
    check("msort", t.T)


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("shape,dim", SHAPES_DIMS + [((), 0), ((0, 3), 1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_kthvalue(dtype: torch.dtype, shape: tuple[int, ...], dim: int, keepdim: bool) -> None:
    t = distinct(shape, dtype)
    n = t.reshape(1).shape[0] if t.dim() == 0 else t.shape[dim]
    for k in {1, (n + 1) // 2, n}:
        check("kthvalue", t, k, dim, keepdim)
    check("kthvalue", t, 1, dim=dim, keepdim=keepdim)


def test_kthvalue_nan_and_errors() -> None:
    t = with_nan(distinct((3, 6), torch.float32), 1)
    for k in range(1, 7):
        check("kthvalue", t, k)
    for k in (0, 7):
        with pytest.raises(RuntimeError):
            FUNCTIONS["torch.kthvalue"](to_np(t), k)
    with pytest.raises(TypeError):
        FUNCTIONS["torch.kthvalue"](np.zeros(2, bool), 1)


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("shape,dim", SHAPES_DIMS + [((), 0), ((6,), 0), ((0, 3), 1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_median(dtype: torch.dtype, shape: tuple[int, ...], dim: int, keepdim: bool) -> None:
    t = distinct(shape, dtype)
    check("median", t, dim, keepdim)
    check("median", t, dim=dim, keepdim=keepdim)
    if t.numel():
        check("median", t)


@pytest.mark.parametrize("dtype", FLOATS)
def test_median_nan(dtype: torch.dtype) -> None:
    t = distinct((4, 7), dtype)
    t[1, 2] = t[1, 5] = t[3, 0] = NAN
    check("median", t, 1)
    check("median", t, 0, True)
    check("median", t)
    check("median", t[0])
    check("median", torch.tensor([], dtype=dtype))


def test_median_errors() -> None:
    with pytest.raises(IndexError):
        FUNCTIONS["torch.median"](np.zeros((3, 0)), 1)
    with pytest.raises(TypeError):
        FUNCTIONS["torch.median"](np.zeros(3, bool))
    with pytest.raises(Unsupported, match="median"):
        FUNCTIONS["torch.median"](np.zeros(0, np.int64))


@pytest.mark.parametrize("dtype", NUMERIC + [torch.bool])
@pytest.mark.parametrize("shape,dim", SHAPES_DIMS + [((), 0), ((0, 3), 1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_mode(dtype: torch.dtype, shape: tuple[int, ...], dim: int, keepdim: bool) -> None:
    if dtype == torch.bool:
        t = distinct(shape, torch.int64) % 3 == 0
    else:
        t = distinct(shape, dtype)
    check("mode", t, dim, keepdim)
    check("mode", t, dim=dim, keepdim=keepdim)


@pytest.mark.parametrize("n", [1, 4, 9, 16])
def test_mode_repeats_short_rows(n: int, warnings_seen: Any) -> None:
    # PyTorch's mode: the smallest of the most frequent values, at its last index (rows <= 16)
    t = torch.randint(0, 4, (8, n), generator=torch.Generator().manual_seed(n))
    check("mode", t)
    check("mode", t.float(), 1, True)
    check("mode", t.half().T, 0)
    assert warnings_seen == []


# ----------------------------------------------------------------------------- tie warnings


@pytest.mark.parametrize(
    "name,args,kwargs",
    [
        ("topk", (1,), {}),
        ("topk", (2,), {"largest": False}),
        ("kthvalue", (1,), {}),
        ("median", (0,), {}),
        ("sort", (), {}),
        ("argsort", (), {"descending": True}),
        ("mode", (), {}),
    ],
)
def test_tie_warning_once(
    name: str, args: tuple[Any, ...], kwargs: Any, warnings_seen: Any
) -> None:
    ties = np.zeros(40, np.float32)
    out = METHODS[name](ties, *args, **kwargs)
    assert len(warnings_seen) == 1
    record = warnings_seen[0]
    assert record.levelno == logging.WARNING and record.name == "dycl_jax"
    assert name in record.getMessage() and "may differ from PyTorch" in record.getMessage()
    FUNCTIONS[f"torch.{name}"](ties[:20], *args, **kwargs)
    assert len(warnings_seen) == 1  # once per op
    # still a well-formed result: the lowest index first
    if name in ("topk", "sort", "argsort"):
        first = out if name == "argsort" else out.indices
        assert first[0] == 0


def test_no_tie_warning_without_ties(warnings_seen: Any) -> None:
    t = to_np(distinct((5, 40), torch.float32))
    for name, args in [("topk", (3,)), ("kthvalue", (2,)), ("median", (1,)), ("sort", ())]:
        METHODS[name](t, *args)
    METHODS["mode"](t)
    # ties outside the selected values do not matter
    METHODS["topk"](np.array([5.0, 4, 1, 1, 1]), 2)
    METHODS["kthvalue"](np.array([5.0, 4, 1, 1, 1]), 5)
    # a median over a row with NaN is the first NaN, whatever the ties
    METHODS["median"](np.array([np.nan, 1, 1, np.nan]), 0)
    assert warnings_seen == []


# ----------------------------------------------------------------------------- data-dependent


NONZERO_INPUTS = [
    torch.tensor([0.0, 1.5, 0, -2, NAN]),
    torch.tensor([[True, False], [False, True], [True, True]]),
    torch.tensor([[[0, 1], [2, 0]], [[0, 0], [3, 4]]], dtype=torch.int32),
    torch.tensor([[0.0, 1], [0, 0]], dtype=torch.float16),
    torch.tensor([[0.0, 1], [0, 0]], dtype=torch.bfloat16),
    torch.zeros(0, 3),
    torch.zeros(2, 3),
    torch.tensor(5.0),
    torch.tensor(0.0),
]


@pytest.mark.parametrize("t", NONZERO_INPUTS)
def test_nonzero_argwhere_where(t: torch.Tensor) -> None:
    check("nonzero", t)
    check("nonzero", t, as_tuple=True)
    check("argwhere", t)
    assert_like(FUNCTIONS["torch.where"](to_np(t)), torch.where(t))


@pytest.mark.parametrize(
    "shape,mask_shape",
    [((2, 3), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 4)), ((0, 3), (3,))],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.bool])
def test_masked_select(
    shape: tuple[int, ...], mask_shape: tuple[int, ...], dtype: torch.dtype
) -> None:
    t = distinct(shape, dtype)
    mask = torch.rand(mask_shape, generator=torch.Generator().manual_seed(2)) > 0.4
    assert_like(
        FUNCTIONS["torch.masked_select"](to_np(t), mask.numpy()), torch.masked_select(t, mask)
    )
    assert_like(METHODS["masked_select"](to_np(t), mask.numpy()), t.masked_select(mask))
    with pytest.raises(RuntimeError):
        FUNCTIONS["torch.masked_select"](to_np(t), mask.numpy().astype(np.int64))


UNIQUE_INPUTS = [
    torch.tensor([3, 1, 2, 3, 1, 5, 0, 0]),
    torch.tensor([[2.0, NAN, 1], [2, 1, NAN]]),
    torch.tensor([[1.5, 0.5], [1.5, 0.5], [0.5, 1.5], [0.5, 1.5], [1.5, 0.5]], dtype=torch.float16),
    torch.tensor([[1.5, 0.5], [1.5, 0.5], [0.5, 1.5]], dtype=torch.bfloat16),
    torch.tensor([True, False, True, True]),
    torch.tensor([[[1, 2], [1, 2]], [[0, 1], [1, 2]], [[1, 2], [1, 2]]], dtype=torch.int32),
    torch.zeros(0),
    torch.zeros(0, 3),
    torch.tensor(4.0),
]
FLAGS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("t", UNIQUE_INPUTS)
@pytest.mark.parametrize("inverse,counts", FLAGS)
def test_unique(t: torch.Tensor, inverse: bool, counts: bool) -> None:
    for sorted_ in (True, False):
        check("unique", t, sorted_, inverse, counts)
    check("unique", t, return_inverse=inverse, return_counts=counts)
    check("unique_consecutive", t, inverse, counts)
    check("unique_consecutive", t, return_inverse=inverse, return_counts=counts)
    for dim in range(-t.dim(), t.dim()):
        if t.numel() == 0 and t.shape[dim] != 0:
            continue  # PyTorch refuses: "0 sized dimensions ... aren't selected"
        if t.isnan().any():
            continue  # PyTorch orders slices with NaN by a plain '<' (test_unique_dim_nan)
        check("unique", t, return_inverse=inverse, return_counts=counts, dim=dim)
        check("unique", t, False, inverse, counts, dim)
        check("unique_consecutive", t, inverse, counts, dim)


def test_unique_dim_nan(warnings_seen: Any) -> None:
    t = torch.tensor([[2.0, NAN], [2.0, NAN], [1.0, 3.0]])
    check("unique_consecutive", t, True, True, 0)  # no sort: exact, NaN slices all distinct
    assert warnings_seen == []
    got = FUNCTIONS["torch.unique"](t.numpy(), dim=0, return_counts=True)
    assert got[0].shape == (3, 2) and got[1].tolist() == [1, 1, 1]
    assert [r.getMessage().split(":")[0] for r in warnings_seen] == ["unique(dim)"]


def test_unique_errors() -> None:
    with pytest.raises(RuntimeError):
        FUNCTIONS["torch.unique"](np.zeros((3, 0)), dim=0)
    with pytest.raises(IndexError):
        FUNCTIONS["torch.unique"](np.array(1.0), dim=0)


@pytest.mark.parametrize(
    "values", [[0, 1, 1, 4, 2, 1], [3], [], [0, 0, 0]], ids=["mixed", "one", "empty", "zeros"]
)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.int8])
@pytest.mark.parametrize("minlength", [0, 3, 8])
def test_bincount(values: list[int], dtype: torch.dtype, minlength: int) -> None:
    t = torch.tensor(values, dtype=dtype)
    check("bincount", t, minlength=minlength)
    check("bincount", t, None, minlength)
    g = torch.Generator().manual_seed(3)
    for wdtype in [torch.float32, torch.float64, torch.float16, torch.int64]:
        w = (torch.randn(len(values), generator=g) * 10).to(wdtype)
        got = FUNCTIONS["torch.bincount"](to_np(t), to_np(w), minlength)
        assert_like(got, torch.bincount(t, w, minlength))
        assert_like(METHODS["bincount"](to_np(t), weights=to_np(w)), t.bincount(weights=w))


def test_bincount_float32_sums_in_order() -> None:
    w = torch.tensor([1e8, 1.0, -1e8, 1.0, 0.1, 3.3], dtype=torch.float32)
    t = torch.zeros(6, dtype=torch.int64)
    assert_like(FUNCTIONS["torch.bincount"](t.numpy(), w.numpy()), torch.bincount(t, w))


@pytest.mark.parametrize(
    "bad", [np.array([-1, 2]), np.array([[1]]), np.array([1.0]), np.array([True])]
)
def test_bincount_errors(bad: np.ndarray) -> None:
    with pytest.raises(RuntimeError):
        FUNCTIONS["torch.bincount"](bad)


# ----------------------------------------------------------------------------- Python results


ALLCLOSE_PAIRS = [
    (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.00001])),
    (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0001])),
    (torch.tensor([1.0, 1e-9]), torch.tensor([1.0, 0.0])),
    (torch.tensor([NAN, 1.0]), torch.tensor([NAN, 1.0])),
    (torch.tensor([float("inf")]), torch.tensor([float("inf")])),
    (torch.tensor([float("inf")]), torch.tensor([-float("inf")])),
    (torch.tensor([[1.0], [2.0]]), torch.tensor([1.0, 2.0])),
    (
        torch.tensor([1000.0, 1.0], dtype=torch.float16),
        torch.tensor([1001.0, 1.0], dtype=torch.float16),
    ),
    (torch.tensor([2048.0], dtype=torch.float16), torch.tensor([2050.0], dtype=torch.float16)),
    (torch.tensor([256.0], dtype=torch.bfloat16), torch.tensor([258.0], dtype=torch.bfloat16)),
    (torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.0 + 1e-12], dtype=torch.float64)),
    (torch.tensor([100000000]), torch.tensor([100001000])),
    (torch.tensor([100000000]), torch.tensor([100002000])),
    (torch.tensor([3], dtype=torch.uint8), torch.tensor([5], dtype=torch.uint8)),
    (torch.tensor([True, False]), torch.tensor([True, False])),
    (torch.tensor([True, False]), torch.tensor([True, True])),
    (torch.zeros(0), torch.zeros(0)),
]


@pytest.mark.parametrize("a,b", ALLCLOSE_PAIRS)
@pytest.mark.parametrize(
    "kwargs", [{}, {"rtol": 0.0, "atol": 0.0}, {"rtol": 1e-3}, {"atol": 2.0}, {"equal_nan": True}]
)
def test_allclose(a: torch.Tensor, b: torch.Tensor, kwargs: Any) -> None:
    check("allclose", a, b, **kwargs)
    check("allclose", b, a, **kwargs)


def test_allclose_dtype_mismatch() -> None:
    with pytest.raises(RuntimeError):
        FUNCTIONS["torch.allclose"](np.zeros(2, np.float32), np.zeros(2))


@pytest.mark.parametrize(
    "a,b",
    [
        (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])),
        (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5])),
        (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0], dtype=torch.float64)),
        (torch.tensor([1, 2]), torch.tensor([1.0, 2.0])),
        (torch.zeros(2), torch.zeros(1)),
        (torch.zeros(2, 1), torch.zeros(2)),
        (torch.tensor([NAN]), torch.tensor([NAN])),
        (torch.tensor([1.5], dtype=torch.bfloat16), torch.tensor([1.5], dtype=torch.bfloat16)),
        (torch.zeros(0), torch.zeros(0)),
    ],
)
def test_equal(a: torch.Tensor, b: torch.Tensor) -> None:
    check("equal", a, b)


@pytest.mark.parametrize(
    "t",
    [
        torch.tensor(0.0),
        torch.tensor([2.0]),
        torch.tensor([[NAN]]),
        torch.tensor([-0.0]),
        torch.tensor(False),
        torch.tensor([3], dtype=torch.uint8),
        torch.tensor([0.0], dtype=torch.bfloat16),
    ],
)
def test_is_nonzero(t: torch.Tensor) -> None:
    check("is_nonzero", t)


@pytest.mark.parametrize("t", [torch.zeros(0), torch.zeros(2)])
def test_is_nonzero_ambiguous(t: torch.Tensor) -> None:
    with pytest.raises(RuntimeError, match="ambiguous"):
        FUNCTIONS["torch.is_nonzero"](t.numpy())


# ----------------------------------------------------------------------------- getitem


def _mask(shape: tuple[int, ...], seed: int = 4) -> Callable[[Any], Any]:
    m = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) > 0.5
    return lambda conv: conv(m)


def _ints(values: Any) -> Callable[[Any], Any]:
    t = torch.tensor(values)
    return lambda conv: conv(t)


def _T(item: Any) -> Callable[[Any], Any]:
    return lambda conv: item


# Each index: a tuple (or one item) of builders, given a converter for tensor items
GETITEM_CASES: list[Any] = [
    _mask((2, 3, 4)),
    _mask((2,)),
    _mask((2, 3)),
    (_T(slice(None)), _mask((3,))),
    (_T(Ellipsis), _mask((4,))),
    (_T(0), _mask((3,))),
    (_T(slice(None)), _mask((3, 4))),
    _ints([1, 0, 1]),
    _ints([[0, 1], [1, 1]]),
    _ints([-1]),
    (_T(0), _T(slice(None)), _ints([0, 1])),
    (_T(1), _ints([2, 0]), _T(slice(1, None))),
    (_ints([0, 1]), _T(0), _ints([0, 3])),
    (_ints([0, 1]), _T(slice(None)), _ints([0, 3])),
    (_ints([[0], [1]]), _T(slice(None)), _ints([1, 2, 3])),
    (_T(slice(None)), _ints([0, 2]), _ints([1, 3])),
    (_T(None), _T(0), _ints([1, 2])),
    (_T(0), _T(None), _T(slice(None)), _ints([1, 2])),
    (_T(0), _T(Ellipsis), _ints([1, 2])),
    (_ints(1), _T(slice(None)), _ints([0, 1])),
    (_T(True), _ints([0, 1])),
    (_T(0), _T(True)),
    _T(False),
    (_mask((2,)), _T(slice(None, 2)), _ints([3, 0])),
    (_T(slice(None)), _T(slice(None)), _mask((4,), seed=5)),
    _T([]),
    (_T(Ellipsis), _T(None), _mask((4,))),
    (_T(slice(0, 2)), _T(1), _T(2)),
]


@pytest.mark.parametrize("case", range(len(GETITEM_CASES)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.bool])
def test_getitem(case: int, dtype: torch.dtype) -> None:
    t = distinct((2, 3, 4), dtype)
    spec = GETITEM_CASES[case]
    if isinstance(spec, tuple):
        torch_index: Any = tuple(b(lambda x: x) for b in spec)
        np_index: Any = tuple(b(lambda x: x.numpy()) for b in spec)
    else:
        torch_index, np_index = spec(lambda x: x), spec(lambda x: x.numpy())
    assert_like(getitem(to_np(t), np_index), t[torch_index])


def test_getitem_lists_and_uint8() -> None:
    t = distinct((3, 4), torch.float32)
    x = t.numpy()
    for index in (
        [0, 2],
        [[0, 1], [2, 3]],
        [True, False, True],
        [np.array([0, 1]), np.array([1, 2])],
    ):
        torch_index = [torch.tensor(i) if isinstance(i, np.ndarray) else i for i in index]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch deprecates a list as a tuple of indices
            want = t[torch_index]
        assert_like(getitem(x, index), want)
    mask = np.array([1, 0, 1], np.uint8)  # a uint8 index is a mask in PyTorch (deprecated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = t[torch.from_numpy(mask)]
    assert_like(getitem(x, mask), want)
    with pytest.raises(ValueError, match="step"):
        getitem(x, slice(None, None, -1))
    with pytest.raises(IndexError):
        getitem(x, np.array([True, False]))
    with pytest.raises(IndexError):
        getitem(x, np.array([0.5]))


# ----------------------------------------------------------------------------- API


def test_result_types() -> None:
    x = np.array([[3.0, 1.0, 2.0]], np.float32)
    for name, args in [
        ("topk", (2,)),
        ("sort", ()),
        ("kthvalue", (1,)),
        ("mode", ()),
        ("median", (1,)),
    ]:
        r = FUNCTIONS[f"torch.{name}"](x, *args)
        v, i = r
        assert type(r).__name__ == name and r[0] is r.values is v and r[1] is r.indices is i
        assert i.dtype == np.int64
    assert FUNCTIONS["torch.median"](x).shape == ()
    assert type(FUNCTIONS["torch.equal"](x, x)) is bool


def test_registries() -> None:
    names = {"nonzero", "masked_select", "unique", "unique_consecutive", "argwhere", "bincount"}
    names |= {"topk", "sort", "argsort", "msort", "kthvalue", "mode", "median"}
    names |= {"allclose", "equal", "is_nonzero"}
    assert set(METHODS) == names
    assert set(FUNCTIONS) == {f"torch.{n}" for n in names | {"where"}}


@pytest.mark.parametrize(
    "call",
    [
        lambda: FUNCTIONS["torch.sort"](np.zeros(3), out=None),
        lambda: FUNCTIONS["torch.where"](np.zeros(3, bool), np.zeros(3), np.ones(3)),
        lambda: FUNCTIONS["torch.topk"](np.zeros(3), 1, dim="N"),
        lambda: METHODS["nonzero"](np.zeros(3), True),
        lambda: FUNCTIONS["torch.median"](np.zeros(3), keepdim=True),
    ],
)
def test_unsupported(call: Callable[[], Any]) -> None:
    with pytest.raises(Unsupported, match=r"torch\.|Tensor\."):
        call()


def test_jax_inputs() -> None:
    import jax.numpy as jnp

    x = jnp.asarray([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    t = torch.tensor(np.asarray(x))
    assert_like(FUNCTIONS["torch.topk"](x, 2, jnp.asarray(1)), torch.topk(t, 2, 1))
    assert_like(FUNCTIONS["torch.nonzero"](x > 1), torch.nonzero(t > 1))
    assert_like(getitem(x, x > 1), t[t > 1])


def test_imports_without_torch() -> None:
    code = "import sys; sys.modules['torch'] = None; import dycl_jax.portable.hostops"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
