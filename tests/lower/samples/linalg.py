"""Samples for linalg lowerings."""

from __future__ import annotations

import torch

from dycl_jax.compat import OpOverload
from tests.lower.samples import Sample, SampleFn

aten = torch.ops.aten

SAMPLES: dict[OpOverload, SampleFn] = {}

# float32 products: summation order differs between XLA and PyTorch's BLAS.
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _f(*shape):
    return torch.randn(shape)


def _i(*shape):
    return torch.randint(-5, 5, shape)


SAMPLES[aten.mm.default] = lambda: [
    Sample((_f(3, 4), _f(4, 5)), **TOL),
    Sample((_f(1, 7), _f(7, 1)), **TOL),
    Sample((_i(3, 4), _i(4, 2))),
    Sample((_f(0, 4), _f(4, 3))),
    Sample((_f(3, 0), _f(0, 2))),
    Sample((_f(64, 128), _f(128, 32)), rtol=1e-4, atol=1e-4),
    Sample((_f(3, 4).double(), _f(4, 5).double())),
]
SAMPLES[aten.bmm.default] = lambda: [
    Sample((_f(2, 3, 4), _f(2, 4, 5)), **TOL),
    Sample((_f(1, 1, 4), _f(1, 4, 1)), **TOL),
    Sample((_i(3, 2, 2), _i(3, 2, 3))),
    Sample((_f(0, 3, 4), _f(0, 4, 5))),
]
SAMPLES[aten.matmul.default] = lambda: [
    Sample((_f(2, 3, 4), _f(4, 5)), **TOL),  # broadcast batch
    Sample((_f(4), _f(4, 5)), **TOL),
    Sample((_f(2, 1, 3, 4), _f(5, 4, 2)), **TOL),
    Sample((_f(4), _f(4)), **TOL),
    Sample((_i(3, 4), _i(4))),
]
SAMPLES[aten.dot.default] = lambda: [
    Sample((_f(5), _f(5)), **TOL),
    Sample((_i(3), _i(3))),
    Sample((_f(0), _f(0))),
]
SAMPLES[aten.vdot.default] = lambda: [Sample((_f(5), _f(5)), **TOL)]
SAMPLES[aten.mv.default] = lambda: [
    Sample((_f(3, 4), _f(4)), **TOL),
    Sample((_i(2, 3), _i(3))),
    Sample((_f(0, 2), _f(2))),
]
SAMPLES[aten.addmm.default] = lambda: [
    Sample((_f(5), _f(3, 4), _f(4, 5)), **TOL),  # broadcast bias
    Sample((_f(3, 5), _f(3, 4), _f(4, 5)), {"beta": 0.5, "alpha": 2.0}, **TOL),
    Sample((torch.full((3, 1), float("nan")), _f(3, 4), _f(4, 1)), {"beta": 0}, **TOL),
    Sample((_i(1, 2), _i(3, 4), _i(4, 2)), {"beta": 2, "alpha": 3}),
    Sample((_f(2), _f(0, 3), _f(3, 2))),
    # alpha == 0: the product is not computed (inf in it gives no NaN), beta == 0 the bias
    Sample((_f(2, 2), torch.full((2, 3), float("inf")), _f(3, 2)), {"beta": 0, "alpha": 0}),
    Sample((_f(2, 2), torch.full((2, 3), float("inf")), _f(3, 2)), {"beta": 1, "alpha": 0}),
]
SAMPLES[aten.baddbmm.default] = lambda: [
    Sample((_f(2, 3, 5), _f(2, 3, 4), _f(2, 4, 5)), **TOL),
    Sample((_f(5), _f(2, 3, 4), _f(2, 4, 5)), {"beta": 0.0, "alpha": 0.5}, **TOL),
    Sample((_i(1, 3, 1), _i(2, 3, 4), _i(2, 4, 2)), {"beta": 2}),
]
SAMPLES[aten.addmv.default] = lambda: [
    Sample((_f(3), _f(3, 4), _f(4)), **TOL),
    Sample((_f(1), _f(3, 4), _f(4)), {"beta": 2.0, "alpha": -1.0}, **TOL),
]
SAMPLES[aten._cdist_forward.default] = lambda: [
    Sample((_f(3, 4), _f(5, 4), 2.0, None), **TOL),
    Sample((_f(2, 30, 4), _f(2, 40, 4), 2.0, None), rtol=1e-4, atol=1e-4),  # PyTorch's mm form
    Sample((_f(3, 4), _f(5, 4), 1.0, None), **TOL),
    Sample((_f(3, 4), _f(5, 4), 0.0, None)),
    Sample((_f(3, 4), _f(5, 4), float("inf"), None)),
    Sample((_f(3, 4), _f(5, 4), 3.0, None), **TOL),
]
