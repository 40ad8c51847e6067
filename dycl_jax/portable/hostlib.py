"""The torch-free core of ``_dy``, the object host programs call: condition reads, conversions of
one-element arrays to Python numbers and indices, host copies, and the UNDEFINED marker for
locals not yet assigned. The converter's runtime (``runtime.library.Runtime``) extends it with
host-run PyTorch ops and per-sample execution; a loaded artifact (``portable.artifact``) with
numpy host ops."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from dycl_jax.compat import ARRAY_IMPL
from dycl_jax.errors import UnsupportedConstructError

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

    def _unbound(self, *args: Any, name: str | None = None) -> Any:
        # What Python raises where the original reads the name: a NameError a user may catch.
        what = f"local variable {name!r}" if name else "a local variable"
        raise UnboundLocalError(f"{what} is used before assignment (in the original forward)")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # protocol probes (copy, torch's __torch_function__ lookup)
            raise AttributeError(name)
        self._unbound()

    __bool__ = __len__ = __iter__ = __getitem__ = __setitem__ = __call__ = _unbound
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __matmul__ = _unbound
    __rmatmul__ = __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _unbound
    __mod__ = __pow__ = __neg__ = __pos__ = __abs__ = __invert__ = _unbound
    __lt__ = __le__ = __gt__ = __ge__ = __and__ = __or__ = __xor__ = _unbound
    __int__ = __float__ = __index__ = __contains__ = _unbound


UNDEFINED = _Undefined()


class HostStats:
    """What a host library counts (the converter's ``Stats`` has these fields too)."""

    host_reads: int = 0


# PyTorch's messages for bool() of a tensor of several elements / of none
AMBIGUOUS = (
    "Boolean value of Tensor with more than one value is ambiguous",
    "Boolean value of Tensor with no values is ambiguous",
)


class HostLibrary:
    """Reads and conversions with PyTorch's rules, on jax and numpy arrays."""

    UNDEFINED = UNDEFINED

    @staticmethod
    def bound(*named: tuple[str, Any]) -> None:
        """Raise UnboundLocalError where one of the (name, value) pairs is still UNDEFINED: a
        host statement reading it there would carry the marker on (see ``ir.unbound``)."""
        for name, v in named:
            if v is UNDEFINED:
                UNDEFINED._unbound(name=name)

    def __init__(self, stats: Any) -> None:
        self.stats = stats

    def truth(self, v: Any) -> bool:
        """``bool(v)`` with PyTorch's rules for one-element tensors; one device read."""
        if type(v) is _ARRAY_IMPL or type(v) is np.ndarray:
            self.stats.host_reads += 1
            if v.size != 1:
                raise RuntimeError(AMBIGUOUS[v.size == 0])
            return bool(v.item())  # one device->host copy; cheaper than bool(v) or np.asarray
        return bool(v)  # a tracer (under jax.grad), a Python value

    def rows(self, v: Any) -> Any:
        """What a loop over ``v`` iterates: for a host numpy array (a result PyTorch computed on
        the host) its items as arrays, 0-d for a vector, as PyTorch's iteration gives tensors
        (numpy's gives numpy scalars, which are no tensors: ``c.float()`` fails, ``c / 3`` is
        float64). Anything else as it is."""
        if type(v) is np.ndarray and v.ndim == 1:
            return [v[i, ...] for i in range(v.shape[0])]
        if type(v) is np.ndarray and v.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return v

    def rng(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A call that reads or sets a random generator's state (``torch.manual_seed(42)``,
        ``g.get_state()``), run as it is."""
        return fn(*args, **kwargs)

    def effect(self, receiver: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        """``receiver.name(*args)`` for a mutator's name (``append``, ``update``) called on a
        value the analysis could not tell is a list, dict, set or deque; run as it is here (the
        converter's runtime runs another object's method in PyTorch)."""
        return getattr(receiver, name)(*args, **kwargs)

    def item(self, v: Any) -> Any:
        """``t.item()``: the Python number of a one-element tensor, raising PyTorch's
        RuntimeError for any other (numpy and jax raise ValueError)."""
        if type(v) is _ARRAY_IMPL or type(v) is np.ndarray:
            self.stats.host_reads += 1
        try:
            return v.item()  # (not an array after all, a numpy scalar or per-sample rows: its own)
        except ValueError:  # checked only here: the read is as fast as `v.item()`
            if isinstance(v, jax.Array | np.ndarray) and v.size != 1:
                raise RuntimeError(
                    f"a Tensor with {v.size} elements cannot be converted to Scalar"
                ) from None
            raise

    def shown(self, v: Any) -> Any:
        """A tensor about to be shown as text (printed, formatted, logged). Without PyTorch
        the array itself; the runtime hands over a torch tensor, which formats as eager's."""
        return v

    def scalar(self, fn: Any, v: Any) -> Any:
        """``int(t)`` / ``float(t)`` / ``complex(t)``: any one-element tensor converts, as in
        PyTorch (a jax array converts only when 0-d)."""
        v = self._one_element(
            v, ValueError, "only one element tensors can be converted to Python scalars"
        )
        return fn(v.item() if isinstance(v, jax.Array | np.ndarray) else v)

    def index(self, v: Any) -> int:
        """A tensor used as a Python index or slice bound (``seq[:lens[i]]``): read back as the
        int its ``__index__`` gives, like PyTorch does (a float tensor raises TypeError)."""
        msg = "only integer tensors of a single element can be converted to an index, not {}"
        v = self._one_element(v, TypeError, msg)
        if getattr(v, "dtype", None) == np.bool_:
            return int(v)  # a bool tensor's __index__ is 0 or 1 in PyTorch (numpy refuses it)
        return operator.index(v)

    def at(self, seq: Any, key: Any) -> Any:
        """``seq[key]`` with ``key`` a tensor: see ``key``. A mapping never holds a tensor made
        in this call (PyTorch's tensors hash by identity), so the lookup raises KeyError as in
        PyTorch (arrays are unhashable: TypeError)."""
        if isinstance(seq, Mapping) and isinstance(key, jax.Array | np.ndarray):
            try:
                return seq[key]
            except TypeError:
                raise KeyError(key) from None
        return seq[self._key(seq, key)]

    def key(self, seq: Any, key: Any) -> Any:
        """The index a write uses (see ``_key``)."""
        if isinstance(seq, Mapping) and isinstance(key, jax.Array | np.ndarray):
            raise UnsupportedConstructError(
                "a tensor used as a dict key in a store, del or pop: PyTorch hashes tensors by "
                "identity, which the host program's arrays cannot reproduce",
                hint="key the dict by a Python value (`d[int(k)] = v`, `d[k.item()]`)",
            )
        return self._key(seq, key)

    def _key(self, seq: Any, key: Any) -> Any:
        """The index ``seq[key]``, ``del seq[key]``, ``seq.pop(key)`` or ``seq.insert(key, v)``
        uses with ``key`` a tensor: a list, tuple or module list takes its ``__index__`` (any
        one-element integer or bool tensor, as in PyTorch; numpy takes 0-d integer arrays only);
        a mapping takes the key itself, and a tensor its own indexing (``self.inf[mask]``)."""
        if isinstance(key, jax.Array | np.ndarray) and not (
            isinstance(seq, Mapping) or hasattr(seq, "shape")
        ):
            return self.index(key)
        return key

    def _one_element(self, v: Any, error: type[Exception], message: str) -> Any:
        """An array ``v`` as 0-d (one read, counted), raising ``error`` as PyTorch does when it
        holds more than one element; anything else as it is."""
        if not isinstance(v, jax.Array | np.ndarray):
            return v
        self.stats.host_reads += 1
        if v.size != 1:
            raise error(message.format(v.size))
        return v.reshape(())

    def contains(self, t: Any, v: Any) -> bool:
        """``v in t`` for a tensor ``t``: PyTorch's ``Tensor.__contains__``, ``(v == t).any()``,
        read back (one device read)."""
        if not isinstance(t, jax.Array | np.ndarray):
            if type(t) in (list, tuple) and isinstance(v, jax.Array | np.ndarray):
                # Python's `in`: each item by identity, then `==` read as a truth value, with
                # PyTorch's error for a tensor of several elements
                return any(item is v or self._equal(item, v) for item in t)
            return v in t  # not a tensor after all
        self.stats.host_reads += 1
        return contains(np.asarray(t), v)

    def _equal(self, a: Any, b: Any) -> bool:
        """``bool(a == b)`` with PyTorch's rules (one device read)."""
        eq = a == b
        if isinstance(eq, jax.Array | np.ndarray):
            self.stats.host_reads += 1
            if eq.size != 1:
                raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
            return bool(np.asarray(eq).reshape(()))
        return bool(eq)

    def numpy(self, t: Any) -> Any:
        """``t.numpy()``: a host copy as a numpy array, like PyTorch's."""
        self.stats.host_reads += 1
        return np.array(t)


def contains(a: np.ndarray, v: Any) -> bool:
    """``v in t`` as PyTorch computes it, ``(t == v).any()`` under its type promotion: a Python
    number, or a 0-d array of the same kind, is compared in the tensor's dtype (``0.3 in t`` of
    a float32 t compares float32(0.3)), not in float64 as numpy would."""
    w = np.asarray(v)
    with np.errstate(all="ignore"):  # out-of-range numbers wrap, as PyTorch's casts do
        if w.ndim == 0 and not np.issubdtype(a.dtype, np.bool_):
            if type(v) is bool or _kind_rank(w) <= _kind_rank(a):
                w = w.astype(a.dtype)
            elif w.dtype.kind == "f":
                # an integer tensor against a float: both in the default float dtype (float32)
                a, w = a.astype(np.float32), w.astype(np.float32)
        return bool(np.any(a == w))


def _kind_rank(x: np.ndarray) -> int:
    return {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}.get(x.dtype.kind, 4)
