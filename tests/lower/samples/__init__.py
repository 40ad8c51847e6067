"""Per-op sample inputs, one module per op family (mirrors dycl_jax/lower/ops/).

Each family module defines ``SAMPLES: dict[OpOverload, Callable[[], list[Sample]]]``. A sample is
called as ``overload(*args, **kwargs)``; tensors in args/kwargs (also inside lists) become graph
inputs. Cover several shapes, float/int/bool dtypes where the op accepts them, broadcasting,
negative dims, and size-0 / size-1 dims.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from dycl_jax.compat import OpOverload


@dataclasses.dataclass
class Sample:
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    rtol: float = 1e-5
    atol: float = 1e-6
    # Compare only shape/dtype (ops whose values are unspecified, e.g. aten.empty).
    values: bool = True


SampleFn = Callable[[], list[Sample]]


def all_samples() -> dict[OpOverload, SampleFn]:
    from tests.lower.samples import (
        creation,
        elementwise,
        indexing,
        linalg,
        nn,
        reduction,
        shape,
    )

    table: dict[OpOverload, SampleFn] = {}
    for mod in (creation, elementwise, indexing, linalg, nn, reduction, shape):
        for op, fn in mod.SAMPLES.items():
            if op in table:
                raise ValueError(f"samples for {op} defined twice")
            table[op] = fn
    return table
