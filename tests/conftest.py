"""Suite-wide settings: every conversion in the tests checks the program IR's invariants after
each stage (``dycl_jax.ir.verify``), so a stage that breaks one fails loudly wherever it shows.
And ``warned``: the warnings dycl_jax's logger gives during a test (pytest's logging plugin is
off), as :class:`Records`."""

import logging
import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("DYCL_VERIFY", "1")


class Records(logging.Handler):
    """The messages of the log records a logger gives from ``level`` up."""

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def warned() -> Iterator[Records]:
    h = Records()
    log = logging.getLogger("dycl_jax")
    log.addHandler(h)
    try:
        yield h
    finally:
        log.removeHandler(h)
