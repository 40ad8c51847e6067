"""Samples for shape lowerings."""

from __future__ import annotations

import sys

import torch

from dycl_jax.compat import OpOverload
from tests.lower.samples import Sample, SampleFn

aten = torch.ops.aten

SAMPLES: dict[OpOverload, SampleFn] = {}


def _f(*shape):
    return torch.randn(shape)


def _i(*shape):
    return torch.randint(-5, 5, shape)


def _b(*shape):
    return torch.rand(shape) > 0.5


def _view_samples():
    return [
        Sample((_f(2, 3, 4), [6, 4])),
        Sample((_f(2, 3, 4), [-1])),
        Sample((_i(2, 3, 4), [4, -1, 2])),
        Sample((_b(6), [1, 6, 1])),
        Sample((_f(0, 3), [3, 0])),
        Sample((_f(), [1, 1])),
        Sample((_f(1), [])),
    ]


SAMPLES[aten.view.default] = _view_samples
SAMPLES[aten._unsafe_view.default] = _view_samples
SAMPLES[aten.reshape.default] = _view_samples

# (growing leaves PyTorch's new elements uninitialised: not compared)
SAMPLES[aten.resize.default] = lambda: [
    Sample((_f(5), [3])),
    Sample((_f(2, 3), [6])),
    Sample((_i(2, 3), [2, 2])),
    Sample((_f(4), [0])),
    Sample((_f(2, 2), [2, 2])),
]

SAMPLES[aten.permute.default] = lambda: [
    Sample((_f(2, 3, 4), [2, 0, 1])),
    Sample((_i(2, 3, 4, 5), [-1, 0, -2, 1])),
    Sample((_b(0, 1), [1, 0])),
    Sample((_f(), [])),
]

SAMPLES[aten.transpose.int] = lambda: [
    Sample((_f(2, 3, 4), 0, 2)),
    Sample((_i(2, 3), -1, -2)),
    Sample((_b(0, 1, 3), 1, 1)),
    Sample((_f(), 0, -1)),
]

SAMPLES[aten.transpose_.default] = lambda: [
    Sample((_f(2, 3, 4), 0, 2)),
    Sample((_i(2, 3), -1, 0)),
]

SAMPLES[aten.t.default] = lambda: [
    Sample((_f(2, 3),)),
    Sample((_i(5),)),
    Sample((_b(0, 4),)),
    Sample((_f(),)),
]

SAMPLES[aten.expand.default] = lambda: [
    Sample((_f(3, 1), [3, 4])),
    Sample((_f(3, 1), [2, -1, 5])),
    Sample((_i(1, 4), [0, 4])),
    Sample((_b(1), [2, 3])),
    Sample((_f(), [2, 2])),
    Sample((_f(2, 3), [2, 3])),
]

SAMPLES[aten.squeeze.default] = lambda: [
    Sample((_f(1, 3, 1, 4),)),
    Sample((_i(1, 1),)),
    Sample((_b(0, 1),)),
    Sample((_f(),)),
]
SAMPLES[aten.squeeze.dim] = lambda: [
    Sample((_f(1, 3, 1, 4), 2)),
    Sample((_f(1, 3, 1, 4), 1)),  # not size 1: no-op
    Sample((_i(3, 1), -1)),
    Sample((_f(), 0)),
]
SAMPLES[aten.squeeze.dims] = lambda: [
    Sample((_f(1, 3, 1, 4), [0, 2])),
    Sample((_f(1, 3, 1, 4), [-2, 1])),
    Sample((_b(1, 0, 1), [0, 1, 2])),
    Sample((_f(), [0])),
    Sample((_i(2, 1), [])),
]

SAMPLES[aten.unsqueeze.default] = lambda: [
    Sample((_f(2, 3), 0)),
    Sample((_f(2, 3), -1)),
    Sample((_i(2, 3), 1)),
    Sample((_b(0), -2)),
    Sample((_f(), 0)),
]

SAMPLES[aten.alias.default] = lambda: [Sample((_f(2, 3),)), Sample((_i(0),)), Sample((_b(),))]
SAMPLES[aten.clone.default] = lambda: [
    Sample((_f(2, 3),)),
    Sample((_i(1, 0),), {"memory_format": torch.contiguous_format}),
    Sample((_b(3),)),
    Sample((_f(2, 3, 4, 5),), {"memory_format": torch.channels_last}),
]

SAMPLES[aten.copy.default] = lambda: [
    Sample((_f(2, 3), _f(2, 3))),
    Sample((_f(2, 3), _f(3))),  # broadcast src
    Sample((_f(2, 3), _i(2, 3))),  # cast to self's dtype
    Sample((_i(4), _f(4) * 3)),
    Sample((_b(2, 2), _b(2, 2))),
    Sample((_f(0, 2), _f(1, 2))),
    Sample((_i(4).to(torch.uint8), torch.tensor([300.0, -1.0, 3e9, float("nan")]))),  # wraps
]

SAMPLES[aten.cat.default] = lambda: [
    Sample(([_f(2, 3), _f(4, 3)],)),
    Sample(([_f(2, 3), _f(2, 1), _f(2, 0)], -1)),
    Sample(([_i(2, 3), _i(2, 3)], 1)),
    Sample(([_b(1, 2), _b(3, 2)],)),
    Sample(([_f(2, 3), _f(0)], 1)),  # legacy: empty 1-D tensors are skipped
    Sample(([_f(2, 3), _i(2, 3)], 0)),  # type promotion
    Sample(([_f(5)],)),
]

