"""Samples for indexing lowerings."""

from __future__ import annotations

import torch

from dycl_jax.compat import OpOverload
from tests.lower.samples import Sample, SampleFn

aten = torch.ops.aten

SAMPLES: dict[OpOverload, SampleFn] = {}


def _f(*shape):
    return torch.randn(shape)


def _i(*shape, lo=-5, hi=5):
    return torch.randint(lo, hi, shape)


def _b(*shape):
    return torch.rand(shape) > 0.5


def _perm_index(shape, dim, size):
    """Distinct indices along ``dim`` (scatter-set with duplicates is nondeterministic)."""
    dim = dim % len(shape)
    moved = list(shape)
    n = moved.pop(dim)
    rows = [torch.randperm(size)[:n] for _ in range(max(1, int(torch.tensor(moved).prod())))]
    return torch.stack(rows).reshape(*moved, n).movedim(-1, dim)


SAMPLES[aten.gather.default] = lambda: [
    Sample((_f(4, 5), 1, _i(4, 3, lo=0, hi=5))),
    Sample((_f(4, 5), 0, _i(2, 5, lo=0, hi=4))),
    Sample((_i(3, 4, 5), -1, _i(2, 3, 7, lo=0, hi=5))),  # index smaller in other dims
    Sample((_b(3, 4), 1, _i(3, 2, lo=0, hi=4))),
    Sample((_f(3, 4), 1, _i(3, 0, lo=0, hi=4))),
    Sample((_f(), 0, torch.tensor(0))),
]

SAMPLES[aten.scatter.src] = lambda: [
    Sample((_f(4, 5), 1, _perm_index((4, 3), 1, 5), _f(4, 3))),
    Sample((_f(4, 5), 0, _perm_index((3, 5), 0, 4), _f(3, 6))),  # src larger than index
    Sample((_i(3, 4, 5), -1, _perm_index((2, 3, 4), -1, 5), _i(2, 3, 4))),
    Sample((_b(3, 4), 1, _perm_index((3, 2), 1, 4), _b(3, 2))),
    Sample((_f(3, 4), 0, _i(0, 4, lo=0, hi=3), _f(0, 4))),
]
SAMPLES[aten.scatter.value] = lambda: [
    Sample((_f(4, 5), 1, _i(4, 3, lo=0, hi=5), 2.5)),
    Sample((_i(3, 4), 0, _i(2, 4, lo=0, hi=3), 7)),
    Sample((_b(3, 4), -1, _i(3, 2, lo=0, hi=4), True)),
]
SAMPLES[aten.scatter.reduce] = lambda: [
    Sample((_f(4, 5), 1, _i(4, 6, lo=0, hi=5), _f(4, 6)), {"reduce": "add"}, rtol=1e-5, atol=1e-5),
    Sample((_f(4, 5), 0, _i(3, 5, lo=0, hi=4), _f(3, 5)), {"reduce": "multiply"}),
    Sample((_i(4, 5), 0, _i(3, 5, lo=0, hi=4), _i(3, 5)), {"reduce": "add"}),
]
SAMPLES[aten.scatter.value_reduce] = lambda: [
    Sample((_f(4, 5), 1, _i(4, 6, lo=0, hi=5), 1.5), {"reduce": "add"}),
    Sample((_f(4, 5), 0, _i(3, 5, lo=0, hi=4), 2.0), {"reduce": "multiply"}),
]
SAMPLES[aten.scatter_add.default] = lambda: [
    # duplicate indices: float sums in a different order
    Sample((_f(4, 5), 1, _i(4, 6, lo=0, hi=5), _f(4, 6)), atol=1e-5),
    Sample((_f(4, 5), -2, _i(6, 5, lo=0, hi=4), _f(7, 5)), atol=1e-5),
    Sample((_i(4, 5), 0, _i(3, 2, lo=0, hi=4), _i(3, 5))),
    Sample((_f(4), 0, _i(0, lo=0, hi=4), _f(0))),
]


def _scatter_reduce_samples():
    out = []
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            kw = {"include_self": include_self}
            out += [
                Sample((_f(4, 5), 1, _i(4, 6, lo=0, hi=5), _f(4, 6), reduce), kw, atol=1e-5),
                Sample((_i(5, 3), 0, _i(4, 3, lo=0, hi=5), _i(4, 3), reduce), kw),
            ]
    return out


SAMPLES[aten.scatter_reduce.two] = _scatter_reduce_samples

