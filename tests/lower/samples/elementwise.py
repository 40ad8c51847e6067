"""Samples for elementwise lowerings."""

from __future__ import annotations

import torch

from dycl_jax.compat import OpOverload
from tests.lower.samples import Sample, SampleFn

aten = torch.ops.aten

SAMPLES: dict[OpOverload, SampleFn] = {}

_G = torch.Generator().manual_seed(0)
NAN, INF = float("nan"), float("inf")


def f(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=_G).to(dtype)


def pos(*shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=_G) + 0.1


def i(*shape: int, lo: int = -7, hi: int = 8, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    return torch.randint(lo, hi, shape, generator=_G).to(dtype)


def b(*shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=_G) > 0.5


def special() -> torch.Tensor:
    return torch.tensor([NAN, INF, -INF, 0.0, -0.0, 1.5, -2.5, 0.5, 2.5, 1e-30])


def binary(ints: bool = True, bools: bool = False) -> list[Sample]:
    """Tensor-tensor samples: broadcasting, size 0/1, 0-d, mixed dtypes, NaN/inf."""
    out = [
        Sample((f(3, 4), f(3, 4))),
        Sample((f(2, 1, 4), f(3, 1))),
        Sample((f(0, 3), f(1, 3))),
        Sample((f(), f(2, 2))),
        Sample((f(3, dtype=torch.float64), f(3))),
        Sample((special(), special().flip(0))),
    ]
    if ints:
        out += [
            Sample((i(3, 4), i(3, 4, lo=1))),
            Sample((i(3, dtype=torch.int32), f(3))),
            Sample((i(2, 3, dtype=torch.int32), i(3, lo=1))),
        ]
    if bools:
        out += [Sample((b(4), b(4))), Sample((b(3), i(3)))]
    return out


def unary(lo: float | None = None, hi: float | None = None, ints: bool = True) -> list[Sample]:
    def dom(t: torch.Tensor) -> torch.Tensor:
        return t.clamp(lo, hi) if lo is not None or hi is not None else t

    out = [
        Sample((dom(f(3, 4) * 2),)),
        Sample((dom(f(0, 2)),)),
        Sample((dom(f()),)),
        Sample((dom(f(1, 5, dtype=torch.float64)),)),
        Sample((dom(special()),)),
    ]
    if ints:
        out += [Sample((dom(i(4).float()).long(),)), Sample((b(5),))]
    return out


SAMPLES[aten.add.Tensor] = lambda: [
    *binary(bools=True),
    Sample((f(3), f(3)), {"alpha": 0.5}),
    Sample((i(3), i(3)), {"alpha": 3}),
]
SAMPLES[aten.add.Scalar] = lambda: [Sample((f(3, 2), 1.5)), Sample((i(4), 2), {"alpha": 2})]
SAMPLES[aten.sub.Tensor] = lambda: [*binary(), Sample((f(3), f(3)), {"alpha": -2})]
SAMPLES[aten.sub.Scalar] = lambda: [Sample((f(3, 2), 1.5)), Sample((i(4), 2), {"alpha": 2})]
SAMPLES[aten.rsub.Tensor] = lambda: [*binary(), Sample((f(3), f(3)), {"alpha": 2})]
SAMPLES[aten.rsub.Scalar] = lambda: [Sample((f(3, 2), 1.5)), Sample((i(4), 2), {"alpha": 2})]
SAMPLES[aten.mul.Tensor] = lambda: binary(bools=True)
SAMPLES[aten.mul.Scalar] = lambda: [Sample((f(3, 2), 1.5)), Sample((i(4), 3)), Sample((b(3), 2))]


def _div() -> list[Sample]:
    zeros = torch.tensor([1.0, -1.0, 0.0, 5.0, -5.0])
    return [
        *binary(),
        Sample((zeros, torch.zeros(5))),
        Sample((i(5), i(5, lo=1) * torch.tensor([1, -1, 1, -1, 1]))),
        Sample((b(3), f(3))),
    ]


def _div_mode(mode: str | None) -> list[Sample]:
    return [Sample(s.args, {"rounding_mode": mode}) for s in _div()] + [
        Sample(
            (torch.tensor([7.0, -7.0, 7.5, -7.5, 0.0, 1.0, -1.0]), 2.0), {"rounding_mode": mode}
        ),
        Sample((torch.tensor([7.0, -7.0, 1.0, -1.0, 0.0]), -2.0), {"rounding_mode": mode}),
        Sample((torch.tensor([1.0, -1.0, 0.0]), torch.zeros(3)), {"rounding_mode": mode}),
        Sample(
            (torch.tensor([7, -7, 6, -6, 0]), torch.tensor([2, 2, -4, -4, 3])),
            {"rounding_mode": mode},
        ),
    ]


SAMPLES[aten.div.Tensor] = _div
SAMPLES[aten.div.Scalar] = lambda: [Sample((f(3), 2.5)), Sample((i(4), 2)), Sample((i(4), -3))]
SAMPLES[aten.div.Tensor_mode] = lambda: [
    Sample(
        (torch.tensor([-(2**63), 2**63 - 1, 5, -5]), torch.tensor([1, -1, -2, 2])),
        {"rounding_mode": "trunc"},
    ),
    Sample(
        (
            torch.tensor([-128, 127, 7], dtype=torch.int8),
            torch.tensor([3, -3, 7], dtype=torch.int8),
        ),
        {"rounding_mode": "trunc"},
    ),
    *_div_mode("floor"),
    *_div_mode("trunc"),
    *_div_mode(None),
]
SAMPLES[aten.div.Scalar_mode] = lambda: [
    Sample((t, s), {"rounding_mode": m})
    for m in ("floor", "trunc", None)
    for t, s in ((f(3, 4) * 5, 2.0), (f(3) * 5, -1.5), (i(6), 4), (i(6), -4), (i(6), 2.5))
]
SAMPLES[aten.floor_divide.default] = lambda: [
    Sample((torch.tensor([7.0, -7.0, 7.5, -7.5, 1.0]), torch.tensor([2.0, 2.0, -2.0, -2.0, 0.0]))),
    Sample((torch.tensor([7, -7, 6, -6, 0]), torch.tensor([2, 2, -4, -4, 3]))),
    Sample((f(2, 3) * 4, f(3))),
]
SAMPLES[aten.floor_divide.Scalar] = lambda: [Sample((f(4) * 4, 1.5)), Sample((i(6), -4))]


def _mod() -> list[Sample]:
    return [
        Sample((f(3, 4) * 5, f(3, 4))),
        Sample((f(2, 3) * 5, f(3))),
        Sample(
            (
                torch.tensor([5.0, -5.0, 5.0, -5.0, 0.0, 3.0]),
                torch.tensor([3.0, 3.0, -3.0, -3.0, 2.0, 0.0]),
            )
        ),
        Sample((torch.tensor([5, -5, 5, -5, 0, 7]), torch.tensor([3, 3, -3, -3, 2, 7]))),
        Sample((i(4, dtype=torch.int32), f(4) + 3)),
        Sample((f(0), f(1))),
    ]


def _mod_scalar() -> list[Sample]:
    return [
        Sample((f(3, 4) * 5, 1.5)),
        Sample((f(4) * 5, -2.0)),
        Sample((i(6), 3)),
        Sample((i(6), -3)),
    ]


SAMPLES[aten.remainder.Tensor] = _mod
SAMPLES[aten.remainder.Scalar] = _mod_scalar
SAMPLES[aten.fmod.Tensor] = _mod
SAMPLES[aten.fmod.Scalar] = _mod_scalar

SAMPLES[aten.pow.Tensor_Tensor] = lambda: [
    Sample((pos(3, 4), f(3, 4))),
    Sample((f(2, 3), torch.tensor([2.0, 3.0, 0.0]))),
    Sample((pos(0, 2), f(1, 2))),
    Sample((i(3, 4), i(3, 4, lo=0, hi=4))),
    Sample((i(3), pos(3))),
    # negative integer exponents: 1 for a base of 1, ±1 for -1, 0 otherwise (XLA: undefined)
    Sample(
        (torch.tensor([0, 1, -1, 2, -2, 3, -1, 5]), torch.tensor([-1, -3, -3, -2, -1, -5, -2, 3]))
    ),
    Sample(
        (torch.tensor([2, -1, 1], dtype=torch.int8), torch.tensor([-1, -1, -7], dtype=torch.int8))
    ),
]
SAMPLES[aten.pow.Tensor_Scalar] = lambda: [
    Sample((f(3, 4), 2)),
    Sample((f(3, 4), 3.0)),
    Sample((f(5), -2.0)),
    Sample((pos(3, 4), 0.5)),
    Sample((pos(3), -1.5)),
    Sample((special(), 2.0)),
    Sample((i(3, 4), 3)),
    Sample((i(3, 4, lo=0), 0.5)),
    Sample((f(0), 2)),
]
SAMPLES[aten.pow.Scalar] = lambda: [
    Sample((2.0, f(3, 4))),
    Sample((2, i(5, lo=0))),
    Sample((3, torch.tensor([-2, -1, 0, 2]))),
    Sample((-1, torch.tensor([-3, -2, 1]))),
    Sample((0.5, i(5))),
    Sample((3, f(0, 2))),
]
SAMPLES[aten.atan2.default] = lambda: binary(ints=False) + [Sample((i(4), i(4)))]
SAMPLES[aten.hypot.default] = lambda: binary(ints=False)
SAMPLES[aten.copysign.Tensor] = lambda: binary(ints=False) + [Sample((i(4), f(4)))]
SAMPLES[aten.copysign.Scalar] = lambda: [Sample((f(4), -1.0)), Sample((i(4), -2))]
SAMPLES[aten.maximum.default] = lambda: binary(bools=True)
SAMPLES[aten.minimum.default] = SAMPLES[aten.maximum.default]
SAMPLES[aten.fmax.default] = lambda: binary(ints=False)
SAMPLES[aten.fmin.default] = SAMPLES[aten.fmax.default]


def _clamp() -> list[Sample]:
    return [
        Sample((f(3, 4), -0.5, 0.5)),
        Sample((f(3, 4),), {"min": 0.0}),
        Sample((f(3, 4),), {"max": 0.1}),
        Sample((f(5), 1.0, -1.0)),  # min > max: everything becomes max
        Sample((special(), -1.0, 1.0)),
        Sample((i(6), -2, 3)),
        Sample((i(6), -2.5, 3.5)),
        Sample((f(0, 3), 0.0, 1.0)),
    ]


SAMPLES[aten.clamp.default] = _clamp
SAMPLES[aten.clamp.Tensor] = lambda: [
    Sample((f(3, 4), f(3, 4) - 0.5, f(3, 4) + 0.5)),
    Sample((f(3, 4),), {"min": f(4)}),
    Sample((f(3, 4),), {"max": f(3, 1)}),
    Sample((f(3), torch.ones(3), -torch.ones(3))),
    Sample((i(5), i(5), i(5) + 2)),
]
SAMPLES[aten.clamp_min.default] = lambda: [
    Sample((f(3, 4), 0.0)),
    Sample((i(5), 2)),
    Sample((special(), 0.5)),
]
SAMPLES[aten.clamp_max.default] = SAMPLES[aten.clamp_min.default]
SAMPLES[aten.clamp_min.Tensor] = lambda: [Sample((f(3, 4), f(4))), Sample((i(5), i(1)))]
SAMPLES[aten.clamp_max.Tensor] = SAMPLES[aten.clamp_min.Tensor]
SAMPLES[aten.where.self] = lambda: [
    Sample((b(3, 4), f(3, 4), f(3, 4))),
    Sample((b(3, 1), f(4), f(3, 4))),
    Sample((b(4), i(4), f(4))),
    Sample((b(0, 2), f(0, 2), f(1))),
    Sample((b(2, 3), b(2, 3), b(2, 3))),
    Sample((b(3), f(3), torch.tensor(0.0))),
]

# unary, same dtype
SAMPLES[aten.neg.default] = lambda: unary()[:-1]
SAMPLES[aten.abs.default] = lambda: unary()[:-1]
SAMPLES[aten.sign.default] = unary
SAMPLES[aten.floor.default] = lambda: unary()[:-1]
SAMPLES[aten.ceil.default] = lambda: unary()[:-1]
SAMPLES[aten.trunc.default] = lambda: unary()[:-1]
SAMPLES[aten.round.default] = lambda: [*unary()[:-1], Sample((torch.arange(-5, 6) / 2,))]
SAMPLES[aten.round.decimals] = lambda: (
    [Sample((f(3, 4) * 100,), {"decimals": d}) for d in (0, 1, 2, -1, -2)]
    + [
        Sample((torch.tensor([0.125, 0.375, 1.25, 15.0, 25.0]),), {"decimals": d})
        for d in (2, 1, -1)
    ]
)
SAMPLES[aten.relu.default] = lambda: unary()[:-1]

# unary, floating result
SAMPLES[aten.exp.default] = unary
SAMPLES[aten.exp2.default] = unary
SAMPLES[aten.expm1.default] = unary
SAMPLES[aten.log.default] = unary
SAMPLES[aten.log2.default] = unary
SAMPLES[aten.log10.default] = unary
SAMPLES[aten.log1p.default] = unary
SAMPLES[aten.sqrt.default] = unary
SAMPLES[aten.rsqrt.default] = unary
SAMPLES[aten.reciprocal.default] = unary
SAMPLES[aten.sin.default] = unary
SAMPLES[aten.cos.default] = unary
SAMPLES[aten.tan.default] = unary
SAMPLES[aten.asin.default] = unary
SAMPLES[aten.acos.default] = unary
SAMPLES[aten.atan.default] = unary
SAMPLES[aten.sinh.default] = unary
SAMPLES[aten.cosh.default] = unary
SAMPLES[aten.asinh.default] = unary
SAMPLES[aten.acosh.default] = unary
SAMPLES[aten.atanh.default] = unary
SAMPLES[aten.tanh.default] = unary
SAMPLES[aten.sigmoid.default] = unary
SAMPLES[aten.erf.default] = unary
SAMPLES[aten.erfinv.default] = lambda: unary(-1.0, 1.0)
SAMPLES[aten.lgamma.default] = lambda: unary(0.1, None)
SAMPLES[aten.digamma.default] = lambda: unary(0.1, None)
SAMPLES[aten.i0.default] = unary


# activations
def _finite_special() -> torch.Tensor:
    return torch.tensor([NAN, 0.0, -0.0, 1.5, -2.5, 0.5, 2.5, 1e-30, 30.0, -30.0])


# PyTorch's float32 CPU gelu returns NaN for +inf (a SIMD artifact: float64 gives inf); we give inf.
SAMPLES[aten.gelu.default] = lambda: [
    *unary(ints=False)[:-1],
    Sample((_finite_special(),)),
    *(Sample((f(3, 4) * 3,), {"approximate": "tanh"}) for _ in range(1)),
    Sample((_finite_special(),), {"approximate": "tanh"}),
    Sample((f(0, 2),), {"approximate": "tanh"}),
]
SAMPLES[aten.leaky_relu.default] = lambda: [
    *unary(ints=False),
    Sample((f(3, 4), 0.2)),
    Sample((f(3), -1.5)),
]
SAMPLES[aten.elu.default] = lambda: [
    *unary(ints=False),
    Sample((f(3, 4), 0.5)),
    Sample((f(3, 4), 1.6732632423543772, 1.0507009873554805)),  # selu's constants
    Sample((f(3, 4), 1.0, 1.0, 2.0)),
]
SAMPLES[aten.hardtanh.default] = lambda: [
    *unary(ints=False),
    Sample((f(3, 4) * 8, 0.0, 6.0)),
    Sample((f(3), -0.5, 0.25)),
]

# predicates and comparisons
SAMPLES[aten.isnan.default] = unary
SAMPLES[aten.isinf.default] = unary
SAMPLES[aten.signbit.default] = lambda: unary()[:-1]


def _cmp() -> list[Sample]:
    x = torch.tensor([1.0, NAN, 2.0, -INF, 3.0])
    return [*binary(bools=True), Sample((x, x.flip(0))), Sample((x, x))]


def _cmp_scalar() -> list[Sample]:
    return [
        Sample((f(3, 4), 0.0)),
        Sample((torch.tensor([1.0, NAN, 2.0, 0.1]), 0.1)),
        Sample((i(6), 2)),
        Sample((i(6), 1.5)),
        Sample((b(4), True)),
        Sample((f(0), 1)),
    ]


for _op in ("eq", "ne", "lt", "le", "gt", "ge"):
    SAMPLES[getattr(aten, _op).Tensor] = _cmp
    SAMPLES[getattr(aten, _op).Scalar] = _cmp_scalar


def _logical2() -> list[Sample]:
    return [
        Sample((b(3, 4), b(3, 4))),
        Sample((b(2, 1), b(3))),
        Sample((f(4), torch.tensor([0.0, 1.0, NAN, -0.0]))),
        Sample((i(5), b(5))),
        Sample((b(0), b(1))),
    ]


SAMPLES[aten.logical_and.default] = _logical2
SAMPLES[aten.logical_or.default] = _logical2
SAMPLES[aten.logical_xor.default] = _logical2
SAMPLES[aten.logical_not.default] = lambda: [
    Sample((b(3, 4),)),
    Sample((torch.tensor([0.0, 1.0, NAN, -0.0]),)),
    Sample((i(5),)),
    Sample((b(0),)),
]


# bitwise
def _bitwise() -> list[Sample]:
    return [
        Sample((b(3, 4), b(3, 4))),
        Sample((i(3, 4, lo=-100, hi=100), i(3, 4, lo=-100, hi=100))),
        Sample((i(2, 1, dtype=torch.int32), i(3))),
        Sample((i(4, lo=0, hi=255, dtype=torch.uint8), i(4, lo=0, hi=255, dtype=torch.uint8))),
        Sample((i(0), i(1))),
    ]


def _bitwise_scalar() -> list[Sample]:
    return [
        Sample((i(3, 4, lo=-100, hi=100), 5)),
        Sample((b(4), True)),
        Sample((i(3, dtype=torch.int16), -3)),
    ]


for _op in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    SAMPLES[getattr(aten, _op).Tensor] = _bitwise
    SAMPLES[getattr(aten, _op).Scalar] = _bitwise_scalar
SAMPLES[aten.bitwise_not.default] = lambda: [Sample(s.args[:1]) for s in _bitwise()]


def _shift() -> list[Sample]:
    return [
        Sample((i(3, 4, lo=-100, hi=100), i(3, 4, lo=0, hi=8))),
        Sample((i(2, 1, dtype=torch.int32), i(3, lo=0, hi=31, dtype=torch.int32))),
        Sample((i(4, lo=0, hi=255, dtype=torch.uint8), i(4, lo=0, hi=8, dtype=torch.uint8))),
    ]


def _shift_scalar() -> list[Sample]:
    return [Sample((i(3, 4, lo=-100, hi=100), 3)), Sample((i(5, dtype=torch.int8), 1))]


for _op in ("__lshift__", "__rshift__"):
    SAMPLES[getattr(aten, _op).Tensor] = _shift
    SAMPLES[getattr(aten, _op).Scalar] = _shift_scalar
for _op in ("bitwise_left_shift", "bitwise_right_shift"):
    SAMPLES[getattr(aten, _op).Tensor] = _shift
    SAMPLES[getattr(aten, _op).Tensor_Scalar] = _shift_scalar
