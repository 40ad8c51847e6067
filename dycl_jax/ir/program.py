"""The program IR: a converted function as frozen, typed data.

A :class:`Program` is what rewriting produces and what the runtime, passes and (later) a saved
artifact consume. It holds **no live Python objects and no ``id()`` keys**: every statement is
source text with the user's line numbers, every name is a string, so a program can be compared,
serialized, transformed by passes and interpreted block by block.

Terms:
  * **host statement** — Python that runs on the host every call: control flow (``If``,
    ``While``, ``For``, ``Try``, ``With``), ``Return``/``Break``/``Continue`` and :class:`Simple`
    statements (condition reads ``_dy.truth(t)``, conversions, calls into dynamic callees, side
    effects, bookkeeping on Python values).
  * **region** — a branch-free run of tensor statements captured as one graph per input
    signature. :class:`CallRegion` is its call site: ``outs = region(*args)``.
  * **live-in / live-out** — the local names a region reads before writing (or must pass through
    because it may leave them unassigned), and the names it writes that are read afterwards.
  * **undefined** — locals that the original function may read before assigning on some path;
    the host program presets them to ``_dy.UNDEFINED`` so regions can take them as inputs.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import TypeAlias

from dycl_jax.errors import SourceLocation

RUNTIME = "_dy"  # the name host programs call the runtime library by


class SplitKind(enum.Enum):
    """Why host code exists at a point: the closed set of split reasons."""

    TENSOR_IF = "if on a tensor value"
    TENSOR_WHILE = "while on a tensor value"
    TENSOR_LOOP_BOUND = "loop bound read from a tensor"
    CONVERSION = "tensor converted to a Python value"
    TENSOR_INDEX = "tensor used as a Python index"
    DYNAMIC_CALL = "call into code with tensor-dependent control flow"
    DATA_DEPENDENT_SHAPE = "op whose output shape depends on tensor values"
    HOST_COMPARE = "Python builtin comparing tensors (max/min/sorted)"
    EFFECT = "side effect that must run on every call"
    BOOL_OP = "and/or/not/conditional expression on a tensor"
    HOST_OBJECT = "Python object built from tensors"
    HOST_VALUE = "method of a value read back from a tensor (a numpy array, a Python number)"
    CONTROL = "return/break/continue/raise"


@dataclasses.dataclass(frozen=True)
class SplitReason:
    kind: SplitKind
    location: SourceLocation
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value} at {self.location}" + (
            f" ({self.detail})" if self.detail else ""
        )


@dataclasses.dataclass(frozen=True)
class Code:
    """Python source of one statement, with the user's line number for each of its lines."""

    text: str
    lines: tuple[int, ...]

    @property
    def line(self) -> int:
        return self.lines[0]


# ---- host statements -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Simple:
    """A host statement without nested blocks (assignment, expression, raise, del, ...)."""

    code: Code
    reason: SplitReason | None = None


@dataclasses.dataclass(frozen=True)
class CallRegion:
    """``outs = region(*args)``: run a region with the current values of ``args``."""

    region: str
    args: tuple[str, ...]
    outs: tuple[str, ...]
    line: int


@dataclasses.dataclass(frozen=True)
class Return:
    value: str | None
    line: int


@dataclasses.dataclass(frozen=True)
class Break:
    line: int


@dataclasses.dataclass(frozen=True)
class Continue:
    line: int


@dataclasses.dataclass(frozen=True)
class If:
    test: str
    body: Block
    orelse: Block
    line: int
    reason: SplitReason | None = None


@dataclasses.dataclass(frozen=True)
class While:
    test: str
    body: Block
    orelse: Block
    line: int
    reason: SplitReason | None = None


@dataclasses.dataclass(frozen=True)
class For:
    target: str
    iter: str
    body: Block
    orelse: Block
    line: int
    reason: SplitReason | None = None


@dataclasses.dataclass(frozen=True)
class With:
    items: str
    body: Block
    line: int


@dataclasses.dataclass(frozen=True)
class Handler:
    type: str | None
    name: str | None
    body: Block
    line: int


@dataclasses.dataclass(frozen=True)
class Try:
    body: Block
    handlers: tuple[Handler, ...]
    orelse: Block
    finalbody: Block
    line: int


Stmt: TypeAlias = Simple | CallRegion | Return | Break | Continue | If | While | For | With | Try
Block: TypeAlias = tuple[Stmt, ...]


def nested_blocks(s: Stmt) -> tuple[Block, ...]:
    """The blocks directly nested in ``s`` (empty for statements without any)."""
    if isinstance(s, If | While | For):
        return (s.body, s.orelse)
    if isinstance(s, With):
        return (s.body,)
    if isinstance(s, Try):
        return (s.body, *(h.body for h in s.handlers), s.orelse, s.finalbody)
    return ()


