"""Output plans: how a region's live-out tuple is rebuilt from its graph's array outputs.

A plan entry is a tagged tuple::

    ("t", i)                  graph output i
    ("c", v)                  a constant of the signature (an int, a shape, a module)
    ("l", list | tuple, items), ("d", ((key, item), ...)), ("n", NamedTuple class, items)
                              (or a struct sequence, torch.return_types.max),
    ("od", ((key, item), ...))    an OrderedDict
    ("dc", class, ((field, item), ...))   a dataclass (an HF ModelOutput), built by keyword
    ("L", k, items), ("D", k, items)   a list / dict met more than once among the outputs:
                                       built once, remembered as k
    ("r", k)                  that list / dict again
    ("a", path)               a live-in tensor returned unchanged (``y = x``): that object
    ("i", path, items), ("j", path, items)   a list / dict that is one of the call's live-in
                              values (``values[path[0]][path[1]]...``): that object itself,
                              refilled with what the region left in it

The converter's captures (``capture.trace.OutPlan``) and loaded artifacts (``portable.artifact``)
share this builder; torch-free.
"""

from __future__ import annotations

import collections
from typing import Any


def build(spec: tuple[Any, ...], outs: tuple[Any, ...], values: tuple[Any, ...]) -> tuple[Any, ...]:
    """The live-out tuple of ``spec`` from graph outputs ``outs`` and the call's ``values``."""
    memo: dict[int, Any] = {}
    return tuple(_one(s, outs, values, memo) for s in spec)


def keeps_identity(spec: Any) -> bool:
    """Whether a plan returns live-in lists / dicts themselves or shares one among outputs."""
    if type(spec) is not tuple or not spec or type(spec[0]) is not str:
        return type(spec) is tuple and any(keeps_identity(x) for x in spec)
    tag = spec[0]
    if tag in ("i", "j", "L", "D", "r"):
        return True
    if tag == "l" or tag == "n":
        return any(keeps_identity(x) for x in spec[2])
    if tag == "d":
        return any(keeps_identity(x) for _, x in spec[1])
    if tag == "dc":
        return any(keeps_identity(x) for _, x in spec[2])
    return False


def _one(s: Any, outs: tuple[Any, ...], values: tuple[Any, ...], memo: dict[int, Any]) -> Any:
    tag = s[0]
    if tag == "t":
        return outs[s[1]]
    if tag == "c":
        return s[1]
    if tag == "a":
        return live_in(values, s[1])
    if tag == "l":
        return s[1](_one(x, outs, values, memo) for x in s[2])
    if tag == "d":
        return {k: _one(x, outs, values, memo) for k, x in s[1]}
    if tag == "n":  # a NamedTuple, or a struct sequence (torch.return_types.max) from a tuple
        items = [_one(x, outs, values, memo) for x in s[2]]
        return s[1](*items) if hasattr(s[1], "_fields") else s[1](items)
    if tag == "dc":  # a dataclass, every field given to __init__
        return s[1](**{k: _one(x, outs, values, memo) for k, x in s[2]})
    if tag == "od":  # an OrderedDict
        return collections.OrderedDict((k, _one(x, outs, values, memo)) for k, x in s[1])
    if tag == "L":  # a list that appears more than once among the outputs: built once
        obj: Any = []
        memo[s[1]] = obj
        obj.extend(_one(x, outs, values, memo) for x in s[2])
        return obj
    if tag == "D":
        obj = {}
        memo[s[1]] = obj
        for k, x in s[2]:
            obj[k] = _one(x, outs, values, memo)
        return obj
    if tag == "r":  # the same list / dict again
        return memo[s[1]]
    if tag == "i":  # a list / dict of the live-in values, itself, with the region's contents
        return refill(live_in(values, s[1]), [_one(x, outs, values, memo) for x in s[2]])
    if tag == "j":
        items = [(k, _one(x, outs, values, memo)) for k, x in s[2]]
        return refill(live_in(values, s[1]), items)
    raise AssertionError(s)


def live_in(values: tuple[Any, ...], path: tuple[Any, ...]) -> Any:
    v = values[path[0]]
    for k in path[1:]:
        v = v[k]
    return v


def refill(obj: Any, items: Any) -> Any:
    """``obj`` (a live-in list or dict) holding ``items`` (a list; for a dict, a dict or its
    (key, value) pairs): what the region left in it (it may have appended or set entries), the
    object itself kept so every alias sees the change."""
    if type(obj) is list:
        if len(obj) != len(items) or any(a is not b for a, b in zip(obj, items)):
            obj[:] = items
    else:
        obj.clear()
        dict.update(obj, items)  # (Counter.update would count the pairs as elements)
    return obj
