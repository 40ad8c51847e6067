"""Samples for nn lowerings."""

from __future__ import annotations

import torch

from dycl_jax.compat import OpOverload
from tests.lower.samples import Sample, SampleFn

aten = torch.ops.aten

SAMPLES: dict[OpOverload, SampleFn] = {}

# Convolutions and normalizations sum many float32 products/elements in a different order than
# PyTorch's kernels (oneDNN / Welford), so they get a looser absolute tolerance.
SUM_TOL = {"rtol": 1e-4, "atol": 1e-4}


def _f(*shape):
    return torch.randn(shape)


def _conv(x, w, bias=None, stride=(1,), padding=(0,), dilation=(1,), groups=1, tr=False, op=None):
    n = w.dim() - 2
    expand = lambda v: list(v) * n if len(v) == 1 else list(v)  # noqa: E731
    args = (x, w, bias, expand(stride), expand(padding), expand(dilation), tr)
    return Sample((*args, expand(op or (0,)), groups), **SUM_TOL)


SAMPLES[aten.convolution.default] = lambda: [
    # 2-d: plain, stride+padding, dilation, groups (depthwise), no bias, 1x1
    _conv(_f(2, 3, 8, 8), _f(4, 3, 3, 3), _f(4)),
    _conv(_f(1, 3, 9, 7), _f(6, 3, 3, 2), _f(6), stride=(2, 1), padding=(1, 2)),
    _conv(_f(2, 4, 10, 10), _f(4, 1, 3, 3), None, padding=(2,), dilation=(2,), groups=4),
    _conv(_f(2, 6, 5, 5), _f(4, 3, 1, 1), _f(4), groups=2),
    # 'same' with an even kernel: the capture pads explicitly, then asks for integer padding
    _conv(_f(1, 2, 6, 6), _f(3, 2, 4, 4), _f(3), padding=(1,)),
    # 1-d and 3-d
    _conv(_f(2, 3, 20), _f(4, 3, 3), _f(4), stride=(2,), padding=(1,)),
    _conv(_f(2, 4, 11), _f(6, 2, 4), None, padding=(3,), dilation=(2,), groups=2),
    _conv(_f(1, 2, 5, 6, 4), _f(3, 2, 3, 3, 3), _f(3), padding=(1,)),
    # transposed: stride, padding, output_padding, groups, dilation
    _conv(_f(2, 3, 5, 5), _f(3, 4, 3, 3), _f(4), stride=(2,), padding=(1,), tr=True, op=(1,)),
    _conv(_f(1, 4, 4, 6), _f(4, 2, 3, 2), None, stride=(2, 3), groups=2, tr=True, op=(0, 2)),
    _conv(_f(1, 2, 5, 5), _f(2, 3, 3, 3), _f(3), dilation=(2,), padding=(2,), tr=True),
    _conv(_f(2, 3, 7), _f(3, 2, 4), _f(2), stride=(3,), padding=(1,), tr=True, op=(2,)),
    # size-0 batch
    _conv(_f(0, 3, 8, 8), _f(4, 3, 3, 3), _f(4)),
]


def _bn_args(shape, affine=True):
    c = shape[1]
    w, b = (_f(c), _f(c)) if affine else (None, None)
    return _f(*shape), w, b, _f(c), torch.rand(c) + 0.5


SAMPLES[aten.native_batch_norm.default] = lambda: [
    Sample((*_bn_args((2, 3, 4, 4)), False, 0.1, 1e-5), **SUM_TOL),
    Sample((*_bn_args((4, 5)), False, 0.1, 1e-3), **SUM_TOL),
    Sample((*_bn_args((2, 3, 7), affine=False), False, 0.1, 1e-5), **SUM_TOL),
    Sample((*_bn_args((3, 2, 4, 4)), True, 0.1, 1e-5), **SUM_TOL),  # training: batch stats
]
SAMPLES[aten._native_batch_norm_legit_no_training.default] = lambda: [
    Sample((*_bn_args((2, 3, 4, 4)), 0.1, 1e-5), **SUM_TOL),
    Sample((*_bn_args((1, 4, 2, 3, 2), affine=False), 0.1, 1e-5), **SUM_TOL),
]
SAMPLES[aten._native_batch_norm_legit.default] = lambda: [
    Sample((*_bn_args((2, 3, 4, 4)), False, 0.1, 1e-5), **SUM_TOL),
    Sample((*_bn_args((4, 3, 5)), True, 0.1, 1e-5), **SUM_TOL),
]
SAMPLES[aten._native_batch_norm_legit.no_stats] = lambda: [
    Sample((_f(4, 3, 5), _f(3), _f(3), True, 0.1, 1e-5), **SUM_TOL),
    Sample((_f(2, 2, 3, 3), None, None, True, 0.1, 1e-5), **SUM_TOL),
]

