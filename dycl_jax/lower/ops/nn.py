"""Lowerings: nn ops (convolution, normalization, pooling, upsampling, dropout).

Convolutions use ``lax.conv_general_dilated`` in PyTorch's own NC(D)HW layout. On XLA CPU an
NHWC formulation (transposing inside the lowering) measured the same as NCHW for ResNet-style
3x3 convs at batch 1 and 8 (XLA's layout assignment already picks the kernel's layout), so the
lowering keeps NCHW and adds no transposes.

Pooling and upsampling take the spatial rank from their arguments (``kernel_size``, output size),
so one helper serves the 1-d/2-d/3-d variants; PyTorch's index formulas (adaptive windows,
``ceil_mode`` edge rule, align_corners source coordinates) are computed statically in numpy.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import torch
from jax import lax

from dycl_jax.lower.registry import FLOAT_INPUTS, lowers

aten = torch.ops.aten

HIGHEST = lax.Precision.HIGHEST


def _spatial(x, n):
    """The trailing ``n`` (spatial) sizes of ``x``."""
    return x.shape[x.ndim - n :]


def _channel_shape(v, ndim):
    """A per-channel vector shaped to broadcast against an (N, C, *spatial) tensor."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


# --- convolution -----------------------------------------------------------------------------


def _conv_dims(n):
    sp = "DHW"[3 - n :] if n <= 3 else "".join(chr(ord("a") + i) for i in range(n))
    return (f"NC{sp}", f"OI{sp}", f"NC{sp}")