def line_of(s: Stmt) -> int:
    """The user's line of ``s`` (its first, for a simple statement)."""
    return s.code.line if isinstance(s, Simple) else s.line


def map_blocks(s: Stmt, f: Callable[[Block], Block]) -> Stmt:
    """``s`` with each block directly nested in it replaced by ``f(block)`` (``s`` itself when
    it has none)."""
    if isinstance(s, If | While | For):
        return dataclasses.replace(s, body=f(s.body), orelse=f(s.orelse))
    if isinstance(s, With):
        return dataclasses.replace(s, body=f(s.body))
    if isinstance(s, Try):
        return dataclasses.replace(
            s,
            body=f(s.body),
            handlers=tuple(Handler(h.type, h.name, f(h.body), h.line) for h in s.handlers),
            orelse=f(s.orelse),
            finalbody=f(s.finalbody),
        )
    return s


def walk(block: Block) -> list[Stmt]:
    """Every statement of ``block`` and its nested blocks, in source order."""
    out: list[Stmt] = []
    for s in block:
        out.append(s)
        for b in nested_blocks(s):
            out.extend(walk(b))
    return out


# ---- regions and programs --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Region:
    """A branch-free run of tensor statements, captured as one graph per input signature."""

    name: str
    body: tuple[Code, ...]
    live_in: tuple[str, ...]
    live_out: tuple[str, ...]
    # Live-ins that hold Python scalars read back from tensors (passed as 0-d arrays, so a new
    # value does not recompile).
    host_scalars: frozenset[str]
    filename: str
    first_line: int
    last_line: int
    split_reason: SplitReason | None  # why the region ends where it does (None: end of block)
    # The region may write state outside the function (kept even when nothing reads its outputs,
    # so capture can refuse or perform the write).
    effects: bool = False
    # Set on a region made by the staging pass (``ir.stage``): host control flow run in-graph.
    staged: Staged | None = None
    # Live-ins read after the region that it does not hand back (assumed unchanged by it): a
    # capture that finds one of them written in place is refused (see RegionRunner).
    read_after: frozenset[str] = frozenset()
    # Indices into ``body`` where a region merged into this one starts (``ir.sink``): a statement
    # there that raises in PyTorch raises the same as it would have in its own region.
    joins: tuple[int, ...] = ()
    # The region calls what the analysis cannot name (``hooks["exit"](outs, i)``): a capture
    # that finds a list or dict it is given changed, and not handed back, is refused (the region
    # then runs in PyTorch on the caller's containers).
    opaque_calls: bool = False

    @property
    def span(self) -> str:
        return f"{self.filename}:{self.first_line}-{self.last_line}"

    @property
    def source(self) -> str:
        return "\n".join(c.text for c in self.body)


@dataclasses.dataclass(frozen=True)
class Staged:
    """What a staged region stands for: ``block``, host statements (region calls and ``if`` on
    a condition read) that it computes in one graph, each ``if`` as a select. ``block`` is also
    its fallback: the host runs it instead where staging does not apply (a signature whose
    branches disagree in shape, a branch too costly to compute when not taken, gradients)."""

    block: Block
    ifs: tuple[int, ...]  # the user's lines of the ifs computed in-graph


def fallback_name(region: str) -> str:
    """The host function a staged region falls back to, in the host source."""
    return f"{region}_host"


@dataclasses.dataclass(frozen=True)
class Program:
    """One converted function: its signature, host control flow and regions."""

    qualname: str
    name: str
    filename: str
    lineno: int
    params: str  # the def's parameter list, as source
    param_names: tuple[str, ...]
    body: Block
    regions: tuple[Region, ...]
    undefined: tuple[str, ...]  # locals preset to _dy.UNDEFINED
    split_reasons: tuple[SplitReason, ...]  # why host code exists at all (empty: static)

    @property
    def dynamic(self) -> bool:
        return bool(self.split_reasons)

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    def next_region_id(self) -> int:
        """The N of the next fresh ``_region_N`` name (for passes that make regions)."""
        return 1 + max(
            (int(r.name.rsplit("_", 1)[1]) for r in self.regions if r.name[-1].isdigit()),
            default=-1,
        )

    def calls(self) -> list[CallRegion]:
        """Every region call: in the body and in staged regions' fallback blocks."""
        stmts = walk(self.body)
        for r in self.regions:
            if r.staged is not None:
                stmts.extend(walk(r.staged.block))
        return [s for s in stmts if isinstance(s, CallRegion)]
