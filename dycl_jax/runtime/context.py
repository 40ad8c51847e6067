"""Per-call context of converted-model calls: parameter overrides, path recording, observers.

Three context variables, read on the hot path only when set: ``PARAMS`` (``ConvertedModel.apply``
runs with other parameters), ``RECORD`` (``ConvertedModel.record()`` collects the path a call
takes) and ``OBSERVER`` (instrumentation: a function wrapped around every region execution, e.g.
the benchmark's device-time probe; see :func:`observe_regions`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

# Parameters used by region calls: None means "the converted model's own".
PARAMS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "dycl_params", default=None
)
RECORD: contextvars.ContextVar[list[tuple[Any, ...]] | None] = contextvars.ContextVar(
    "dycl_record", default=None
)

# (program, region, run) -> outputs: wraps each region execution while set.
RegionObserver = Callable[[str, str, Callable[[], tuple[Any, ...]]], tuple[Any, ...]]
OBSERVER: contextvars.ContextVar[RegionObserver | None] = contextvars.ContextVar(
    "dycl_observer", default=None
)


@contextlib.contextmanager
def record() -> Iterator[list[tuple[Any, ...]]]:
    """Collect the path a call takes: ('region', program, name) and ('cond', bool) events."""
    events: list[tuple[Any, ...]] = []
    outer = RECORD.get()
    token = RECORD.set(events)
    try:
        yield events
    finally:
        RECORD.reset(token)
        if outer is not None:  # a recording inside another (checked mode): both see the path
            outer.extend(events)


@contextlib.contextmanager
def observe_regions(observer: RegionObserver) -> Iterator[None]:
    """Call ``observer(program, region, run)`` around every region execution in this context;
    ``run()`` executes the region and returns its outputs, which the observer must return."""
    token = OBSERVER.set(observer)
    try:
        yield
    finally:
        OBSERVER.reset(token)