def _transposed_weight(w, groups):
    """(Cin, Cout/g, *k) transposed-conv weight -> flipped (Cout, Cin/g, *k) forward weight."""
    cin, cout_g, *k = w.shape
    w = w.reshape(groups, cin // groups, cout_g, *k).swapaxes(1, 2)
    return jnp.flip(w.reshape(groups * cout_g, cin // groups, *k), tuple(range(2, 2 + len(k))))


@lowers(aten.convolution.default)
def _aten_convolution(x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    n, k = w.ndim - 2, w.shape[2:]
    if transposed:
        eff = [d * (kk - 1) for d, kk in zip(dilation, k)]
        pads = [(e - p, e - p + op) for e, p, op in zip(eff, padding, output_padding)]
        w, lhs_dil, stride = _transposed_weight(w, groups), tuple(stride), (1,) * n
    else:
        pads, lhs_dil = [(p, p) for p in padding], (1,) * n
    y = lax.conv_general_dilated(x, w.astype(x.dtype), tuple(stride), pads, lhs_dil,
                                 tuple(dilation), _conv_dims(n), groups, precision=HIGHEST)  # fmt: skip
    return y if bias is None else y + _channel_shape(bias, y.ndim)


# --- normalization ---------------------------------------------------------------------------


def _affine(y, weight, bias):
    y = y if weight is None else y * _channel_shape(weight, y.ndim)
    return y if bias is None else y + _channel_shape(bias, y.ndim)


def _batch_norm(x, weight, bias, mean, var, training, eps, meta):
    """Returns (out, save_mean, save_invstd); eval mode saves nothing (size-0, per the meta)."""
    axes = (0, *range(2, x.ndim))
    if training:
        mean, var = jnp.mean(x, axes), jnp.var(x, axes)
    invstd = lax.rsqrt(var + eps)
    out = _affine((x - _channel_shape(mean, x.ndim)) * _channel_shape(invstd, x.ndim), weight, bias)
    if not training:
        return out, jnp.zeros(meta[1].shape, x.dtype), jnp.zeros(meta[2].shape, x.dtype)
    return out, mean, invstd


@lowers(aten.native_batch_norm.default, aten._native_batch_norm_legit.default, needs_meta=True)
def _aten_native_batch_norm(x, weight, bias, mean, var, training, momentum, eps, _meta):
    return _batch_norm(x, weight, bias, mean, var, training, eps, _meta)


@lowers(aten._native_batch_norm_legit_no_training.default, needs_meta=True)
def _aten_batch_norm_no_training(x, weight, bias, mean, var, momentum, eps, _meta):
    return _batch_norm(x, weight, bias, mean, var, False, eps, _meta)


@lowers(aten._native_batch_norm_legit.no_stats, needs_meta=True)
def _aten_batch_norm_no_stats(x, weight, bias, training, momentum, eps, _meta):
    return _batch_norm(x, weight, bias, None, None, True, eps, _meta)


@lowers(aten.native_layer_norm.default)
def _aten_native_layer_norm(x, normalized_shape, weight, bias, eps):
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    mean, var = jnp.mean(x, axes, keepdims=True), jnp.var(x, axes, keepdims=True)
    rstd = lax.rsqrt(var + eps)
    out = (x - mean) * rstd
    out = out if weight is None else out * weight
    return (out if bias is None else out + bias), mean, rstd


@lowers(aten.native_group_norm.default)
def _aten_native_group_norm(x, weight, bias, N, C, HxW, group, eps):
    g = x.reshape(N, group, -1)
    mean, var = jnp.mean(g, -1, keepdims=True), jnp.var(g, -1, keepdims=True)
    rstd = lax.rsqrt(var + eps)
    out = _affine(((g - mean) * rstd).reshape(x.shape), weight, bias)
    return out, mean[..., 0], rstd[..., 0]


@lowers(aten.native_dropout.default)
def _aten_native_dropout(x, p, train):
    if train and p > 0:
        raise NotImplementedError("dropout in training mode (needs an RNG); capture in eval()")
    return x, jnp.ones(x.shape, jnp.bool_)


# --- pooling ---------------------------------------------------------------------------------


def _pool_out_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size, including the ceil_mode rule for the last window."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    return out - 1 if ceil_mode and (out - 1) * s >= size + p else out


def _pool_params(x, kernel_size, stride, padding, dilation, ceil_mode):
    n = len(kernel_size)
    stride = list(stride) or list(kernel_size)
    padding, dilation = (list(v) * n if len(v) == 1 else list(v) for v in (padding, dilation))
    stride = stride * n if len(stride) == 1 else stride
    outs = [_pool_out_size(*a, ceil_mode) for a in zip(_spatial(x, n), kernel_size, stride,
                                                         padding, dilation)]  # fmt: skip
    return n, stride, padding, dilation, outs


def _pad_for_windows(x, fill, n, kernel, stride, padding, dilation, outs):
    """Pad (or crop) the spatial dims so that exactly ``outs`` windows fit, filling with ``fill``."""
    cfg = [(0, 0, 0)] * (x.ndim - n)
    for size, k, s, p, d, o in zip(_spatial(x, n), kernel, stride, padding, dilation, outs):
        cfg.append((p, (o - 1) * s + d * (k - 1) + 1 - size - p, 0))
    return lax.pad(x, jnp.asarray(fill, x.dtype), cfg)


def _window_positions(starts, offsets):
    """(out, k) input positions of every window element; -1 where a window leaves the input."""
    return np.asarray(starts)[:, None] + np.asarray(offsets)[None, :]


def _gather_windows(x, positions):
    """x[..., *spatial] -> (x[..., o1, ..., on, k1*...*kn], flat input index, validity mask).

    ``positions[d]`` is an (o_d, k_d) array of input positions along spatial dim d; positions
    outside [0, size) are invalid (padding).
    """
    n, spatial = len(positions), _spatial(x, len(positions))
    lead = x.ndim - n
    g, flat, valid = x, np.zeros((), np.int64), np.ones((), bool)
    for d, (pos, size) in enumerate(zip(positions, spatial)):
        ok = (pos >= 0) & (pos < size)
        g = jnp.take(g, np.clip(pos, 0, size - 1), axis=lead + 2 * d)
        flat = flat[..., None, None] * size + np.where(ok, pos, 0)
        valid = valid[..., None, None] & ok
    order = [2 * i for i in range(n)] + [2 * i + 1 for i in range(n)]  # (o1, k1, ...) -> (o.., k..)
    outs = [p.shape[0] for p in positions]
    g = jnp.transpose(g, list(range(lead)) + [lead + i for i in order]).reshape(
        *x.shape[:lead], *outs, -1
    )
    return (
        g,
        np.transpose(flat, order).reshape(*outs, -1),
        np.transpose(valid, order).reshape(*outs, -1),
    )


def _argmax_windows(x, positions):
    """Max value and PyTorch flat index (row-major over the spatial plane) of each window."""
    g, flat, valid = _gather_windows(x, positions)
    g = jnp.where(
        valid, g, -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
    )
    arg = jnp.argmax(g, axis=-1)
    return jnp.max(g, axis=-1), jnp.asarray(flat)[tuple(np.indices(flat.shape[:-1])) + (arg,)]


@lowers(aten.max_pool2d_with_indices.default, aten.max_pool3d_with_indices.default)
def _aten_max_pool_with_indices(x, kernel_size, stride=(), padding=(0,), dilation=(1,),
                                ceil_mode=False):  # fmt: skip
    n, stride, padding, dilation, outs = _pool_params(
        x, kernel_size, stride, padding, dilation, ceil_mode
    )
    lo = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
    xp = _pad_for_windows(x, lo, n, kernel_size, stride, padding, dilation, outs)
    lead = (1,) * (x.ndim - n)
    values = lax.reduce_window(xp, jnp.asarray(lo, x.dtype), lax.max, lead + tuple(kernel_size),
                               lead + tuple(stride), "VALID", None, lead + tuple(dilation))  # fmt: skip
    positions = [_window_positions(np.arange(o) * s - p, np.arange(k) * d)
                 for o, s, p, k, d in zip(outs, stride, padding, kernel_size, dilation)]  # fmt: skip
    return values, _argmax_windows(x, positions)[1]


def _avg_divisor(size, k, s, p, o, count_include_pad):
    start = np.arange(o) * s - p
    if count_include_pad:
        return np.minimum(start + k, size + p) - start
    return np.minimum(start + k, size) - np.maximum(start, 0)


@lowers(aten.avg_pool1d.default, aten.avg_pool2d.default, aten.avg_pool3d.default)
def _aten_avg_pool(x, kernel_size, stride=(), padding=(0,), ceil_mode=False,
                   count_include_pad=True, divisor_override=None):  # fmt: skip
    n, stride, padding, dil, outs = _pool_params(x, kernel_size, stride, padding, (1,), ceil_mode)
    xp = _pad_for_windows(x, 0, n, kernel_size, stride, padding, dil, outs)
    lead = (1,) * (x.ndim - n)
    total = lax.reduce_window(xp, jnp.asarray(0, x.dtype), lax.add, lead + tuple(kernel_size),
                              lead + tuple(stride), "VALID")  # fmt: skip
    if divisor_override:
        return total / divisor_override
    divs = [
        _avg_divisor(*a, count_include_pad)
        for a in zip(_spatial(x, n), kernel_size, stride, padding, outs)
    ]
    return total / np.asarray(math.prod(np.ix_(*divs)), dtype=np.float32)


def _adaptive_bounds(size, out):
    """PyTorch's adaptive windows: [floor(i*size/out), ceil((i+1)*size/out))."""
    i = np.arange(out)
    return (i * size) // out, -(-((i + 1) * size) // out)


def _adaptive_matrix(size, out):
    start, end = _adaptive_bounds(size, out)
    cols = np.arange(size)[None, :]
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return inside / (end - start)[:, None]


@lowers(
    aten.adaptive_avg_pool1d.default,
    aten._adaptive_avg_pool2d.default,
    aten._adaptive_avg_pool3d.default,
)
def _aten_adaptive_avg_pool(x, output_size):
    n = len(output_size)
    for d, (size, out) in enumerate(zip(_spatial(x, n), output_size)):
        m = jnp.asarray(_adaptive_matrix(size, out), x.dtype)
        x = jnp.moveaxis(
            jnp.tensordot(x, m, axes=([x.ndim - n + d], [1]), precision=HIGHEST), -1, x.ndim - n + d
        )
    return x


@lowers(aten.adaptive_max_pool2d.default, aten.adaptive_max_pool3d.default)
def _aten_adaptive_max_pool(x, output_size):
    positions = []
    for size, out in zip(_spatial(x, len(output_size)), output_size):
        start, end = _adaptive_bounds(size, out)
        pos = _window_positions(start, np.arange(int(np.max(end - start, initial=0))))
        positions.append(np.minimum(pos, (end - 1)[:, None]))  # repeat the last: max unchanged
    return _argmax_windows(x, positions)


# --- upsampling ------------------------------------------------------------------------------


def _out_sizes(x, n, output_size, scale_factors):
    if output_size:
        return list(output_size)
    return [math.floor(s * f) for s, f in zip(_spatial(x, n), scale_factors)]


def _source_scale(size, out, scale):
    """PyTorch's area_pixel_compute_scale (align_corners=False): 1/scale if given, else in/out."""
    return np.float32(1.0 / scale) if scale else np.float32(size / out)


def _nearest_index(size, out, scale):
    src = np.floor(np.arange(out, dtype=np.float32) * _source_scale(size, out, scale))
    return np.minimum(src.astype(np.int64), size - 1)


def _upsample_nearest(x, sizes, scales):
    n = len(sizes)
    for d, (size, out, sc) in enumerate(zip(_spatial(x, n), sizes, scales)):
        if out == size:  # PyTorch's kernel: the identity along it, whatever the scale
            continue
        x = jnp.take(x, _nearest_index(size, out, sc), axis=x.ndim - n + d)
    return x


@lowers(aten.upsample_nearest2d.vec)
def _aten_upsample_nearest2d_vec(x, output_size, scale_factors):
    sizes = _out_sizes(x, 2, output_size, scale_factors)
    return _upsample_nearest(x, sizes, scale_factors or [None, None])


@lowers(aten.upsample_nearest2d.default)
def _aten_upsample_nearest2d(x, output_size, scales_h=None, scales_w=None):
    return _upsample_nearest(x, list(output_size), [scales_h, scales_w])


def _linear_source(size, out, align_corners, scale):
    """Low/high source index and high weight of each output position (PyTorch's formula)."""
    dst = np.arange(out, dtype=np.float32)
    if align_corners:
        src = dst * np.float32((size - 1) / (out - 1) if out > 1 else 0.0)
    else:
        src = np.maximum(
            (dst + np.float32(0.5)) * _source_scale(size, out, scale) - np.float32(0.5), 0
        )
    lo = np.minimum(np.floor(src).astype(np.int64), size - 1)
    return lo, np.minimum(lo + 1, size - 1), (src - lo).astype(np.float32)


def _upsample_linear(x, sizes, align_corners, scales):
    n = len(sizes)
    for d, (size, out, sc) in enumerate(zip(_spatial(x, n), sizes, scales)):
        if out == size:  # PyTorch's kernels: the identity along it, whatever the scale
            continue
        ax = x.ndim - n + d
        lo, hi, lam = _linear_source(size, out, align_corners, sc)
        lam = jnp.asarray(lam, x.dtype).reshape((-1,) + (1,) * (n - d - 1))
        x = jnp.take(x, lo, axis=ax) * (1 - lam) + jnp.take(x, hi, axis=ax) * lam
    return x


@lowers(aten.upsample_bilinear2d.vec, accepts=FLOAT_INPUTS)
def _aten_upsample_bilinear2d_vec(x, output_size, align_corners, scale_factors):
    sizes = _out_sizes(x, 2, output_size, scale_factors)
    return _upsample_linear(x, sizes, align_corners, scale_factors or [None, None])


@lowers(aten.upsample_bilinear2d.default, accepts=FLOAT_INPUTS)
def _aten_upsample_bilinear2d(x, output_size, align_corners, scales_h=None, scales_w=None):
    return _upsample_linear(x, list(output_size), align_corners, [scales_h, scales_w])


@lowers(aten.upsample_linear1d.vec, accepts=FLOAT_INPUTS)
def _aten_upsample_linear1d_vec(x, output_size, align_corners, scale_factors):
    sizes = _out_sizes(x, 1, output_size, scale_factors)
    return _upsample_linear(x, sizes, align_corners, scale_factors or [None])


@lowers(aten.upsample_linear1d.default, accepts=FLOAT_INPUTS)
def _aten_upsample_linear1d(x, output_size, align_corners, scales=None):
    return _upsample_linear(x, list(output_size), align_corners, [scales])


@lowers(aten.upsample_trilinear3d.vec, accepts=FLOAT_INPUTS)
def _aten_upsample_trilinear3d_vec(x, output_size, align_corners, scale_factors):
    sizes = _out_sizes(x, 3, output_size, scale_factors)
    return _upsample_linear(x, sizes, align_corners, scale_factors or [None, None, None])


@lowers(aten.upsample_trilinear3d.default, accepts=FLOAT_INPUTS)
def _aten_upsample_trilinear3d(
    x, output_size, align_corners, scales_d=None, scales_h=None, scales_w=None
):
    return _upsample_linear(x, list(output_size), align_corners, [scales_d, scales_h, scales_w])
