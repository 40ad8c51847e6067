"""Exception hierarchy. Every dycl_jax error names where, in the user's source, it comes from.

All errors derive from :class:`DyclError`; each carries an optional :class:`SourceLocation` and a
hint, and renders as ``file:line: message`` followed by the offending source line and the hint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import linecache
import os
import re
import tempfile
from collections.abc import Iterator

from dycl_jax.origin import file_origin


def _torch_init_file() -> str | None:
    spec = importlib.util.find_spec("torch")
    return spec.origin if spec else None


@dataclasses.dataclass(frozen=True)
class SourceLocation:
    """A position in user source: file, 1-based line, optional column and function name."""

    filename: str
    lineno: int
    col: int | None = None
    function: str | None = None

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}"

    def source_line(self) -> str:
        return linecache.getline(self.filename, self.lineno).strip()


class DyclError(Exception):
    """Base class of every error dycl_jax raises on purpose."""

    def __init__(
        self,
        message: str,
        location: SourceLocation | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.location: SourceLocation | None = location
        self.hint = hint
        super().__init__(self._render())

    def located(self, location: SourceLocation) -> DyclError:
        """This error, at ``location`` when it had none."""
        if self.location is None:
            self.location = location
            self.args = (self._render(),)
        return self

    def _render(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(f"{self.location}: {self.message}")
            line = self.location.source_line()
            if line:
                parts.append(f"    {line}")
        else:
            parts.append(self.message)
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class ConversionError(DyclError):
    """The model cannot be converted faithfully (raised by ``convert`` or at first call)."""


class SourceUnavailableError(ConversionError):
    """The source of a forward/helper cannot be read (C extension, REPL, exec, lambda)."""


class UnsupportedConstructError(ConversionError):
    """A Python construct that dycl_jax refuses (generators, global writes, randomness, ...)."""


class CaptureError(ConversionError):
    """A region could not be captured as an ATen graph (e.g. data-dependent output shape)."""


class UserCodeError(CaptureError):
    """The region's own code raised while it was traced (its ``__cause__``); the runner checks
    whether PyTorch raises the same on the real values, and if so raises PyTorch's exception."""


class DataDependentError(CaptureError):
    """A region reads a tensor value while tracing (a condition, a shape, a Python index)."""


class StateWriteError(DataDependentError):
    """A region's code sets a module attribute to a new Python number while traced
    (``self.nfe += 1`` in a submodule a helper calls): a compiled region would never repeat it,
    so the region runs in PyTorch on the host instead (see ``runtime.runner._Entry.eager``)."""


class FreshObjectError(DataDependentError):
    """A region returns a Python object its own code built (``DynamicCache.from_legacy_cache``,
    a helper made in a library function): compiled, every call would hand back the one object
    built at capture, so PyTorch runs the region instead, which builds a new one each call."""


class HeldArraysError(DataDependentError):
    """A region's code reads arrays the host stored inside plain objects or containers it does
    not pass as inputs (a beam hypothesis' state, a tree node's ``state``, a cache object's
    lists): the region runs in PyTorch on the host with those arrays as tensors."""


class OpaqueOutputError(CaptureError):
    """A region returns a Python object (not a tensor, list, tuple, dict or NamedTuple) that
    holds tensors: it cannot cross from a region to the host faithfully."""

    def __init__(
        self,
        type_name: str,
        where: str,
        location: SourceLocation | None = None,
        name: str | None = None,
    ) -> None:
        self.type_name = type_name
        self.where = where
        self.index: int | None = None  # which of the region's outputs (set by capture)
        what = f"{name!r} is " if name else "a region output is "
        super().__init__(
            f"{what}a {type_name} object holding a tensor"
            + (f" ({where})" if where and where != "itself" else "")
            + "; dycl_jax cannot carry it out of a compiled region",
            location,
            hint="build the object in forward() itself from tensors it computed (dycl_jax then "
            "builds it on the host), or return the tensors in a tuple, list, dict or NamedTuple",
        )


class MissingLoweringError(ConversionError):
    """An ATen overload in a captured graph has no JAX lowering."""

    def __init__(
        self, overload: str, location: SourceLocation | None = None, hint: str | None = None
    ) -> None:
        self.overload = overload
        super().__init__(
            f"no JAX lowering for ATen op {overload}",
            location,
            hint
            or "see `python -m dycl_jax.lower --coverage`; add one with @lowers in dycl_jax/lower/ops",
        )


class LoweringError(DyclError):
    """A lowering failed while JAX traced it (a bug in dycl_jax or an unsupported case)."""


class DtypeError(ConversionError):
    """A torch dtype with no faithful JAX counterpart."""


class MismatchError(DyclError):
    """Checked mode (``Config(check=True)``): the converted model's result differs from eager
    PyTorch's on a path it had not taken before."""


class InputError(DyclError):
    """A converted model was called with arguments it cannot accept."""


class ArtifactError(DyclError):
    """A converted model cannot be saved as it is, or a saved artifact cannot run a call (a
    signature that was not saved, a value the artifact does not carry)."""


_STACK_LINE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>\S+)')
_TORCH_FILE = _torch_init_file()
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# Frames in these directories are never "the user's line". The zoo is user-style code on purpose.
_INTERNAL_DIRS = tuple(
    os.path.join(_PACKAGE_DIR, d) + os.sep
    for d in ("analysis", "rewrite", "capture", "lower", "runtime")
) + ((os.path.dirname(os.path.abspath(_TORCH_FILE)) + os.sep,) if _TORCH_FILE else ())
# the synthesized host programs (runtime.loader): a frame there is a region call, not user code
HOST_PROGRAM_DIR = os.path.join(tempfile.gettempdir(), "dycl_jax_host")
_INTERNAL_DIRS += (HOST_PROGRAM_DIR + os.sep,)


def location_from_stack_trace(stack_trace: str | None) -> SourceLocation | None:
    """The innermost frame of ``stack_trace`` that lies in user code (not torch, not dycl_jax)."""
    if not stack_trace:
        return None
    found: SourceLocation | None = None
    stdlib: SourceLocation | None = None  # (the line calling into the standard library wins)
    for m in _STACK_LINE.finditer(stack_trace):
        if m["file"].startswith("<eval_with_key>"):  # code FX generated, never the user's
            continue
        path = os.path.abspath(m["file"])
        if path.startswith(_INTERNAL_DIRS) or os.path.dirname(path) == _PACKAGE_DIR:
            continue
        where = SourceLocation(m["file"], int(m["line"]), function=m["fn"])
        if file_origin(path) == "stdlib":
            stdlib = where
        else:
            found = where
    return found or stdlib


class InternalError(DyclError):
    """A dycl_jax defect: an analysis or stage failed where it should not. It names the stage and,
    where known, the user's file:line; the original exception is chained as ``__cause__``."""

    def __init__(
        self, message: str, location: SourceLocation | None = None, stage: str | None = None
    ) -> None:
        self.stage = stage
        super().__init__(
            f"internal error{f' in {stage}' if stage else ''}: {message}",
            location,
            hint="this is a dycl_jax bug; please report it with the model's source",
        )


@contextlib.contextmanager
def internal_stage(stage: str, location: SourceLocation | None = None) -> Iterator[None]:
    """Run a pipeline stage; an exception that is not a :class:`DyclError` is a dycl_jax defect
    and leaves as an :class:`InternalError` naming the stage and the user's location, with the
    original chained. Errors dycl_jax raises on purpose pass through unchanged."""
    try:
        yield
    except DyclError:
        raise
    except Exception as e:
        raise InternalError(f"{type(e).__name__}: {e}", location, stage=stage) from e
