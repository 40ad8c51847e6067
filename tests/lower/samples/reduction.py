"""Samples for reduction lowerings."""

from __future__ import annotations

import torch

from dycl_jax.compat import OpOverload
from tests.lower.samples import Sample, SampleFn

aten = torch.ops.aten

SAMPLES: dict[OpOverload, SampleFn] = {}

_G = torch.Generator().manual_seed(1)
NAN, INF = float("nan"), float("inf")


def f(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=_G).to(dtype)


def i(*shape: int, lo: int = -7, hi: int = 8, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    return torch.randint(lo, hi, shape, generator=_G).to(dtype)


def b(*shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=_G) > 0.5


def distinct(*shape: int) -> torch.Tensor:
    """Distinct values (so tie-breaking of sort/topk/arg* does not matter)."""
    n = 1
    for s in shape:
        n *= s
    return (torch.randperm(n, generator=_G).float() - n // 2).reshape(shape)


def with_nan() -> torch.Tensor:
    return torch.tensor([[1.0, NAN, 3.0], [2.0, -1.0, 0.5], [NAN, INF, -INF]])


def dims_samples(
    dtypes: tuple[torch.dtype, ...] = (torch.float32,), empty: bool = True
) -> list[Sample]:
    """(x, dim, keepdim) for dim lists: all, one, negative, several, []."""
    out = []
    for dt in dtypes:
        mk = (
            (lambda *s, dt=dt: f(*s).to(dt) * 3)
            if dt.is_floating_point
            else (lambda *s, dt=dt: i(*s).to(dt))
        )
        out += [
            Sample((mk(3, 4), [1])),
            Sample((mk(3, 4), [-1], True)),
            Sample((mk(2, 3, 4), [0, 2])),
            Sample((mk(2, 3, 4), [-3, 1], True)),
            Sample((mk(2, 3), [])),
            Sample((mk(2, 3), None, True)),
            Sample((mk(1, 5), [0])),
            Sample((mk(), [0])),
        ]
        if empty:
            out += [Sample((mk(0, 3), [0])), Sample((mk(0, 3), [1], True))]
    return out


SAMPLES[aten.sum.dim_IntList] = lambda: [
    *dims_samples((torch.float32, torch.float64, torch.int32, torch.int64)),
    Sample((b(3, 4), [1])),
    Sample((i(4, 5, dtype=torch.int8, lo=100, hi=127), [1])),  # int8 inputs sum in int64
    Sample((f(3, 4), [1]), {"dtype": torch.float64}),
    Sample((i(3, 4), [0]), {"dtype": torch.float32}),
    Sample((f(3, 4, dtype=torch.float16), [1]), rtol=1e-3, atol=1e-3),  # float16 output rounding
]
SAMPLES[aten.sum.default] = lambda: [
    Sample((f(3, 4),)),
    Sample((i(3, 4, dtype=torch.int32),)),
    Sample((b(7),)),
    Sample((f(0, 2),)),
    Sample((f(),)),
    Sample((i(3),), {"dtype": torch.float64}),
]
SAMPLES[aten.mean.dim] = lambda: [
    *dims_samples((torch.float32, torch.float64)),
    Sample((f(3, 4), [1]), {"dtype": torch.float64}),
]
SAMPLES[aten.mean.default] = lambda: [
    Sample((f(3, 4),)),
    Sample((f(2, 3, dtype=torch.float64),)),
    Sample((f(),)),
    Sample((f(0),)),
    Sample((f(4),), {"dtype": torch.float64}),
]
SAMPLES[aten.prod.dim_int] = lambda: [
    Sample((f(3, 4), 1)),
    Sample((f(3, 4), -1, True)),
    Sample((i(3, 4, lo=-3, hi=4), 0)),
    Sample((b(3, 4), 1)),
    Sample((f(0, 3), 0)),
    Sample((f(), 0)),
    Sample((i(3, 4, dtype=torch.int32, lo=1, hi=5), 1), {"dtype": torch.float64}),
]
SAMPLES[aten.prod.default] = lambda: [
    Sample((f(3, 4),)),
    Sample((i(3, 4, lo=-3, hi=4),)),
    Sample((b(4),)),
    Sample((f(0),)),
    Sample((f(),)),
]


def _var() -> list[Sample]:
    base = dims_samples((torch.float32, torch.float64), empty=False)
    out = []
    for s in base:
        x, dim, *keep = s.args
        for corr in (None, 0, 1, 2.5):
            out.append(Sample((x, dim), {"correction": corr, "keepdim": bool(keep and keep[0])}))
    out += [
        Sample((f(1, 4), [0]), {"correction": 1}),  # n - correction = 0 -> nan (0/0)
        Sample((f(2, 3), [0]), {"correction": 4}),  # n - correction < 0: divided by 0 -> inf
        Sample((f(2, 3), None), {"correction": 6}),
        Sample((with_nan(), [1])),
        Sample((f(0, 3), [0])),
    ]
    return out


SAMPLES[aten.var.correction] = _var
SAMPLES[aten.var.dim] = lambda: [
    Sample((f(3, 4) * 2, [1])),
    Sample((f(3, 4), [0], False)),
    Sample((f(2, 3, 4), [-1, 0], True, True)),
    Sample((f(5, dtype=torch.float64), None)),
]
SAMPLES[aten.var_mean.correction] = lambda: [
    Sample((f(3, 4) * 2, [1])),
    Sample((f(3, 4),), {"correction": 0}),
    Sample((f(2, 3, 4), [-1, 0]), {"keepdim": True, "correction": 2}),
    Sample((f(5, dtype=torch.float64), None)),
]


def _extrema_dims() -> list[Sample]:
    samples = dims_samples((torch.float32, torch.int64, torch.int32), empty=False)
    return [
        *(s for s in samples if s.args[1] is not None),  # amax's dim is int[], never None
        Sample((b(3, 4), [1])),
        Sample((with_nan(), [1])),
        Sample((with_nan(), [0], True)),
        Sample((f(0, 3), [1])),
    ]


SAMPLES[aten.amax.default] = _extrema_dims
SAMPLES[aten.amin.default] = _extrema_dims


def _extrema_all() -> list[Sample]:
    return [
        Sample((f(3, 4),)),
        Sample((i(5),)),
        Sample((b(4),)),
        Sample((with_nan(),)),
        Sample((f(),)),
    ]


SAMPLES[aten.max.default] = _extrema_all
SAMPLES[aten.min.default] = _extrema_all


def _argdim(bools: bool = True) -> list[Sample]:
    ties = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, -1.0]])
    out = [
        Sample((f(3, 4), 1)),
        Sample((f(3, 4), -2, True)),
        Sample((f(2, 3, 4), 1)),
        Sample((i(4, 6, lo=-2, hi=2), 1)),  # many ties: first occurrence wins
        Sample((ties, 1)),
        Sample((ties, 0, True)),
        Sample((with_nan(), 1)),
        Sample((with_nan(), 0)),
        Sample((f(1, 5), 0)),
        Sample((f(), 0)),
        Sample((f(0, 3), 1)),
    ]
    return out


