"""Fine-tuning a dynamic network in JAX, then handing the weights back to PyTorch.

    python -m examples.finetune_jax

``dycl_jax.to_nnx`` wraps the converted model as a flax ``nnx.Module``; ``nnx.value_and_grad``
differentiates the path each batch takes (a gated block is skipped or run), ``nnx.Optimizer``
with optax updates the parameters, and ``state_dict()`` loads them into the PyTorch model.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax
import torch
import torch.nn as nn
from flax import nnx

import dycl_jax


class GatedRegressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.block = nn.Sequential(nn.Linear(16, 16), nn.Tanh())
        self.gate = nn.Linear(16, 1)
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        h = self.stem(x)
        if self.gate(h).mean() > 0:  # skip the block for some batches
            h = h + self.block(h)
        return self.head(h)


def main() -> dict[str, object]:
    torch.manual_seed(0)
    model = GatedRegressor().eval()
    net = dycl_jax.to_nnx(dycl_jax.convert(model))
    opt = nnx.Optimizer(net, optax.adam(1e-2), wrt=nnx.Param)
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(32, 4, generator=g) for _ in range(4)]
    ys = [x.sum(1, keepdim=True).sin() for x in xs]

    def loss_fn(net, x, y):
        return jnp.mean((net(x) - jnp.asarray(y.numpy())) ** 2)

    losses = []
    for _epoch in range(15):
        total = 0.0
        for x, y in zip(xs, ys):
            loss, grads = nnx.value_and_grad(loss_fn)(net, x, y)
            opt.update(net, grads)
            total += float(loss)
        losses.append(total / len(xs))
    model.load_state_dict(net.state_dict())
    with torch.no_grad():
        torch_loss = float(sum(((model(x) - y) ** 2).mean() for x, y in zip(xs, ys)) / len(xs))
    print(
        f"loss {losses[0]:.4f} -> {losses[-1]:.4f}; PyTorch with the trained weights: {torch_loss:.4f}"
    )
    assert losses[-1] < losses[0]
    return {"first": losses[0], "last": losses[-1], "torch": torch_loss}


if __name__ == "__main__":
    main()
