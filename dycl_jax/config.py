"""Conversion options and the package-wide numeric policy.

**64-bit policy (decided once, here).** PyTorch indices and integer results are int64 and Python
floats are float64. JAX disables 64-bit types by default, which would silently narrow int64 to int32
(overflow above 2**31) and float64 to float32. dycl_jax therefore runs every jitted region under
``jax.enable_x64(True)`` — a *scoped* setting entered around each converted-model call, so the
user's own JAX code keeps its global setting. Results carry exactly PyTorch's dtypes (an ``argmax``
comes back int64, a float64 model stays float64). Entering the scope costs under 1 µs per call.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Config:
    """Options for :func:`dycl_jax.convert`.

    Attributes:
        debug: a shortcut for the ``dycl_jax`` logger (see ``dycl_jax.log``): 0 leaves it alone,
            1 logs regions and compiles at INFO, 2 or more also host sources and ATen graphs at
            DEBUG (default from the ``DYCL_DEBUG`` environment variable).
        check: checked mode. The first call on each distinct path (the regions run and the
            conditions read) also runs the eager PyTorch model on the same inputs and raises
            :class:`~dycl_jax.errors.MismatchError` if the results differ beyond ``check_rtol`` /
            ``check_atol``. The way to validate a model before deployment; costs an eager call
            per new path.
        verify: check the program IR's invariants after each stage (``dycl_jax.ir.verify``;
            default from ``DYCL_VERIFY``; the test suite turns it on).
        stage: compute cheap host ``if``s in-graph (``dycl_jax.ir.stage``): a branch whose
            regions are small is traced with its alternative into one region and chosen by a
            select, saving a condition read and region calls; and the region call after a host
            ``if`` runs in the same graph as each branch's last region (``dycl_jax.ir.sink``: a
            SkipNet gate after its block), one call per path instead of two (default from
            ``DYCL_STAGE``, on).
        cache_dir: a directory for JAX's persistent compilation cache (default from
            ``DYCL_CACHE_DIR``; None: off): every compiled region is written there, so the next
            process that converts the same model on the same machine loads its executables
            instead of compiling them. JAX's cache is process-wide: one the user configured
            already is left as it is (with a warning).
    """

    debug: int = dataclasses.field(default_factory=lambda: int(os.environ.get("DYCL_DEBUG", "0")))
    check: bool = False
    check_rtol: float = 1e-4
    check_atol: float = 1e-5
    verify: bool = dataclasses.field(
        default_factory=lambda: os.environ.get("DYCL_VERIFY", "0") not in ("", "0")
    )
    stage: bool = dataclasses.field(
        default_factory=lambda: os.environ.get("DYCL_STAGE", "1") not in ("", "0")
    )
    cache_dir: str | None = dataclasses.field(
        default_factory=lambda: os.environ.get("DYCL_CACHE_DIR") or None
    )


DEFAULT = Config()


def prefer_sync_cpu_dispatch() -> bool:
    """Make JAX run CPU computations on the calling thread, if it is still possible. Returns
    whether CPU dispatch is synchronous.

    A host program reads a condition after almost every region, so JAX's asynchronous CPU dispatch
    buys no overlap and costs a thread hand-off per call: measured on the 2-core machine, a trivial
    jitted call took 25 µs asynchronously and 5 µs synchronously, and zoo models ran 1.4–2.9x
    faster (see BENCHMARKS.md). The setting is read when JAX creates its CPU client, so this only
    acts if no JAX computation has run yet, and never overrides an explicit choice made through the
    ``JAX_CPU_ENABLE_ASYNC_DISPATCH`` environment variable. Results are identical either way.
    """
    import jax

    from dycl_jax.compat import jax_backends_initialized

    if "JAX_CPU_ENABLE_ASYNC_DISPATCH" not in os.environ and not jax_backends_initialized():
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    return not jax.config.values["jax_cpu_enable_async_dispatch"]