SAMPLES[aten.argmax.default] = lambda: [
    *_argdim(),
    Sample((f(3, 4),)),
    Sample((f(3, 4), None, True)),
]
SAMPLES[aten.argmin.default] = SAMPLES[aten.argmax.default]
SAMPLES[aten.max.dim] = _argdim
SAMPLES[aten.min.dim] = _argdim


def _bool_red() -> list[Sample]:
    return [
        Sample((b(3, 4),)),
        Sample((f(3, 4),)),
        Sample((torch.tensor([[0.0, NAN], [0.0, 0.0]]),)),
        Sample((i(3, 4, lo=0, hi=2),)),
        Sample((b(0, 3),)),
        Sample((torch.ones(2, 2, dtype=torch.bool),)),
    ]


def _bool_dim(dims: bool) -> list[Sample]:
    out = []
    for s in _bool_red():
        x = s.args[0]
        for d in ([0], [-1], [0, 1], []) if dims else (0, -1):
            out.append(Sample((x, d)))
            out.append(Sample((x, d, True)))
    if dims:
        out.append(Sample((b(3, 4), None)))
    return out


for _op in (aten.any, aten.all):
    SAMPLES[_op.default] = _bool_red
    SAMPLES[_op.dim] = lambda: _bool_dim(False)
    SAMPLES[_op.dims] = lambda: _bool_dim(True)


def _scan() -> list[Sample]:
    return [
        Sample((f(3, 4), 1)),
        Sample((f(3, 4), -2)),
        Sample((f(2, 3, 4, dtype=torch.float64), 2)),
        Sample((i(3, 4, lo=-3, hi=4), 0)),
        Sample((i(3, 4, dtype=torch.int32, lo=-3, hi=4), 1)),
        Sample((b(3, 4), 1)),
        Sample((f(0, 3), 0)),
        Sample((f(), 0)),
        Sample((with_nan(), 1)),
    ]


SAMPLES[aten.cumsum.default] = lambda: [*_scan(), Sample((f(3, 4), 1), {"dtype": torch.float64})]
SAMPLES[aten.cumprod.default] = lambda: [*_scan(), Sample((i(3, 4), 1), {"dtype": torch.float64})]
SAMPLES[aten.logcumsumexp.default] = lambda: (
    [s for s in _scan() if s.args[0].is_floating_point()]
    + [
        Sample((torch.tensor([-INF, -INF, 0.0, -INF]), 0)),
    ]
)


def _cumext() -> list[Sample]:
    ties = torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0], [2.0, NAN, -1.0, NAN, 5.0]])
    return [*_scan(), Sample((ties, 1)), Sample((i(4, 6, lo=-2, hi=2), 1))]


SAMPLES[aten.cummax.default] = _cumext
SAMPLES[aten.cummin.default] = _cumext


