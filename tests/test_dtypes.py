"""The 64-bit policy: results keep PyTorch's dtypes and values; the user's JAX setting is untouched."""

from __future__ import annotations

import jax
import numpy as np
import torch
import torch.nn as nn

import dycl_jax
from tests.helpers import assert_same


class IntMath(nn.Module):
    def forward(self, x, ids):
        big = ids * 3_000_000_000  # overflows int32
        idx = x.argmax(-1)
        counts = (x > 0).sum(-1)
        return big, idx, counts, big.sum() // 7


class Float64(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4).double()

    def forward(self, x):
        y = self.lin(x)
        if y.sum() > 0:
            return y * 1e-300
        return y + 1e300


def test_int64_results_exact_and_int64() -> None:
    cm = dycl_jax.convert(IntMath().eval())
    x = torch.randn(3, 5)
    ids = torch.tensor([1, 2, 3_000_000_000], dtype=torch.int64)
    got = cm(x, ids)
    assert_same(got, IntMath()(x, ids))
    assert all(np.asarray(g).dtype == np.int64 for g in got)


def test_float64_model_stays_float64() -> None:
    torch.manual_seed(0)
    m = Float64().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -1.0, 3.0, -3.0):
        x = torch.full((2, 4), s, dtype=torch.float64)
        assert_same(cm(x), m(x), rtol=1e-12, atol=0)


def test_users_global_x64_setting_untouched() -> None:
    before = jax.config.jax_enable_x64
    cm = dycl_jax.convert(IntMath().eval())
    cm(torch.randn(2, 3), torch.tensor([1, 2]))
    assert jax.config.jax_enable_x64 == before
    assert jax.numpy.arange(3).dtype == (np.int64 if before else np.int32)


def test_bfloat16_and_namedtuple_inputs_keep_dtype() -> None:
    import collections

    Pair = collections.namedtuple("Pair", "a b")

    class AddPair(nn.Module):
        def forward(self, p):
            return p.a + p.b

    cm = dycl_jax.convert(AddPair().eval())
    a = torch.randn(3).to(torch.bfloat16)
    got = cm(Pair(a, a))
    assert got.dtype == jax.numpy.bfloat16
    np.testing.assert_array_equal(np.asarray(got, dtype=np.float32), (a + a).float().numpy())


