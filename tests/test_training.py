"""The JAX side of training: ``cm.params`` (trainable parameters only) and ``cm.buffers``,
``jax.grad`` of ``cm.apply`` against torch autograd on every path of a dynamic model with batch
norm, and weights flowing back through ``cm.state_dict()``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn as nn

import dycl_jax


class GatedBN(nn.Module):
    """A SkipNet-style gate over batch-normed blocks: a different set of weights gets
    gradients on each path."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Tanh()) for _ in range(3)
        )
        self.gate = nn.Linear(8, 1)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        h = self.stem(x)
        for b in self.blocks:
            if self.gate(h).mean() > 0:
                h = h + b(h)
        return self.head(h)


def _model() -> GatedBN:
    torch.manual_seed(0)
    m = GatedBN()
    with torch.no_grad():  # non-trivial running statistics
        for bn in (x for x in m.modules() if isinstance(x, nn.BatchNorm1d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 1.5)
        m.gate.weight.abs_().mul_(0.5)  # the gate opens for larger activations
        m.gate.bias.fill_(-0.6)
    return m.eval()


def test_params_hold_trainable_parameters_and_buffers_apart() -> None:
    m = _model()
    cm = dycl_jax.convert(m)
    assert set(cm.params) == {n for n, _ in m.named_parameters()}
    assert set(cm.buffers) == {n for n, _ in m.named_buffers()}
    assert all(jnp.issubdtype(v.dtype, jnp.floating) for v in cm.params.values())


def test_grad_of_apply_matches_torch_autograd_on_every_path() -> None:
    m = _model()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    paths = set()
    for scale in (0.1, 0.5, 1.0, 3.0, 10.0):
        x = torch.randn(4, 6, generator=g) * scale

        def loss(p, x=x):
            return jnp.sum(cm.apply(p, x) ** 2)

        with cm.record() as events:
            grads = jax.grad(loss)(cm.params)
        paths.add(tuple(e[1] for e in events if e[0] == "cond"))
        m.zero_grad()
        (m(x) ** 2).sum().backward()
        for n, p in m.named_parameters():
            want = p.grad.numpy() if p.grad is not None else np.zeros(p.shape, np.float32)
            np.testing.assert_allclose(np.asarray(grads[n]), want, rtol=1e-4, atol=1e-5, err_msg=n)
    assert len(paths) >= 2


def test_weights_trained_in_jax_flow_back_to_pytorch() -> None:
    m = _model()
    cm = dycl_jax.convert(m)
    x = torch.randn(4, 6)

    def loss(p):
        return jnp.sum(cm.apply(p, x) ** 2)

    params = cm.params
    for _ in range(3):
        grads = jax.grad(loss)(params)
        params = {n: v - 0.05 * grads[n] for n, v in params.items()}
    got = cm.apply(params, x)
    m.load_state_dict(cm.state_dict(params))
    with torch.no_grad():
        want = m(x)
    np.testing.assert_allclose(np.asarray(got), want.numpy(), rtol=1e-5, atol=1e-5)
    # and the converted model follows the loaded weights
    np.testing.assert_allclose(np.asarray(cm(x)), want.numpy(), rtol=1e-5, atol=1e-5)


def test_warmup_compiles_every_path_of_its_inputs(capsys) -> None:  # type: ignore[no-untyped-def]
    m = _model()
    cm = dycl_jax.convert(m)
    g = torch.Generator().manual_seed(0)
    xs = [(torch.randn(4, 6, generator=g) * s,) for s in (0.1, 1.0, 10.0)]
    compiled = cm.warmup(xs, progress=True)
    assert compiled == cm.stats.compiles > 0
    assert "3/3 inputs" in capsys.readouterr().err
    assert cm.warmup(xs, progress=False) == 0  # every path is compiled already
    for (x,) in xs:
        with torch.no_grad():
            np.testing.assert_allclose(np.asarray(cm(x)), m(x).numpy(), rtol=1e-5, atol=1e-5)


def test_to_nnx_trains_with_optax_and_writes_weights_back() -> None:
    import optax
    from flax import nnx

    m = _model()
    cm = dycl_jax.convert(m)
    model = dycl_jax.to_nnx(cm)
    assert isinstance(model, nnx.Module)
    x = torch.randn(4, 6) * 3
    want_grads = {}
    m.zero_grad()
    (m(x) ** 2).sum().backward()
    for n, p in m.named_parameters():
        want_grads[n] = p.grad.numpy() if p.grad is not None else np.zeros(p.shape, np.float32)

    def loss_fn(model):
        return jnp.sum(model(x) ** 2)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    for n in cm.params:
        got = np.asarray(grads["params"][n.replace(".", "__")][...])
        np.testing.assert_allclose(got, want_grads[n], rtol=1e-4, atol=1e-5, err_msg=n)
    opt = nnx.Optimizer(model, optax.sgd(0.05), wrt=nnx.Param)
    for _ in range(3):
        loss2, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
    assert float(loss_fn(model)) < float(loss)
    m.load_state_dict(model.state_dict())
    with torch.no_grad():
        np.testing.assert_allclose(np.asarray(model(x)), m(x).numpy(), rtol=1e-5, atol=1e-5)