def _softmax() -> list[Sample]:
    return [
        Sample((f(3, 4) * 5, 1, False)),
        Sample((f(3, 4) * 5, -2, False)),
        Sample((f(2, 3, 4, dtype=torch.float64), 2, False)),
        Sample((torch.tensor([[0.0, -INF, 1.0], [-INF, -INF, -INF]]), 1, False)),
        Sample((torch.tensor([[1000.0, 0.0, -1000.0]]), 1, False)),
        Sample((f(0, 3), 1, False)),
        Sample((f(1, 3), 0, False)),
        Sample((f(), 0, False)),
    ]


SAMPLES[aten._softmax.default] = _softmax
SAMPLES[aten._log_softmax.default] = _softmax
SAMPLES[aten.logsumexp.default] = lambda: [
    *[Sample((s.args[0], [s.args[1]])) for s in _softmax()],
    Sample((f(2, 3, 4), [0, 2], True)),
    Sample((torch.tensor([[INF, 0.0], [-INF, -INF]]), [1])),
]


def _sort() -> list[Sample]:
    x = distinct(3, 5)
    return [
        Sample((x,)),
        Sample((x, 0)),
        Sample((x, -1, True)),
        Sample((distinct(2, 3, 4), 1, True)),
        Sample((i(4, 6, lo=-2, hi=2), 1)),  # ties: stable order
        Sample((i(4, 6, lo=-2, hi=2), 1, True)),
        Sample((b(9),)),
        Sample((b(9), 0, True)),
        Sample((torch.tensor([3.0, NAN, -1.0, INF, NAN, -INF, 0.0]),)),
        Sample((torch.tensor([3.0, NAN, -1.0, INF, NAN, -INF, 0.0]), 0, True)),
        Sample((f(0, 3), 0)),
        Sample((f(),)),
    ]


SAMPLES[aten.sort.default] = _sort
SAMPLES[aten.sort.stable] = lambda: [
    Sample(
        (s.args[0],), {"stable": st, "dim": s.args[1] if len(s.args) > 1 else -1, "descending": d}
    )
    for s in _sort()
    for st in (True, None)
    for d in (False, True)
]


def _topk() -> list[Sample]:
    # sorted=False is not sampled: PyTorch then returns an unspecified order (we return sorted)
    x = distinct(4, 6)
    return [
        Sample((x, 3)),
        Sample((x, 2, 0)),
        Sample((x, 1, -1, False)),
        Sample((x, 6, 1, True, True)),
        Sample((x, 0)),
        Sample((distinct(2, 3, 5), 2, 1, False)),
        Sample((distinct(7).long(), 3)),
        Sample((torch.tensor([3.0, NAN, -1.0, INF, -INF, 0.0]), 2)),
        Sample((torch.tensor([3.0, NAN, -1.0, INF, -INF, 0.0]), 2, 0, False)),
        Sample((f(0, 3), 2)),
        Sample((f(), 1)),
    ]


SAMPLES[aten.topk.default] = _topk
SAMPLES[aten.kthvalue.default] = lambda: [
    Sample((distinct(4, 6), 2)),
    Sample((distinct(4, 6), 1, 0, True)),
    Sample((distinct(4, 6), 4, -2)),
    Sample((distinct(7).long(), 7)),
    Sample((f(), 1)),
]
SAMPLES[aten.median.dim] = lambda: [
    Sample((distinct(4, 6), 1)),
    Sample((distinct(4, 5), 0, True)),
    Sample((distinct(3, 4, 5), -1)),
    Sample((distinct(7).long(), 0)),
    Sample((torch.tensor([[3.0, NAN, -1.0, 2.0], [1.0, 2.0, 3.0, 4.0]]), 1)),
    Sample((f(), 0)),
]
SAMPLES[aten.mode.default] = lambda: [
    Sample((torch.tensor([[1.0, 2.0, 2.0, 3.0, 3.0, 0.0], [5.0, 5.0, 1.0, 1.0, 1.0, 5.0]]), 1)),
    Sample((i(5, 7, lo=0, hi=3),)),
    Sample((i(5, 7, lo=0, hi=3), 0, True)),
    Sample((i(2, 6, 3, lo=-2, hi=2), 1, True)),
    Sample((b(4, 5), -1)),
    Sample((f(3, 4), 1)),  # all distinct: the smallest value
    Sample((f(1, 4), 0)),
    Sample((f(),)),
]
SAMPLES[aten.median.default] = lambda: [
    Sample((distinct(4, 6),)),
    Sample((distinct(5),)),
    Sample((i(9),)),
    Sample((with_nan(),)),
    Sample((f(),)),
]


def _norm() -> list[Sample]:
    out = []
    for ord_ in (2, 1, 3, 0.5, 0, float("inf"), float("-inf"), -1):
        out += [
            Sample((f(3, 4), ord_)),
            Sample((f(3, 4), ord_, [1])),
            Sample((f(2, 3, 4), ord_, [0, -1], True)),
        ]
    out += [
        Sample((f(3, 4, dtype=torch.float64),)),
        Sample((f(0, 3), 2, [0])),
        Sample((f(), 2)),
        Sample((torch.zeros(3),)),
        Sample((f(3, 4),), {"dtype": torch.float64}),
        Sample((f(3, 4), 2, []), {}),
    ]
    return out


SAMPLES[aten.linalg_vector_norm.default] = _norm
