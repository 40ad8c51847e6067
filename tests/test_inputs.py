"""Bad inputs to a converted model: a clear dycl_jax error or PyTorch's behaviour, never a wrong
answer or a raw XLA traceback. And several threads calling one converted model at once."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn as nn

import dycl_jax
from dycl_jax import errors
from tests.helpers import assert_same
from tests.rewrite import dynamic_models as dm


@pytest.fixture(scope="module")
def gate():
    torch.manual_seed(0)
    m = dm.SkipGate().eval()
    return m, dycl_jax.convert(m)


def test_wrong_number_of_arguments(gate) -> None:
    _, cm = gate
    with pytest.raises(
        errors.InputError, match=r"SkipGate.forward: forward\(\) takes 2 positional"
    ):
        cm(torch.randn(2, 6), torch.randn(2, 6))
    with pytest.raises(errors.InputError, match="unexpected keyword argument 'y'"):
        cm(torch.randn(2, 6), y=1)


def test_wrong_shape_names_the_line_and_pytorch_error(gate) -> None:
    m, cm = gate
    with pytest.raises(RuntimeError) as eager:
        m(torch.randn(2, 5))
    with pytest.raises(errors.CaptureError) as exc:
        cm(torch.randn(2, 5))
    assert "fails on inputs [(2, 5):float32" in str(exc.value)
    assert "RuntimeError" in str(exc.value) and eager.type is RuntimeError
    assert exc.value.location is not None and exc.value.location.filename == dm.__file__


def test_wrong_dtype(gate) -> None:
    _, cm = gate
    with pytest.raises(RuntimeError, match="same dtype"):
        gate[0](torch.ones(2, 6, dtype=torch.int64))
    with pytest.raises(
        errors.CaptureError, match="expects operands of one dtype, got float32 and int64"
    ):
        cm(torch.ones(2, 6, dtype=torch.int64))


def test_non_array_input(gate) -> None:
    _, cm = gate
    with pytest.raises(errors.CaptureError, match="must be Tensor, not list"):
        cm([[1.0] * 6] * 2)


def test_nan_and_inf_propagate_like_pytorch(gate) -> None:
    m, cm = gate
    for bad in (float("nan"), float("inf"), -float("inf")):
        x = torch.randn(2, 6)
        x[0, 0] = bad
        with torch.no_grad():
            expected = m(x)
        assert_same(cm(x), expected, rtol=1e-5, atol=1e-6)


def test_empty_batch() -> None:
    torch.manual_seed(0)
    m = dm.EarlyExit().eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(0, 8)
    # eager: softmax over an empty batch, then .item() of an empty max fails; so must we, with
    # PyTorch's own error (the region runs in PyTorch for the empty signature)
    with pytest.raises(RuntimeError) as want:
        m(x)
    with pytest.raises(RuntimeError) as got:
        cm(x)
    assert not isinstance(got.value, errors.DyclError)
    assert str(got.value) == str(want.value)


def test_empty_batch_static_model() -> None:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval()
    cm = dycl_jax.convert(m)
    x = torch.randn(0, 4)
    assert_same(cm(x), m(x))


def test_threads_share_one_converted_model() -> None:
    torch.manual_seed(1)
    m = dm.SkipGate().eval()
    cm = dycl_jax.convert(m)  # nothing compiled yet: the threads race to compile
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(b, 6, generator=g) * s for b in (1, 2, 3) for s in (0.1, 1.0, 10.0)]
    expected = [m(x).detach().numpy() for x in inputs]
    failures: list[str] = []

    def work(k: int) -> None:
        try:
            for i in range(len(inputs)):
                j = (i + k) % len(inputs)
                got = np.asarray(cm(inputs[j]))
                if not np.allclose(got, expected[j], rtol=1e-5, atol=1e-6):
                    failures.append(f"thread {k} input {j}: mismatch")
        except Exception as e:  # report every failure; a thread would lose it
            failures.append(f"thread {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures


def test_jit_and_vmap_of_a_converted_model_are_refused_clearly(gate) -> None:
    import jax
    import jax.numpy as jnp

    _, cm = gate
    x = jnp.ones((2, 6))
    for transform in (jax.jit, jax.vmap):
        with pytest.raises(errors.InputError, match="abstract JAX values"):
            transform(cm)(x)


def test_example_inputs_must_be_a_tuple(gate) -> None:
    with pytest.raises(errors.InputError, match="must be a tuple"):
        dycl_jax.convert(gate[0], example_inputs=torch.ones(2, 6))  # type: ignore[arg-type]


def test_an_input_of_a_dtype_numpy_cannot_hold_is_refused() -> None:
    cm = dycl_jax.convert(dm.EarlyExit().eval())
    x = torch.randn(1, 4).to(torch.float8_e4m3fn)
    with pytest.raises(errors.InputError, match="float8_e4m3fn"):
        cm(x)
