"""The library host programs call as ``_dy``: condition reads, conversions, host-run ops, calls
into dynamic callees, and the UNDEFINED marker for locals not yet assigned."""

from __future__ import annotations

import operator
import types
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import torch

from dycl_jax.analysis import facts
from dycl_jax.errors import InputError
from dycl_jax.lower import dtypes
from dycl_jax.origin import unwrap_foreign
from dycl_jax.portable.hostlib import UNDEFINED as UNDEFINED
from dycl_jax.portable.hostlib import HostLibrary
from dycl_jax.runtime import io, per_sample
from dycl_jax.runtime.context import RECORD

if TYPE_CHECKING:
    from dycl_jax.runtime.session import Session


class Runtime(HostLibrary):
    """The ``_dy`` object of host programs."""

    def __init__(self, session: Session) -> None:
        super().__init__(session.stats)
        self.session = session

    def truth(self, v: Any) -> bool:
        b = HostLibrary.truth(self, v)
        rec = RECORD.get()
        if rec is not None:
            rec.append(("cond", b))
        return b

    def scalar(self, fn: Any, v: Any) -> Any:
        if type(v) is per_sample.Rows:
            return v.scalar(fn)
        return HostLibrary.scalar(self, fn, v)

    def shown(self, v: Any) -> Any:
        # tensors (also inside tuples, lists and dicts, and the 0-d items of a tensor iterated
        # on the host) print and format as PyTorch's: tensor(3.)
        return io.map_structure(_shown_leaf, v)

    def key(self, seq: Any, key: Any) -> Any:
        if type(key) is per_sample.Rows or type(key) is per_sample.Scalars:
            # each row's own index into one list the group shares: rows that part ways at it
            # would go on with that list written by another group
            raise InputError(
                "per_sample: this model writes a list (store, del, pop or insert) at an index "
                "read from a tensor; run it row by row with cm(row)"
            )
        return super().key(seq, key)

    def contains(self, t: Any, v: Any) -> bool:
        if not isinstance(t, jax.Array | np.ndarray | per_sample.Rows):
            return HostLibrary.contains(self, t, v)
        self.session.stats.host_reads += 1
        if type(t) is per_sample.Rows:
            return t.contains(v)
        return io.to_torch(v) in io.to_torch(t)  # PyTorch's own Tensor.__contains__

    def numpy(self, t: Any) -> Any:
        if type(t) is per_sample.Rows:
            self.stats.host_reads += 1
            return t.numpy()
        return HostLibrary.numpy(self, t)

    def rng(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if per_sample.CURRENT.get() is not None:
            raise InputError(
                "per_sample: this model reads or sets a random generator's state in forward "
                f"({getattr(fn, '__qualname__', fn)}); rows run together draw in one stream, "
                "not as each row alone: run it row by row with cm(row)"
            )
        return HostLibrary.rng(self, fn, *args, **kwargs)

    def effect(self, receiver: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        """``receiver.name(*args)``: a container's own mutator (``outs.append(h)``) as it is;
        another object's method of a mutator's name (a helper's ``update(h)``, ``extend(h)``)
        runs in PyTorch on tensors, as eager: on arrays, its torch calls would fail or compute
        with jax's rules (``h.std()``)."""
        t = type(receiver)
        if isinstance(receiver, facts.CONTAINER_TYPES) and t.__module__ in (
            "builtins",
            "collections",
        ):
            return getattr(receiver, name)(*args, **kwargs)
        if per_sample.CURRENT.get() is not None:
            raise InputError(
                f"per_sample: this model calls {t.__name__}.{name} on the host, which would "
                "change that object once per group of rows, not per row; run it row by row "
                "with cm(row)"
            )
        from dycl_jax.runtime.runner import held_as_torch  # (the runner imports this module)

        given = io.to_torch_owned((receiver, args, kwargs), objects=False)
        with torch.no_grad(), held_as_torch(given):
            out = getattr(receiver, name)(*given[1], **given[2])
        return out if out is receiver else io.from_torch(out)

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


def _shown_leaf(v: Any) -> Any:
    if isinstance(v, jax.Array | np.ndarray | np.generic):
        return dtypes.numpy_to_tensor(np.asarray(v))
    if type(v) is per_sample.Rows:
        raise InputError(
            "per_sample: this model turns a tensor into text (prints, formats or logs it), which "
            "would show the whole group's values in each row; run it row by row with cm(row)"
        )
    return v


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