SAMPLES[aten.index.Tensor] = lambda: [
    Sample((_f(4, 5), [_i(3, lo=-4, hi=4)])),  # negative indices wrap
    Sample((_f(4, 5), [None, _i(2, 3, lo=0, hi=5)])),
    Sample((_f(4, 5), [_i(3, lo=0, hi=4), _i(3, lo=0, hi=5)])),
    Sample((_f(4, 5, 6), [_i(2, 1, lo=0, hi=4), None, _i(3, lo=0, hi=6)])),  # split: adv first
    Sample((_i(4, 5, 6), [None, _i(2, 1, lo=0, hi=5), _i(3, lo=0, hi=6)])),  # adjacent: stays
    Sample((_b(4, 5), [_i(0, lo=0, hi=4)])),
    Sample((_f(4, 5, 6), [None, None, _i(2, lo=-6, hi=6)])),
    Sample((_f(4, 1), [_i(4, 1, lo=0, hi=4), torch.zeros(1, 3, dtype=torch.long)])),
]

SAMPLES[aten.index_put.default] = lambda: [
    Sample((_f(4, 5), [_perm_index((3,), 0, 4)], _f(3, 5))),
    Sample((_f(4, 5), [None, _perm_index((2,), 0, 5) - 5], _f(1))),  # negative, broadcast
    Sample((_f(4, 5), [_i(6, lo=-4, hi=4)], _f(6, 5), True), atol=1e-5),  # accumulate dups
    Sample((_i(4, 5), [_i(3, lo=0, hi=4), _i(3, lo=0, hi=5)], _i(3), True)),
    Sample((_f(4, 5), [_b(4, 5)], torch.tensor(0.5))),  # mask, scalar value
    Sample((_f(4, 5), [_b(4)], _f(5))),  # mask on dim 0, row value
    Sample((_f(4, 5), [None, _b(5)], _f(4, 1), True)),
    Sample((_b(3, 2), [_b(3, 2)], torch.tensor(True))),
    Sample((_f(4, 5), [_i(0, lo=0, hi=4)], _f(0, 5))),
]

SAMPLES[aten.index_select.default] = lambda: [
    Sample((_f(4, 5), 0, _i(3, lo=0, hi=4))),
    Sample((_f(4, 5), -1, _i(7, lo=0, hi=5))),  # (negative indices raise in PyTorch)
    Sample((_i(2, 3, 4), 1, _i(0, lo=0, hi=3))),
    Sample((_b(3, 2), 0, torch.tensor(1))),  # 0-d index keeps the dim
    Sample((_f(), 0, torch.tensor([0]))),
]

SAMPLES[aten.embedding.default] = lambda: [
    Sample((_f(10, 4), _i(2, 5, lo=0, hi=10))),
    Sample((_f(10, 4), _i(7, lo=0, hi=10), 0)),  # padding_idx only matters for gradients
    Sample((_f(3, 2), _i(0, lo=0, hi=3))),
    Sample((_f(3, 2), torch.tensor(2))),
]

SAMPLES[aten.select_scatter.default] = lambda: [
    Sample((_f(4, 5), _f(5), 0, 1)),
    Sample((_f(4, 5), _f(4), -1, -2)),
    Sample((_i(2, 3, 4), _i(2, 4), 1, 0)),
    Sample(
        (
            _b(
                3,
            ),
            _b(),
            0,
            2,
        )
    ),
]

SAMPLES[aten.slice_scatter.default] = lambda: [
    Sample((_f(6, 5), _f(2, 5), 0, 1, 3)),
    Sample((_f(6, 5), _f(6, 2), 1, -2, 2**63 - 1)),
    Sample((_f(6, 5), _f(3, 5), 0, None, None, 2)),
    Sample((_i(6), _i(0), 0, 4, 2)),
    Sample((_f(4, 5), _i(4, 5))),  # cast to self's dtype, full slice
]

SAMPLES[aten.index_add.default] = lambda: [
    Sample((_f(5, 3), 0, _i(4, lo=0, hi=5), _f(4, 3)), atol=1e-5),
    Sample((_f(5, 3), -1, _i(2, lo=0, hi=3), _f(5, 2)), {"alpha": 2.0}, atol=1e-5),
    Sample((_i(5, 3), 0, _i(6, lo=0, hi=5), _i(6, 3))),
]

SAMPLES[aten.masked_scatter.default] = lambda: [
    Sample((_f(4, 5), _b(4, 5), _f(20))),
    Sample((_f(4, 5), _b(5), _f(6, 5))),  # broadcast mask
    Sample((_i(3, 2), torch.zeros(3, 2, dtype=torch.bool), _i(0))),
]
