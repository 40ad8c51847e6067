"""Guards: the Python attributes of the model's own modules a capture read as constants.

Tracing a region reads plain Python attributes of modules (``self.threshold``,
``self.temperature``, ``self.steps``) as constants: the captured graph bakes their values in. If
the user changes one after ``convert`` (a threshold sweep), the compiled graph is stale. So, as
TorchDynamo does, every capture records which such attributes it read and their values; the
runtime checks them before reusing the graph and recaptures when one changed.

Recorded: public attributes of modules in the converted model whose class is not a torch built-in
(a ``nn.Linear``'s ``in_features`` cannot change meaningfully), whose value is a Python scalar,
string, None, or a tuple/list of those; reads by the capturing thread only. Checking them costs one
``getattr`` per guard per region call, for regions that read any.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import torch

_SCALARS = (bool, int, float, str, complex, type(None))


def _guardable(v: Any) -> bool:
    t = type(v)
    if t in _SCALARS:
        return True
    if t is tuple or t is list:
        return all(type(x) in _SCALARS for x in v)
    return False


@dataclasses.dataclass(frozen=True)
class Guard:
    obj: Any
    name: str
    value: Any

    def holds(self) -> bool:
        try:
            now = getattr(self.obj, self.name)
        except AttributeError:
            return False
        if type(self.value) is list:
            return type(now) is list and now == self.value
        return now is self.value or (type(now) is type(self.value) and now == self.value)

    def __str__(self) -> str:
        return f"{type(self.obj).__name__}.{self.name} == {self.value!r}"


_lock = threading.Lock()


@contextlib.contextmanager
def record(root: torch.nn.Module | None) -> Iterator[list[Guard]]:
    """Record the guardable attribute reads of ``root``'s user modules in this thread."""
    found: list[Guard] = []
    if root is None:
        yield found
        return
    watched = {id(m) for m in root.modules() if not type(m).__module__.startswith("torch.")}
    seen: set[tuple[int, str]] = set()
    me = threading.get_ident()
    base = object.__getattribute__

    def hook(obj: Any, name: str) -> Any:
        value = base(obj, name)
        if (
            id(obj) in watched
            and not name.startswith("_")  # torch's own bookkeeping (hooks, flags)
            and threading.get_ident() == me
            and _guardable(value)
            and (id(obj), name) not in seen
        ):
            seen.add((id(obj), name))
            found.append(Guard(obj, name, list(value) if type(value) is list else value))
        return value

    with _lock:
        had = "__getattribute__" in torch.nn.Module.__dict__
        old = torch.nn.Module.__dict__.get("__getattribute__")
        torch.nn.Module.__getattribute__ = hook  # type: ignore[method-assign,assignment]
        try:
            yield found
        finally:
            if had:
                torch.nn.Module.__getattribute__ = old  # type: ignore[method-assign,assignment]
            else:
                del torch.nn.Module.__getattribute__
