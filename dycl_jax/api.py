"""``dycl_jax.convert``: the pipeline, one call per stage.

    source ──analysis──▶ kinds ──normalize──▶ trace/host statements ──split──▶ regions
           ──synthesize──▶ host program ──(first call per signature)──▶ capture ▶ lower ▶ jit

Analysis and rewriting run at ``convert`` time for the model's forward and, recursively, for every
dynamic callee the analysis can resolve (submodules, helper methods), so unsupported constructs
fail fast. Capture and lowering run lazily per region and input signature.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import jax
import torch

from dycl_jax.analysis import dependence, source, support
from dycl_jax.config import DEFAULT, Config
from dycl_jax.errors import ConversionError, InputError
from dycl_jax.rewrite import host as host_mod
from dycl_jax.rewrite import regions as regions_mod
from dycl_jax.rewrite.naming import Namer
from dycl_jax.rewrite.normalize import Normalized, Normalizer, SplitReason
from dycl_jax.runtime import dispatch, io


@dataclasses.dataclass(frozen=True)
class RegionInfo:
    """What ``ConvertedModel.regions`` reports for one region."""

    program: str
    id: int
    name: str
    span: str
    live_in: tuple[str, ...]
    live_out: tuple[str, ...]
    split_reason: str
    source: str


@dataclasses.dataclass
class _Analysis:
    parsed: source.ParsedFunction
    typer: dependence.Typer
    namer: Namer
    norm: Normalized

    @property
    def dynamic(self) -> bool:
        return bool(self.norm.reasons)


class _Compiler:
    """Runs analysis + rewriting per (function, owner), memoized; builds runtime Programs."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._analyses: dict[tuple[Any, int], _Analysis | None] = {}
        self.session: dispatch.Session | None = None

    def analyze(self, fn: Any, owner: Any) -> _Analysis:
        key = (fn, id(owner))
        if key in self._analyses:
            a = self._analyses[key]
            if a is None:  # recursion: assume static while its analysis is in progress
                raise _InProgress
            return a
        self._analyses[key] = None
        try:
            parsed = source.parse(fn)
            support.check(parsed)
            typer = dependence.Typer(parsed, owner, is_dynamic_callee=self.is_dynamic)
            namer = Namer(parsed.node)
            norm = Normalizer(parsed, typer, namer).run()
        except BaseException:
            del self._analyses[key]
            raise
        a = _Analysis(parsed, typer, namer, norm)
        self._analyses[key] = a
        return a

    def is_dynamic(self, fn: Any, owner: Any) -> bool:
        try:
            return self.analyze(fn, owner).dynamic
        except _InProgress:
            return False

    def build_program(self, fn: Any, owner: Any) -> dispatch.Program:
        assert self.session is not None
        a = self.analyze(fn, owner)
        # Regions are split after normalization has made every host-only operation a statement.
        for obj, attr in a.norm.state_attrs:
            if (obj, attr) not in self.session.state_attrs:
                self.session.state_attrs.append((obj, attr))
                for p in self.session.programs.values():  # compiled before this state existed
                    for runner in p.runners:
                        runner.cache.clear()
        body, regions, undefined = regions_mod.split(a.parsed, a.typer, a.norm, a.namer)
        hf = host_mod.synthesize(a.parsed, body, regions, undefined)
        namespace: dict[str, Any] = {**a.parsed.globals, **a.parsed.closure}
        runtime = dispatch.Runtime(self.session)
        host_ns: dict[str, Any] = {**namespace, "_dy": runtime}
        prog = dispatch.Program(a.parsed.qualname, hf.source, lambda *x: None, owner, regions)
        for r in regions:
            pyfn = host_mod.region_function(a.parsed, r, namespace)
            dyn = frozenset(i for i, n in enumerate(r.live_in) if n in r.host_scalars)
            runner = dispatch.RegionRunner(
                r.name, pyfn, r.live_in, dyn, r.span, self.session, a.parsed.qualname
            )
            host_ns[r.name] = runner
            prog.runners.append(runner)
        exec(hf.code, host_ns)
        prog.host = host_ns[a.parsed.fn.__name__]
        if self.config.debug >= 1:
            print(f"[dycl_jax] {a.parsed.qualname}: {len(regions)} regions")
            for r in regions:
                print(
                    f"  {r.name} {r.span} in={r.live_in} out={r.live_out} split: {r.split_reason}"
                )
        if self.config.debug >= 2:
            print(hf.source)
        return prog