SAMPLES[aten.native_layer_norm.default] = lambda: [
    Sample((_f(2, 5, 16), [16], _f(16), _f(16), 1e-5), **SUM_TOL),
    Sample((_f(2, 3, 4, 4), [4, 4], _f(4, 4), None, 1e-5), **SUM_TOL),
    Sample((_f(3, 7), [7], None, None, 1e-6), **SUM_TOL),
    Sample((_f(0, 4), [4], _f(4), _f(4), 1e-5), **SUM_TOL),
]

SAMPLES[aten.native_group_norm.default] = lambda: [
    Sample((_f(2, 6, 4, 4), _f(6), _f(6), 2, 6, 16, 3, 1e-5), **SUM_TOL),
    Sample((_f(2, 4, 5), None, None, 2, 4, 5, 4, 1e-5), **SUM_TOL),
    Sample((_f(1, 3, 2, 3, 2), _f(3), _f(3), 1, 3, 12, 1, 1e-5), **SUM_TOL),
]

SAMPLES[aten.native_dropout.default] = lambda: [
    Sample((_f(3, 4), 0.5, False)),
    Sample((_f(1, 5, 2), 0.0, False)),
    # (no size-0 sample: eager returns a float32 mask for empty inputs, the meta says bool)
]


def _pool_input(*shape):
    # distinct values: with ties the chosen index is arbitrary in the reference as well
    return torch.randperm(int(torch.tensor(shape).prod())).reshape(shape).float()


SAMPLES[aten.max_pool2d_with_indices.default] = lambda: [
    Sample((_pool_input(2, 3, 8, 8), [2, 2])),
    Sample((_pool_input(1, 2, 9, 7), [3, 3], [2, 2], [1, 1])),
    Sample((_pool_input(1, 2, 10, 9), [3, 2], [2, 1], [1, 0], [2, 1])),  # dilation
    Sample((_pool_input(2, 16, 16), [3, 3], [2, 2], [0, 0], [1, 1], True)),  # ceil, unbatched
    Sample((_pool_input(1, 1, 7, 7), [2, 2], [3, 3], [1, 1], [1, 1], True)),  # ceil edge rule
    Sample((_pool_input(2, 3, 1, 20), [1, 3], [1, 2])),  # what max_pool1d captures as
    Sample((torch.randn(2, 3, 6, 6), [3, 3], [1, 1], [1, 1])),
]
SAMPLES[aten.max_pool3d_with_indices.default] = lambda: [
    Sample((_pool_input(1, 2, 5, 6, 4), [2, 2, 2])),
    Sample((_pool_input(1, 1, 6, 5, 5), [3, 3, 3], [2, 2, 2], [1, 1, 1], [1, 1, 1], True)),
]

SAMPLES[aten.avg_pool2d.default] = lambda: [
    Sample((_f(2, 3, 8, 8), [2, 2])),
    Sample((_f(1, 2, 9, 7), [3, 3], [2, 2], [1, 1])),  # count_include_pad
    Sample((_f(1, 2, 9, 7), [3, 3], [2, 2], [1, 1], False, False)),
    Sample((_f(1, 2, 9, 8), [3, 2], [2, 2], [1, 1], True, True)),  # ceil_mode
    Sample((_f(1, 2, 9, 8), [3, 3], [2, 2], [1, 1], True, False)),
    Sample((_f(2, 16, 16), [3, 3], [2, 2], [1, 1], False, True, 2)),  # divisor_override
    Sample((_f(2, 3, 1, 20), [1, 3], [1, 2])),  # what avg_pool1d captures as
]
SAMPLES[aten.avg_pool3d.default] = lambda: [
    Sample((_f(1, 2, 5, 6, 4), [2, 2, 2])),
    Sample((_f(1, 1, 6, 5, 5), [3, 3, 3], [2, 2, 2], [1, 1, 1], True, False)),
]

SAMPLES[aten._adaptive_avg_pool2d.default] = lambda: [
    Sample((_f(2, 3, 8, 8), [4, 4])),
    Sample((_f(2, 3, 10, 9), [3, 4])),  # non-divisible: overlapping windows
    Sample((_f(1, 2, 5, 7), [7, 9])),  # output larger than input
    Sample((_f(2, 3, 7, 7), [1, 1])),
    Sample((_f(3, 6, 5), [4, 2])),  # unbatched
    Sample((_f(2, 3, 1, 20), [1, 7])),  # what adaptive_avg_pool1d captures as
]
SAMPLES[aten._adaptive_avg_pool3d.default] = lambda: [Sample((_f(1, 2, 5, 6, 7), [2, 3, 4]))]

SAMPLES[aten.adaptive_max_pool2d.default] = lambda: [
    Sample((_pool_input(2, 3, 8, 8), [4, 4])),
    Sample((_pool_input(2, 3, 10, 9), [3, 4])),
    Sample((_pool_input(1, 2, 5, 7), [7, 9])),
    Sample((_pool_input(3, 6, 5), [1, 1])),
]
SAMPLES[aten.adaptive_max_pool3d.default] = lambda: [
    Sample((_pool_input(1, 2, 5, 6, 7), [2, 3, 4])),
]

