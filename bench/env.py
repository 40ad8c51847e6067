"""Machine and library description for the report header."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

# The machine this harness targets has 2 cores; intra-op threads = cores, inter-op 1. XLA:CPU
# sizes its own thread pool from the core count, so both frameworks use every core.
DEFAULT_THREADS = os.cpu_count() or 1


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(threads: int) -> dict[str, Any]:
    import jax
    import torch

    try:
        import psutil

        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover
        mem_gb = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "jax": jax.__version__,
        "torch_threads": threads,
    }


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (in-process runs after torch did parallel work)
        pass
