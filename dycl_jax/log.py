"""dycl_jax's logger and its levels.

All diagnostics go through the standard :mod:`logging` logger named ``dycl_jax``:

* ``INFO`` — each converted program: its regions, their spans, live sets and split reasons;
  each region signature captured and compiled, with timings; recompiles of a region.
* ``DEBUG`` — also each program's host source and each captured region's ATen graph.

Configure it as any logger (``logging.getLogger("dycl_jax").setLevel(logging.INFO)``).
``Config.debug`` / the ``DYCL_DEBUG`` environment variable is a shortcut: 1 or 2 turn on ``INFO``
or ``DEBUG`` with a stderr handler if the logger has none (3 is ``DEBUG`` too).
"""

from __future__ import annotations

import logging

logger = logging.getLogger("dycl_jax")


def configure(debug: int) -> None:
    """Apply the ``Config.debug`` shortcut (no-op for 0)."""
    if debug <= 0:
        return
    logger.setLevel(logging.INFO if debug == 1 else logging.DEBUG)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[dycl_jax] %(message)s"))
        logger.addHandler(handler)
