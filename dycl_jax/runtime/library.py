"""The library host programs call as ``_dy``: condition reads, conversions, host-run ops, calls
into dynamic callees, and the UNDEFINED marker for locals not yet assigned."""

from __future__ import annotations

import operator
import types
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import torch

from dycl_jax.compat import ARRAY_IMPL
from dycl_jax.origin import unwrap_foreign
from dycl_jax.runtime import io, per_sample
from dycl_jax.runtime.context import RECORD

if TYPE_CHECKING:
    from dycl_jax.runtime.session import Session

_ARRAY_IMPL = ARRAY_IMPL  # exact type of a concrete jax array (faster than isinstance)


class _Undefined:
    """Value of a local that the original program has not assigned yet on this path."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        raise NameError("local variable used before assignment (in the original forward)")


UNDEFINED = _Undefined()


class Runtime:
    """The ``_dy`` object of host programs."""

    UNDEFINED = UNDEFINED

    def __init__(self, session: Session) -> None:
        self.session = session

    def truth(self, v: Any) -> bool:
        """``bool(v)`` with PyTorch's rules for one-element tensors; one device read."""
        if type(v) is _ARRAY_IMPL:
            self.session.stats.host_reads += 1
            if v.size != 1:
                raise RuntimeError(
                    f"Boolean value of Tensor with more than one value is ambiguous (shape {v.shape})"
                )
            b = bool(v.item())  # one device->host copy; measured cheaper than bool(v) or np.asarray
        elif isinstance(v, jax.Array):  # a tracer, e.g. under jax.grad of ConvertedModel.apply
            b = bool(v)
        else:
            b = bool(v)
        rec = RECORD.get()
        if rec is not None:
            rec.append(("cond", b))
        return b

    def scalar(self, fn: Any, v: Any) -> Any:
        """``int(t)`` / ``float(t)`` / ``complex(t)``: any one-element tensor converts, as in
        PyTorch (a jax array converts only when 0-d)."""
        if type(v) is per_sample.Rows:
            return v.scalar(fn)
        v = self._one_element(
            v, RuntimeError, "a Tensor with {} elements cannot be converted to Scalar"
        )
        return fn(v.item() if isinstance(v, jax.Array | np.ndarray) else v)

    def index(self, v: Any) -> int:
        """A tensor used as a Python index or slice bound (``seq[:lens[i]]``): read back as the
        int its ``__index__`` gives, like PyTorch does (a float tensor raises TypeError)."""
        msg = "only integer tensors of a single element can be converted to an index, not {}"
        return operator.index(self._one_element(v, TypeError, msg))

    def _one_element(self, v: Any, error: type[Exception], message: str) -> Any:
        """An array ``v`` as 0-d (one read, counted), raising ``error`` as PyTorch does when it
        holds more than one element; anything else as it is."""
        if not isinstance(v, jax.Array | np.ndarray):
            return v
        self.session.stats.host_reads += 1
        if v.size != 1:
            raise error(message.format(v.size))
        return v.reshape(())

    def numpy(self, t: Any) -> Any:
        """``t.numpy()``: a host copy as a numpy array, like PyTorch's."""
        self.session.stats.host_reads += 1
        if type(t) is per_sample.Rows:
            return t.numpy()
        return np.array(t)

    def eager(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a torch op whose output shape depends on values (nonzero, unique, ...) in PyTorch."""
        self.session.stats.host_reads += 1
        rows = per_sample.CURRENT.get()
        if rows is not None:
            return rows.eager(fn, args, kwargs)
        return io.from_torch(fn(*io.to_torch(args), **io.to_torch(kwargs)))

    def eager_method(self, t: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(t, jax.Array | np.ndarray | torch.Tensor | per_sample.Rows):
            # not a tensor after all (a list's own .sort()): the object's method, in place
            return getattr(t, name)(*args, **kwargs)
        self.session.stats.host_reads += 1
        rows = per_sample.CURRENT.get()
        if rows is not None:
            return rows.eager(_method(name), (t, *args), kwargs)
        return io.from_torch(
            getattr(io.to_torch(t), name)(*io.to_torch(args), **io.to_torch(kwargs))
        )

    def eager_getitem(self, t: Any, index: Any) -> Any:
        """``t[mask]`` (output shape depends on the mask) run by PyTorch on the host."""
        self.session.stats.host_reads += 1
        rows = per_sample.CURRENT.get()
        if rows is not None:
            return rows.eager(operator.getitem, (t, index), {})
        return io.from_torch(io.to_torch(t)[io.to_torch(index)])

    def call(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a dynamic callee (submodule, method or function) through its own host program."""
        fn, owner = resolve_callable(f)
        prog = self.session.program_for(fn, owner)
        return prog.run(args, kwargs)


def _method(name: str) -> Any:
    def call(t: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(t, name)(*args, **kwargs)

    return call


def resolve_callable(f: Any) -> tuple[Any, Any]:
    """(function, bound owner) for a module, bound method or function."""
    if isinstance(f, torch.nn.Module):
        inst = f.__dict__.get("forward")
        if inst is not None:
            return resolve_callable(inst)
        return type(f).forward, f
    if hasattr(f, "__func__") and hasattr(f, "__self__"):
        # the user's function under a torch or library wrapper, as the analysis saw it
        return unwrap_foreign(f.__func__), f.__self__
    if not isinstance(f, types.FunctionType | type) and callable(f):
        return type(f).__call__, f  # a plain object with a Python __call__
    return f, None