SAMPLES[aten.upsample_nearest2d.vec] = lambda: [
    Sample((_f(2, 3, 4, 5), [8, 10], None)),
    Sample((_f(2, 3, 4, 5), [7, 3], None)),
    Sample((_f(1, 2, 5, 5), None, [2.0, 3.0])),
    Sample((_f(1, 2, 5, 6), None, [1.5, 0.5])),
    Sample((_f(1, 2, 8, 12), None, [1.05, 1.05])),  # 8x12 again: copied
    Sample((_f(1, 2, 8, 12), None, [1.05, 1.5])),  # one size changes: both resampled
]
SAMPLES[aten.upsample_nearest2d.default] = lambda: [
    Sample((_f(2, 3, 4, 5), [8, 10])),
    Sample((_f(2, 3, 4, 5), [9, 2])),
    Sample((_f(1, 2, 5, 6), [7, 3], 1.5, 0.5)),
    # no size changes: the kernel copies the input, whatever the scale
    Sample((_f(1, 2, 8, 12), [8, 12], 1.05, 1.05)),
]
SAMPLES[aten.upsample_bilinear2d.vec] = lambda: [
    Sample((_f(2, 3, 4, 5), [8, 10], False, None), **SUM_TOL),
    Sample((_f(2, 3, 4, 5), [7, 3], True, None), **SUM_TOL),
    Sample((_f(1, 2, 5, 5), None, False, [2.0, 3.0]), **SUM_TOL),
    Sample((_f(1, 2, 5, 6), None, True, [1.5, 0.5]), **SUM_TOL),
    Sample((_f(1, 2, 5, 6), [1, 1], True, None), **SUM_TOL),
    Sample((_f(1, 2, 1, 1), [3, 4], False, None), **SUM_TOL),
    Sample((_f(1, 2, 8, 12), None, False, [1.05, 1.05]), **SUM_TOL),  # copied
    Sample((_f(1, 2, 8, 12), None, False, [1.05, 1.5]), **SUM_TOL),
]
SAMPLES[aten.upsample_bilinear2d.default] = lambda: [
    Sample((_f(2, 3, 4, 5), [8, 10], False), **SUM_TOL),
    Sample((_f(2, 3, 6, 5), [4, 9], True), **SUM_TOL),
    Sample((_f(1, 2, 5, 6), [7, 3], False, 1.5, 0.5), **SUM_TOL),
    Sample((_f(1, 2, 8, 12), [8, 12], False, 1.05, 1.05), **SUM_TOL),
]
SAMPLES[aten.upsample_linear1d.vec] = lambda: [
    Sample((_f(2, 3, 5), [9], False, None), **SUM_TOL),
    Sample((_f(2, 3, 5), [3], True, None), **SUM_TOL),
    Sample((_f(1, 2, 8), None, False, [1.3]), **SUM_TOL),
    Sample((_f(1, 2, 8), None, False, [1.05]), **SUM_TOL),  # 8 again: copied
    Sample((_f(1, 2, 12), None, True, [0.95]), **SUM_TOL),
]
SAMPLES[aten.upsample_linear1d.default] = lambda: [
    Sample((_f(2, 3, 5), [9], False), **SUM_TOL),
    Sample((_f(1, 2, 8), [8], False, 1.05), **SUM_TOL),
]
SAMPLES[aten.upsample_trilinear3d.vec] = lambda: [
    Sample((_f(1, 2, 3, 4, 5), [5, 6, 7], False, None), **SUM_TOL),
    Sample((_f(1, 2, 3, 4, 5), [2, 7, 3], True, None), **SUM_TOL),
    Sample((_f(1, 2, 4, 8, 8), None, False, [1.05, 1.05, 1.05]), **SUM_TOL),  # copied
    Sample((_f(1, 2, 4, 8, 8), None, False, [1.05, 1.5, 0.5]), **SUM_TOL),
]
SAMPLES[aten.upsample_trilinear3d.default] = lambda: [
    Sample((_f(1, 2, 3, 4, 5), [5, 6, 7], False), **SUM_TOL),
    Sample((_f(1, 2, 4, 8, 8), [4, 8, 8], False, 1.05, 1.05, 1.05), **SUM_TOL),
]
SAMPLES[aten.avg_pool1d.default] = lambda: [
    Sample((_f(2, 3, 20), [3], [2])),
    Sample((_f(3, 11), [4], [3], [2], True, False)),  # unbatched, ceil_mode, pad excluded
]
SAMPLES[aten.adaptive_avg_pool1d.default] = lambda: [
    Sample((_f(2, 3, 20), [7])),
    Sample((_f(3, 5), [8])),
]
