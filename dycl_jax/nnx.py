"""flax.nnx wrapper: a converted model as an ``nnx.Module`` with one ``nnx.Param`` per parameter.

    model = dycl_jax.to_nnx(dycl_jax.convert(torch_model.eval()))
    opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    opt.update(model, grads)
    torch_model.load_state_dict(model.state_dict())

Parameters live in ``model.params`` (``nnx.Param``), buffers in ``model.buffers``
(``nnx.BatchStat``), keyed by state_dict names with ``.`` written as ``__``. Calling the module
runs the converted model's host program with these values (``cm.apply``), so gradients follow the
path the inputs take. Do not wrap it in ``nnx.jit``: the host program needs concrete condition
values (its regions are jitted already); ``nnx.value_and_grad`` and ``nnx.Optimizer`` work as is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from flax import nnx

from dycl_jax.lower import dtypes

if TYPE_CHECKING:
    from dycl_jax.api import ConvertedModel

_SEP = "__"


def _key(name: str) -> str:
    return name.replace(".", _SEP)


class ConvertedNNX(nnx.Module):
    """A converted model as a flax ``nnx.Module`` (see the module docstring)."""

    def __init__(self, cm: ConvertedModel) -> None:
        self.converted = cm
        self.names = tuple(cm.params) + tuple(cm.buffers)
        self.params = nnx.Dict({_key(n): nnx.Param(v) for n, v in cm.params.items()})
        self.buffers = nnx.Dict({_key(n): nnx.BatchStat(v) for n, v in cm.buffers.items()})

    def values(self) -> dict[str, Any]:
        """Parameters and buffers by state_dict name, as arrays."""
        out = {n: self.params[_key(n)][...] for n in self.converted.params}
        out.update({n: self.buffers[_key(n)][...] for n in self.converted.buffers})
        return out

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.converted.apply(self.values(), *args, **kwargs)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers as torch tensors, for ``model.load_state_dict(...)``."""
        return {n: dtypes.numpy_to_tensor(v) for n, v in self.values().items()}


def to_nnx(cm: ConvertedModel) -> ConvertedNNX:
    """Wrap a converted model as a flax ``nnx.Module`` (one ``nnx.Param`` per parameter)."""
    return ConvertedNNX(cm)
