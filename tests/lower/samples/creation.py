"""Samples for creation lowerings."""

from __future__ import annotations

import torch

from dycl_jax.compat import OpOverload
from tests.lower.samples import Sample, SampleFn

aten = torch.ops.aten

SAMPLES: dict[OpOverload, SampleFn] = {}

_G = torch.Generator().manual_seed(2)
NAN, INF = float("nan"), float("inf")


def f(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=_G).to(dtype)


def i(*shape: int, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    return torch.randint(-100, 100, shape, generator=_G).to(dtype)


SAMPLES[aten.arange.default] = lambda: [
    Sample((5,)),
    Sample((0,)),
    Sample((1,)),
    Sample((4.5,)),
    Sample((7,), {"dtype": torch.float32}),
    Sample((6,), {"dtype": torch.int32}),
]
SAMPLES[aten.arange.start] = lambda: [
    Sample((2, 9)),
    Sample((-3, 3)),
    Sample((0.5, 4.0)),
    Sample((5, 5)),
    Sample((1, 6), {"dtype": torch.float64}),
]
SAMPLES[aten.arange.start_step] = lambda: [
    Sample((0, 10, 3)),
    Sample((10, 0, -3)),
    Sample((0.0, 1.0, 0.1)),
    Sample((-1.0, 1.0, 0.25), {"dtype": torch.float64}),
    Sample((1.0, 2.0, 1 / 3)),
    Sample((0, 100000, 7), {"dtype": torch.float32}),
    Sample((3, 3, 1)),
    Sample((0, 1000, 1), {"dtype": torch.int16}),
]
SAMPLES[aten.full.default] = lambda: [
    Sample(([2, 3], 1.5)),
    Sample(([4], 7)),
    Sample(([2, 2], True)),
    Sample(([0, 3], 1.0)),
    Sample(([], -2.0)),
    Sample(([3], INF)),
    Sample(([3], NAN)),
    Sample(([2, 3], 2.7), {"dtype": torch.int64}),
    Sample(([2], 3), {"dtype": torch.float64}),
]
SAMPLES[aten.full_like.default] = lambda: [
    Sample((f(2, 3), 1.5)),
    Sample((i(4), 7)),
    Sample((f(0, 3), 2.0)),
    Sample((f(), -1.0)),
    Sample((f(3), 2), {"dtype": torch.int32}),
    Sample((i(3), 0.5), {"dtype": torch.float64}),
    Sample((f(2), True), {"dtype": torch.bool}),
]
SAMPLES[aten.fill.Scalar] = lambda: [
    Sample((f(2, 3), 1.5)),
    Sample((i(4), 7)),
    Sample((i(4, dtype=torch.int32), 2.9)),
    Sample((f(0, 3), 2.0)),
    Sample((f(), -1.0)),
]
SAMPLES[aten.fill.Tensor] = lambda: [
    Sample((f(2, 3), torch.tensor(1.5))),
    Sample((i(4), torch.tensor(3))),
    Sample((f(3), torch.tensor(2, dtype=torch.int64))),
    Sample((f(0, 2), torch.tensor(1.0))),
]
SAMPLES[aten.empty.memory_format] = lambda: [
    Sample(([2, 3],), values=False),
    Sample(([0],), values=False),
    Sample(([],), values=False),
    Sample(([4],), {"dtype": torch.int32}, values=False),
    Sample(
        ([2, 2],), {"dtype": torch.bool, "memory_format": torch.contiguous_format}, values=False
    ),
]
SAMPLES[aten.empty_strided.default] = lambda: [
    Sample(([2, 3], [3, 1]), values=False),
    Sample(([2, 3], [1, 2]), {"dtype": torch.float64}, values=False),
    Sample(([0, 4], [4, 1]), values=False),
]
SAMPLES[aten.empty_permuted.default] = lambda: [
    Sample(([2, 3, 4], [0, 2, 1]), values=False),
    Sample(([2, 3], [1, 0]), {"dtype": torch.int64}, values=False),
]
SAMPLES[aten.scalar_tensor.default] = lambda: [
    Sample((1.5,)),
    Sample((3,)),
    Sample((True,)),
    Sample((-INF,)),
    Sample((2.5,), {"dtype": torch.float64}),
    Sample((7,), {"dtype": torch.int32}),
    Sample((0.1,), {"dtype": torch.float16}),
]


def _to_copy() -> list[Sample]:
    # no bfloat16 outputs: the harness compares through numpy, which has no bfloat16
    x = torch.tensor([-2.7, -0.5, 0.0, 0.5, 1.5, 2.7, 100.9])
    out = [Sample((f(3, 4),)), Sample((f(0, 2),), {"dtype": torch.float64})]
    for dt in (
        torch.float64,
        torch.float16,
        torch.int64,
        torch.int32,
        torch.int8,
        torch.bool,
    ):
        out.append(Sample((x,), {"dtype": dt}))
    for dt in (torch.float32, torch.float64, torch.int32, torch.int16, torch.bool, torch.uint8):
        out.append(Sample((i(3, 4),), {"dtype": dt}))
    out += [
        Sample((torch.tensor([NAN, INF, -INF, 0.0, -0.0]),), {"dtype": torch.bool}),
        Sample((torch.tensor([NAN, INF, -INF, 1e10]),), {"dtype": torch.float16}),
        Sample((f(3, dtype=torch.float64),), {"dtype": torch.float32}),
        Sample((torch.tensor([True, False]),), {"dtype": torch.float32}),
        Sample((torch.tensor(2**53 + 1),), {"dtype": torch.int64}),
    ]
    # out of range and NaN, as PyTorch's kernels convert on this machine (x86: the int32 or
    # int64 minimum, narrower ints wrap; XLA alone saturates)
    wild = [300.0, -1.0, 235.0, -200.0, 3e9, -3e9, NAN, INF, -INF, 1e20, -2.7, 70000.0]
    for src in (torch.float32, torch.float64, torch.float16):
        for dt in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
            out.append(Sample((torch.tensor(wild, dtype=src),), {"dtype": dt}))
    return out


SAMPLES[aten._to_copy.default] = _to_copy
SAMPLES[aten.lift_fresh_copy.default] = lambda: [
    Sample((f(2, 3),)),
    Sample((i(0),)),
    Sample((f(),)),
]