SAMPLES[aten.split_with_sizes.default] = lambda: [
    Sample((_f(6, 3), [1, 2, 3])),
    Sample((_i(2, 5), [2, 0, 3], -1)),
    Sample((_b(4), [4])),
    Sample((_f(3, 0), [1, 2], 0)),
]

SAMPLES[aten.split.Tensor] = lambda: [
    Sample((_f(7, 3), 3)),
    Sample((_i(2, 6), 2, -1)),
    Sample((_b(4), 5)),
    Sample((_f(1, 2), 1, 0)),
]

SAMPLES[aten.unbind.int] = lambda: [
    Sample((_f(3, 2),)),
    Sample((_i(2, 3, 1), -2)),
    Sample((_b(1, 2), 1)),
]

SAMPLES[aten.slice.Tensor] = lambda: [
    Sample((_f(5, 4), 0, 1, 3)),
    Sample((_f(5, 4), 1, -3, -1)),  # negative start/end
    Sample((_f(5, 4), 0, 0, sys.maxsize)),  # end past the size (what x[a:] captures)
    Sample((_f(5, 4), -1, None, None, 2)),  # step
    Sample((_i(7), 0, -100, 100, 3)),  # out-of-range ends clamp
    Sample((_b(5, 2), 0, 4, 2)),  # start > end: empty
    Sample((_f(0, 3), 0, 0, 1)),
    Sample((_f(5, 4), 1, 5, 9)),  # start past the size: empty
]

SAMPLES[aten.select.int] = lambda: [
    Sample((_f(5, 4), 0, 1)),
    Sample((_f(5, 4), -1, -1)),  # negative dim and index
    Sample((_i(2, 3, 4), 1, 2)),
    Sample((_b(1, 3), 0, 0)),
    Sample((_f(3, 0), 0, 2)),
]

SAMPLES[aten.diagonal.default] = lambda: [
    Sample((_f(4, 5),)),
    Sample((_f(4, 5), 1)),
    Sample((_f(4, 5), -2)),
    Sample((_i(2, 3, 3), 0, 1, 2)),
    Sample((_f(2, 3, 4), 1, -1, 0)),
    Sample((_b(3, 3), 5)),  # offset past the edge: empty
]

SAMPLES[aten.flip.default] = lambda: [
    Sample((_f(3, 4), [0])),
    Sample((_f(2, 3, 4), [-1, 0])),
    Sample((_i(3, 4), [])),
    Sample((_b(0, 2), [1])),
    Sample((_f(), [])),
]

SAMPLES[aten.roll.default] = lambda: [
    Sample((_f(3, 4), [1], [0])),
    Sample((_f(3, 4), [-5, 2], [1, 0])),
    Sample((_i(3, 4), [5])),  # no dims: roll the flattened tensor
    Sample((_b(4), [2], [-1])),
]

SAMPLES[aten.repeat.default] = lambda: [
    Sample((_f(2, 3), [2, 1])),
    Sample((_f(2, 3), [2, 1, 3])),  # more repeats than dims
    Sample((_i(3), [0])),
    Sample((_b(1, 2), [3, 2])),
    Sample((_f(), [2])),
]

SAMPLES[aten.constant_pad_nd.default] = lambda: [
    Sample((_f(2, 3, 4), [1, 2])),
    Sample((_f(2, 3, 4), [1, 2, 0, 3], 1.5)),
    Sample((_f(2, 3, 4), [-1, 2, 1, -2])),  # negative pads crop
    Sample((_i(2, 3), [1, 1, 1, 1], 7)),
    Sample((_b(2, 2), [1, 0], True)),
    Sample((_f(0, 2), [1, 1, 1, 1])),
]

SAMPLES[aten.reflection_pad1d.default] = lambda: [
    Sample((_f(2, 3, 5), [2, 1])),
    Sample((_f(3, 4), [0, 3])),
]
SAMPLES[aten.reflection_pad2d.default] = lambda: [
    Sample((_f(2, 3, 5, 4), [1, 2, 3, 0])),
    Sample((_f(3, 4, 4), [3, 3, 1, 1])),
]
SAMPLES[aten.reflection_pad3d.default] = lambda: [Sample((_f(1, 2, 3, 4, 5), [1, 2, 0, 2, 1, 1]))]
SAMPLES[aten.replication_pad1d.default] = lambda: [
    Sample((_f(2, 3, 5), [2, 4])),
    Sample((_f(3, 1), [3, 0])),
]
SAMPLES[aten.replication_pad2d.default] = lambda: [
    Sample((_f(2, 3, 5, 4), [1, 2, 3, 0])),
    Sample((_f(3, 1, 2), [4, 4, 1, 1])),
]
SAMPLES[aten.replication_pad3d.default] = lambda: [Sample((_f(1, 2, 3, 4, 5), [1, 2, 0, 2, 3, 1]))]

SAMPLES[aten.as_strided.default] = lambda: [
    Sample((_f(4, 5), [2, 2], [5, 1])),
    Sample((_f(4, 5), [3, 3], [1, 5], 2)),
    Sample((_i(10), [4, 3], [2, 1])),  # overlapping windows
    Sample((_f(6), [], [], 3)),
    Sample((_b(6), [0, 2], [1, 1])),
]