def _is_binding_error(e: TypeError) -> bool:
    """True for an arity/keyword error raised when calling the host function itself."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code is dispatch.Program.run.__code__


class _InProgress(Exception):
    pass


class ConvertedModel:
    """A PyTorch module converted to a host program over jitted JAX regions.

    Call it like the module (numpy, jax or torch inputs, Python scalars, keywords); tensors come back
    as jax arrays in the same structure PyTorch returns.
    """

    def __init__(self, model: torch.nn.Module, config: Config) -> None:
        self.model = model
        self.config = config
        self._compiler = _Compiler(config)
        self.session = dispatch.Session(model, self._compiler.build_program, config.debug)
        self._compiler.session = self.session
        t0 = time.perf_counter()
        fn, owner = dispatch.resolve_callable(model)
        self._root = self.session.program_for(fn, owner)
        self._build_reachable()
        self.convert_seconds = time.perf_counter() - t0

    def _build_reachable(self) -> None:
        """Build programs for every dynamic callee analysis resolved, so errors surface now."""
        for (fn, _), a in list(self._compiler._analyses.items()):
            if a is not None and a.dynamic:
                owner = a.typer.self_obj
                self.session.program_for(fn, owner)

    # ---- calling -----------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with jax.enable_x64(True):  # scoped; see dycl_jax/config.py
            try:
                return io.outputs(self._root.run(io.inputs(args), io.inputs(kwargs)))
            except TypeError as e:
                if _is_binding_error(e):
                    raise InputError(f"{self._root.qualname}: {e}") from None
                raise

    def apply(self, params: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """The pure form: run with ``params`` (a dict like :attr:`params`) instead of the model's."""
        missing = set(self.session.param_names) - set(params)
        if missing:
            raise InputError(
                f"params is missing {len(missing)} entries, e.g. {sorted(missing)[:3]}"
            )
        token = dispatch.PARAMS.set(params)
        try:
            return self(*args, **kwargs)
        finally:
            dispatch.PARAMS.reset(token)

    @property
    def params(self) -> dict[str, Any]:
        """Parameters and buffers as jax arrays, keyed by state_dict names."""
        return dict(self.session.params)

    @contextlib.contextmanager
    def record(self) -> Iterator[list[tuple[Any, ...]]]:
        """Record the path calls take: ('region', program, name) and ('cond', value) events."""
        with dispatch.record() as events:
            yield events

    # ---- introspection -----------------------------------------------------------------------

    @property
    def programs(self) -> list[dispatch.Program]:
        return list(self.session.programs.values())

    @property
    def host_source(self) -> str:
        """The synthesized host program(s): the forward first, then dynamic callees."""
        seen: dict[str, int] = {}
        for p in self.programs:
            seen[p.host_source] = seen.get(p.host_source, 0) + 1
        parts = []
        for src, n in seen.items():
            parts.append(src if n == 1 else src.replace("\n", f"  (shared by {n} instances)\n", 1))
        return "\n\n".join(parts)

    @property
    def regions(self) -> list[RegionInfo]:
        out = []
        for p in self.programs:
            for r in p.regions:
                out.append(
                    RegionInfo(
                        p.qualname,
                        r.id,
                        r.name,
                        r.span,
                        r.live_in,
                        r.live_out,
                        str(r.split_reason) if r.split_reason else "end of block",
                        host_mod.region_source(r),
                    )
                )
        return out

    @property
    def stats(self) -> dispatch.Stats:
        return self.session.stats

    def explain(self) -> str:
        """A readable report: programs, regions with spans, live sets and why each was split."""
        lines = [
            f"dycl_jax conversion of {type(self.model).__name__} in {self.convert_seconds * 1e3:.1f} ms"
        ]
        for p in self.programs:
            lines.append(f"\nprogram {p.qualname}: {len(p.regions)} region(s)")
            for r in self.regions:
                if r.program != p.qualname:
                    continue
                lines.append(f"  {r.name}  {r.span}")
                lines.append(f"    live-in:  {', '.join(r.live_in) or '-'}")
                lines.append(f"    live-out: {', '.join(r.live_out) or '-'}")
                lines.append(f"    split:    {r.split_reason}")
        lines.append("\nhost source:\n" + self.host_source)
        s = self.stats
        lines.append(
            f"compiled signatures: {s.compiles} (capture {s.capture_seconds:.2f} s, XLA {s.compile_seconds:.2f} s)"
        )
        return "\n".join(lines)


def convert(
    model: torch.nn.Module,
    example_inputs: tuple[Any, ...] | None = None,
    config: Config | None = None,
) -> ConvertedModel:
    """Convert ``model`` (a ``torch.nn.Module`` in eval mode) for JAX.

    Analysis and rewriting happen here; unsupported constructs raise a
    :class:`~dycl_jax.errors.ConversionError` naming file:line. With ``example_inputs`` every region
    on the path those inputs take is captured and compiled now.

    Example::

        cm = dycl_jax.convert(model.eval())
        out = cm(x)                 # jax arrays, same structure as model(x)
        print(cm.host_source)
    """
    if not isinstance(model, torch.nn.Module):
        raise ConversionError(
            f"convert() takes a torch.nn.Module, got {type(model).__name__}",
            hint="wrap the function in an nn.Module whose forward calls it",
        )
    if model.training:
        raise ConversionError(
            f"{type(model).__name__} is in training mode",
            hint="call model.eval() first: dycl_jax compiles inference (dropout off, batch-norm stats fixed)",
        )
    cm = ConvertedModel(model, config or DEFAULT)
    if example_inputs is not None:
        cm(*example_inputs)
    return cm


__all__ = ["ConvertedModel", "RegionInfo", "SplitReason", "convert"]