class _HostScalar(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        h = self.lin(x)
        conf = h.softmax(-1).max()
        k = conf.item()
        y = conf * k  # a 0-d float32 tensor times a Python float: float32 in PyTorch
        z = h.half() * k
        i = (h.argmax() * 0).to(torch.int32)
        n = int(h.argmax().item())
        # two Python numbers selected by a mask: the default dtype (float32), not float64
        w = torch.where(h > 0, k, n + 1)
        return y, z, i * n, w, torch.arange(x.max().ceil() + 3)


def test_host_scalars_promote_like_python_numbers() -> None:
    torch.manual_seed(0)
    m = _HostScalar().eval()
    cm = dycl_jax.convert(m)
    for s in (1.0, -2.0, 5.0):
        x = torch.randn(1, 4, generator=torch.Generator().manual_seed(int(s))) * s
        got, want = cm(x), m(x)
        for g, w in zip(got, want, strict=True):
            assert str(g.dtype) == str(w.dtype).removeprefix("torch."), (g.dtype, w.dtype)
        assert_same(got, want, rtol=1e-3, atol=1e-3)


class _HalfMath(nn.Module):
    """Reduced-precision arithmetic with Python scalars, a norm and a branch: PyTorch's CPU
    kernels compute each op in float32 and round once (mul/div keep a Python scalar in float32;
    add/sub round it to the tensor's dtype first)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(64)

    def forward(self, x):
        y = (x * 0.1 + 0.3) / 3.3 - 0.7
        z = 0.25 - self.norm(y) * 1.7
        if z.float().sum() > 0:
            return z * z + y, (x > 0.1).sum()
        return z / 3.0, (x > 0.1).sum()


def _xla_rounds_every_half_op() -> bool:
    """Whether XLA:CPU on this machine keeps the float16 rounding between two ops of one fusion
    (``convert`` to f16 and back). On CPUs with native fp16 arithmetic (AVX512-FP16) jaxlib's
    CPU code generator drops the pair, so a fused chain rounds once at its end."""
    jnp = jax.numpy
    h = (1 + np.arange(512, dtype=np.float32) * 2.0**-10).astype(np.float16)  # squares need it

    def f(v):
        w = v.astype(jnp.float32)
        return ((w * w).astype(jnp.float16).astype(jnp.float32) + w).astype(jnp.float16)

    w = h.astype(np.float32)
    want = ((w * w).astype(np.float16).astype(np.float32) + w).astype(np.float16)
    return bool(np.array_equal(np.asarray(jax.jit(f)(jnp.asarray(h))), want))


def test_float16_and_bfloat16_arithmetic_is_bitwise_exact() -> None:
    """Bitwise equal where XLA:CPU rounds every op's half result (see README, Numerics);
    within one unit in the last place where its code generator keeps fused intermediates in
    float32."""
    exact = _xla_rounds_every_half_op()
    for dt in (torch.float16, torch.bfloat16):
        m = _HalfMath().to(dt).eval()
        with torch.no_grad():
            m.norm.weight.copy_(torch.linspace(0.5, 1.5, 64))
        cm = dycl_jax.convert(m)
        g = torch.Generator().manual_seed(0)
        for sign in (1.0, -1.0):
            x = (torch.randn(8, 64, generator=g) * 2 * sign + sign).to(dt)
            with torch.no_grad():
                want = m(x)
            got = cm(x)
            assert got[0].dtype == jax.numpy.dtype(str(dt).removeprefix("torch."))
            if exact:
                np.testing.assert_array_equal(
                    np.asarray(got[0], dtype=np.float32), want[0].float().numpy(), err_msg=str(dt)
                )
            else:  # one ulp of the half type, relative
                ulp = 2.0**-10 if dt == torch.float16 else 2.0**-7
                np.testing.assert_allclose(
                    np.asarray(got[0], dtype=np.float32),
                    want[0].float().numpy(),
                    rtol=2 * ulp,
                    atol=1e-3,
                    err_msg=str(dt),
                )
            assert int(got[1]) == int(want[1])


class _HalfCompare(nn.Module):
    """Comparisons of reduced-precision tensors: PyTorch compares in the operands' common dtype,
    so a Python scalar (or a 0-d float32 tensor) is rounded to float16 first; a value exactly at
    the rounded threshold takes the branch eager PyTorch takes (a fuzz-found path flip)."""

    def forward(self, x, t):
        outs = (x > 0.95, x >= t, x == torch.tensor(0.95), x.float() > 0.95, x.long() > 0.5)
        outs += (x < torch.tensor([0.95]), x != 0.95, x <= 0.1)
        if (x[:1] > 0.95).any():
            return outs, x * 2
        return outs, -x


def test_reduced_precision_comparisons_round_the_scalar_like_pytorch() -> None:
    cm = dycl_jax.convert(_HalfCompare().eval())
    for dt in (torch.float16, torch.bfloat16, torch.float32):
        for first in (0.9501953125, 0.94921875, 0.95, 0.1):
            x = torch.tensor([first, 0.9492, 0.95, 2.0, 0.1], dtype=dt)
            t = torch.tensor(0.95)
            with torch.no_grad():
                want = _HalfCompare()(x, t)
            got = cm(x, t)
            for g, w in zip(got[0], want[0]):
                np.testing.assert_array_equal(np.asarray(g), w.numpy(), err_msg=f"{dt} {first}")
            np.testing.assert_array_equal(
                np.asarray(got[1], dtype=np.float32), want[1].float().numpy()
            )


class _ScalarMath(nn.Module):
    """Python arithmetic on a value read back (``0.5 * k + 1``) feeding tensor ops of several
    dtypes (a 0-d tensor times it is covered by _HostScalar: that one specialises)."""

    def forward(self, x):
        k = x.mean().item()
        c = 0.5 * k + 1.0
        y = x + c
        z = x.half() * (c / 3.0)
        n = (x > 0).sum() + int(k * 10)
        if float(y.mean()) > 0.0:
            return y, z, n
        return -y, z, n


def test_host_scalar_arithmetic_is_exact_and_compiles_once() -> None:
    m = _ScalarMath().eval()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    for i in range(8):
        x = torch.randn(2, 3, generator=g) + (i - 4) * 0.3
        with torch.no_grad():
            want = m(x)
        got = cm(x)
        for a, b in zip(got, want):
            assert np.asarray(a).dtype == dycl_jax.lower.dtypes.to_jax(b.dtype)
            # (the mean read back may differ from PyTorch's in its last bit: float32 reductions)
            np.testing.assert_allclose(
                np.asarray(a).astype(np.float64), b.double().numpy(), rtol=2e-6, atol=1e-6
            )
    # the value read back is an input, not a constant: one signature per region and branch
    assert cm.stats.compiles <= 4


class _BigIntCompare(nn.Module):
    def forward(self, x):
        out = (x == 2**40, x < 2**40, x > -(2**40), x >= 7)
        if x.sum() > 0:
            return out, 1
        return out, 0


def test_integer_comparisons_with_python_ints_beyond_the_dtype_wrap_like_pytorch() -> None:
    """PyTorch casts the Python int to the tensor's dtype (int32: 2**40 wraps to 0)."""
    m = _BigIntCompare().eval()
    cm = dycl_jax.convert(m)
    for x in (
        torch.tensor([1, -5, 7], dtype=torch.int32),
        torch.tensor([-1, 5, -7], dtype=torch.int8),
    ):
        want = m(x)
        got = cm(x)
        for g, w in zip(got[0], want[0]):
            np.testing.assert_array_equal(np.asarray(g), w.numpy())
        assert got[1] == want[1]


class _ZeroDimOperand(nn.Module):
    def forward(self, x, t):
        return x + t, x - t, t - x, x * t, t * x, x / t, t / x, torch.add(x, t, alpha=2), x**t


def test_zero_dim_float32_operand_of_half_ops() -> None:
    """A 0-d float32 tensor takes no part in type promotion: PyTorch's kernels cast it to the
    half result's dtype first, except its mul and div, which read a second operand unrounded."""
    exact = _xla_rounds_every_half_op()
    x = (torch.rand(1, 512, generator=torch.Generator().manual_seed(0)) + 0.05).half()
    t = torch.tensor(0.95)
    m = _ZeroDimOperand().eval()
    got, want = dycl_jax.convert(m)(x, t), m(x, t)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        g32, w32 = np.asarray(g, dtype=np.float32), w.float().numpy()
        if exact:
            np.testing.assert_array_equal(g32, w32, err_msg=f"output {i}")
        else:
            np.testing.assert_allclose(g32, w32, rtol=2.0**-9, err_msg=f"output {i}")


class ImageBytes(nn.Module):
    """Image code converting without a clamp (`(img * 255).byte()`) and resizing uint8 images."""

    def forward(self, x, img):
        if x.sum() > 0:
            y = (x * 255).to(torch.uint8), (x * 200).to(torch.int8), (x * 3e9).int()
        else:
            y = ((-x * 255).byte(), (x / 0).long(), (-x * 3e9).long())
        small = torch.nn.functional.interpolate(img, scale_factor=0.6, mode="bilinear")
        return y, small


def test_float_to_int_conversions_and_uint8_resizing_match_pytorch() -> None:
    """Out of range and NaN, PyTorch's kernels give the machine's conversion (x86: the int32 /
    int64 minimum, narrower ints wrap: 300.0 -> uint8 44), where XLA saturates (255); uint8
    bilinear resizing is PyTorch's fixed-point kernel, run in PyTorch (the float lowering cast
    its weights to uint8)."""
    m = ImageBytes().eval()
    cm = dycl_jax.convert(m)
    img = torch.arange(2 * 3 * 10 * 10).reshape(2, 3, 10, 10).remainder(251).to(torch.uint8)
    x = torch.tensor([1.1764706, -0.0039216, 0.5, 1.0, 0.0])  # (x / 0: inf, -inf and NaN)
    for inp in (x, -x):
        assert_same(cm(inp, img), m(inp, img))


class BigIntThreshold(nn.Module):
    def forward(self, x):
        if x.max() > 1152921573326323713:  # 2**60 + 2**36 + 1
            return x * 2
        return x * 3


def test_float_comparisons_with_python_ints_beyond_2_53_round_once_like_pytorch() -> None:
    """PyTorch converts the int to float32 from int64 (2**60 + 2**37); through float64 it
    rounded twice (2**60), and the branch flipped."""
    m = BigIntThreshold().eval()
    cm = dycl_jax.convert(m)
    for v in (2.0**60 + 2**37, 2.0**60, 2.0**61):
        x = torch.tensor([v])
        assert_same(cm(x), m(x))
        assert_same(cm(x.half().float()), m(x.half().float()))
