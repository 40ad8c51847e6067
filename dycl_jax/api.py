"""``dycl_jax.convert``: the pipeline, one call per stage.

    source ──analysis──▶ kinds ──normalize──▶ trace/host statements ──split──▶ regions
           ──synthesize──▶ host program ──(first call per signature)──▶ capture ▶ lower ▶ jit

Analysis and rewriting run at ``convert`` time for the model's forward and, recursively, for every
dynamic callee the analysis can resolve (submodules, helper methods), so unsupported constructs
fail fast. Capture and lowering run lazily per region and input signature.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import torch

from dycl_jax import compat, log
from dycl_jax.analysis import aliasing, callgraph
from dycl_jax.capture import guards
from dycl_jax.config import Config
from dycl_jax.errors import (
    ConversionError,
    DyclError,
    InputError,
    MismatchError,
    SourceLocation,
    UnsupportedConstructError,
    internal_stage,
)
from dycl_jax.ir import emit, sink, stage, unbound, verify
from dycl_jax.ir.program import Program as IRProgram
from dycl_jax.ir.program import SplitReason, fallback_name
from dycl_jax.log import logger
from dycl_jax.lower import dtypes
from dycl_jax.origin import user_class
from dycl_jax.rewrite import regions as regions_mod
from dycl_jax.rewrite.normalize import Normalized, normalize
from dycl_jax.runtime import context, io, library, loader, per_sample, session, staging
from dycl_jax.runtime.runner import RegionRunner, StagedRunner, Stats
from dycl_jax.testing import difference, path_of

if TYPE_CHECKING:
    from dycl_jax.save import SaveReport


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


class _Compiler:
    """Analysis and rewriting over the call graph; builds a runtime Program per function."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.graph: callgraph.CallGraph[Normalized] = callgraph.CallGraph(normalize)
        self.session: session.Session | None = None

    def _load(self, ir: IRProgram, parsed: Any, owner: Any) -> session.Program:
        """The runtime program of ``ir``: host function and region runners."""
        assert self.session is not None
        source = emit.host_source(ir)
        namespace = loader.Namespace(
            parsed.globals, {**parsed.closure, stage.SELECT: staging.select}
        )
        runtime = library.Runtime(self.session)
        host_ns = loader.Namespace(parsed.globals, {**parsed.closure, "_dy": runtime})
        prog = session.Program(ir, source, lambda *x: None, owner)
        local_defs = tuple(
            (
                n.name if isinstance(n, ast.FunctionDef) else "a lambda",
                n.lineno,
                n.end_lineno or n.lineno,
            )
            for n in parsed.nodes
            if isinstance(n, ast.FunctionDef | ast.Lambda) and n is not parsed.node
        )
        staged: list[StagedRunner] = []
        for r in ir.regions:
            pyfn = loader.region_function(r, namespace)
            if r.staged is None:
                runner = RegionRunner(r, pyfn, self.session, ir.qualname, local_defs)
            else:
                runner = StagedRunner(r, pyfn, self.session, ir.qualname, local_defs)
                staged.append(runner)
            host_ns[r.name] = runner
            prog.runners.append(runner)
        prog.host = loader.host_function(ir, source, host_ns)
        prog.namespace = host_ns
        for runner in staged:
            runner.fallback = host_ns[fallback_name(runner.name)]
            runner.rebind = lambda f, name=runner.name: host_ns.__setitem__(name, f)
        return prog

    def build_program(self, fn: Any, owner: Any) -> session.Program:
        assert self.session is not None
        node = self.graph.add(fn, owner)
        norm = node.normalized
        parsed = node.parsed
        assert norm is not None
        # Regions are split after normalization has made every host-only operation a statement.
        for obj, attr in norm.state_attrs:
            if (obj, attr) not in self.session.state_attrs:
                self.session.state_attrs.append((obj, attr))
                for p in self.session.programs.values():  # compiled before this state existed
                    for runner in p.runners:
                        runner.clear()
        where = parsed.location()
        _check_wrappers(parsed, owner)
        with internal_stage("split", where):
            ir = regions_mod.split(parsed, norm)
        if self.config.verify:
            verify.verify(ir, norm.tensor_names)
        if self.config.stage:
            with internal_stage("stage", where):
                ir = stage.stage(ir, frozenset(norm.host_names), norm.tensor_names)
            if self.config.verify:
                verify.verify(ir, norm.tensor_names)
            with internal_stage("sink", where):
                ir = sink.sink(ir)
            if self.config.verify:
                verify.verify(ir, norm.tensor_names)
        with internal_stage("unbound", where):
            ir = unbound.check_unbound(ir)
        if self.config.verify:
            verify.verify(ir, norm.tensor_names)
        with internal_stage("load", where):
            prog = self._load(ir, parsed, owner)
        if logger.isEnabledFor(logging.INFO):
            lines = [f"{parsed.qualname}: {len(ir.regions)} region(s)"]
            for r in ir.regions:
                lines.append(
                    f"  {r.name} {r.span} in={r.live_in} out={r.live_out} split: {r.split_reason}"
                )
            logger.info("\n".join(lines))
        logger.debug("host source of %s:\n%s", parsed.qualname, prog.host_source)
        return prog


# Decorators a host program may drop: they do not change what forward computes in inference.
_SAFE_DECORATORS = (
    "torch.no_grad",
    "torch.inference_mode",
    "torch.enable_grad",
    "torch.jit.",
    "torch.compiler.disable",
    "staticmethod",
    "classmethod",
    "functools.wraps",
    "wraps",
)


def _check_wrappers(parsed: Any, owner: Any) -> None:
    """A function that gets its own host program runs without its decorators and, for a module's
    forward, without the module's forward hooks: refuse the ones that could change results. A
    decorator that hands back the function itself (transformers' docstring decorators set
    ``__doc__``) changes nothing: the method the class holds is the one compiled from source."""
    if owner is not None and _held_undecorated(parsed.fn, owner):
        return
    for d in parsed.decorators:
        if not d.startswith(_SAFE_DECORATORS):
            raise UnsupportedConstructError(
                f"decorator @{d} on {parsed.qualname}: dycl_jax compiles the function from its "
                "source (split at tensor-dependent control flow, or to run Python on the host "
                "between regions) and would run it without the decorator",
                parsed.location(),
                hint="apply the decorator's effect inside the function (e.g. `with "
                "torch.autocast(...):` around the body) or remove it",
            )


def _held_undecorated(fn: Any, owner: Any) -> bool:
    """Whether ``owner``'s class holds ``fn`` itself under its name (no wrapper around it)."""
    name = fn.__name__
    for c in type(owner).__mro__:
        if name in vars(c):
            raw = vars(c)[name]
            return getattr(raw, "__func__", raw) is fn
    return False


def _check_argument_writes(parsed: Any, owner: Any) -> None:
    """The converted model receives copies of its arguments (arrays, and new lists and dicts
    holding them), so a forward that writes into an argument in place (``cache["k"] = v``,
    ``acc.append(t)``, ``x.clamp_(...)``) would leave the caller's object unchanged: refused."""
    a = parsed.node.args
    positional = [x.arg for x in [*a.posonlyargs, *a.args]]
    own = positional[0] if owner is not None and positional else None
    for name, line in aliasing.param_writes(parsed.node).items():
        if name == own:
            continue
        where = next(
            (n for n in parsed.nodes if isinstance(n, ast.stmt) and n.lineno == line), None
        )
        raise UnsupportedConstructError(
            f"{parsed.qualname} writes into its argument '{name}' in place: the converted model "
            "receives a copy of each argument, so the caller's object would not change",
            parsed.location(where),
            hint=f"copy it first (`{name} = {name}.clone()`, `list({name})`) and return the new "
            "value instead",
        )


def _check_hooks(model: torch.nn.Module) -> None:
    """Forward hooks are refused: on a module with a host program they would not run, and on a
    module traced into a region they would run once per compile, on capture-time stand-ins (a hook
    storing features into a dict would keep those)."""
    from torch.nn.modules import module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        raise UnsupportedConstructError(
            "a global module forward hook is registered: dycl_jax does not run hooks",
            hint="remove the hook before convert, or call its computation from forward",
        )
    for name, m in model.named_modules():
        for kind, registered in (
            ("forward hook", m._forward_hooks),
            ("forward pre-hook", m._forward_pre_hooks),
        ):
            if registered:
                fn = getattr(type(m).forward, "__code__", None)
                where = SourceLocation(fn.co_filename, fn.co_firstlineno) if fn else None
                raise UnsupportedConstructError(
                    f"module {name or type(m).__name__!r} ({type(m).__name__}) has a {kind}: "
                    "dycl_jax does not run hooks",
                    where,
                    hint="remove the hook before convert, or call its computation from forward",
                )


_MISSING = object()


def _snapshot(v: Any, seen: set[int] | None = None, depth: int = 0) -> Any:
    """``v`` with the contents of every list, dict, set, deque and plain object in it
    (subclasses and tuples holding them included), so that :func:`_put_back` can undo in-place
    changes while keeping each object's identity. Each object is recorded once."""
    seen = set() if seen is None else seen
    if id(v) in seen:
        return ("ref", v, None)  # restored where it was met first; the object itself here
    if depth > 8 or isinstance(v, torch.Tensor | jax.Array | np.ndarray):
        return (None, v, None)
    if isinstance(v, dict):
        seen.add(id(v))
        return (dict, v, [(k, _snapshot(x, seen, depth + 1)) for k, x in v.items()])
    if isinstance(v, list | collections.deque | tuple):
        seen.add(id(v))
        kind = type(v) if isinstance(v, tuple) else list
        return (kind, v, [_snapshot(x, seen, depth + 1) for x in v])
    if isinstance(v, set):
        seen.add(id(v))
        return (set, v, list(v))
    if guards.plain_object(v) and user_class(type(v)) and not isinstance(v, BaseException):
        seen.add(id(v))
        items = guards.fields(v).items()
        return (object, v, [(k, _snapshot(x, seen, depth + 1)) for k, x in items])
    return (None, v, None)


def _put_back(snap: Any, leaf: Callable[[Any], Any]) -> Any:
    """The object of ``snap`` holding its snapshot contents again, leaves passed through ``leaf``."""
    kind, v, items = snap
    if kind == "ref":
        return v
    if kind is dict:
        v.clear()
        v.update((k, _put_back(x, leaf)) for k, x in items)
    elif kind is list:
        v.clear()
        v.extend(_put_back(x, leaf) for x in items)
    elif kind is set:
        v.clear()
        v.update(items)
    elif kind is object:
        guards.replace_fields(v, {k: _put_back(x, leaf) for k, x in items})
    elif kind is not None:  # a tuple: immutable itself, its containers refilled
        new = [_put_back(x, leaf) for x in items]
        if all(a is b for a, b in zip(new, v)):
            return v
        return kind(*new) if hasattr(kind, "_fields") else kind(new)
    else:
        return leaf(v)
    return v


def _state(pairs: list[tuple[Any, str]]) -> list[tuple[Any, str, Any]]:
    seen: set[int] = set()
    return [(o, a, _snapshot(o.__dict__.get(a, _MISSING), seen)) for o, a in pairs]


def _python_state(root: torch.nn.Module, written: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
    """Every Python attribute of ``root``'s modules (not parameters, buffers or submodules, which
    live in nn.Module's own dicts), and the attributes forward writes (which may not exist yet)."""
    pairs = [
        (m, a) for m in root.modules() for a in vars(m) if not a.startswith("_") and a != "training"
    ]
    known = {(id(o), a) for o, a in pairs}
    return pairs + [(o, a) for o, a in written if (id(o), a) not in known]


def _restore(state: list[tuple[Any, str, Any]], leaf: Callable[[Any], Any] = lambda v: v) -> None:
    """Module attributes back as ``state`` saw them (containers and objects refilled in place)."""
    for obj, attr, snap in state:
        value = _put_back(snap, leaf)
        if value is _MISSING:
            obj.__dict__.pop(attr, None)
        else:
            obj.__dict__[attr] = value


def _is_binding_error(e: TypeError) -> bool:
    """True for an arity/keyword error raised when calling the host function itself."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code is session.Program.run.__code__


_AMBIGUOUS_ARRAY = "truth value of an array with more than one element is ambiguous"
_AMBIGUOUS_TENSOR = "Boolean value of Tensor with more than one value is ambiguous"


class ConvertedModel:
    """A PyTorch module converted to a host program over jitted JAX regions.

    Call it like the module (numpy, jax or torch inputs, Python scalars, keywords); tensors come back
    as jax arrays in the same structure PyTorch returns.
    """

    def __init__(self, model: torch.nn.Module, config: Config) -> None:
        self.model = model
        self.config = config
        self._compiler = _Compiler(config)
        log.configure(config.debug)
        if config.cache_dir is not None and not compat.use_compilation_cache(config.cache_dir):
            logger.warning(
                "cache_dir=%r: JAX's compilation cache is set to another directory; left as it is",
                config.cache_dir,
            )
        self.session = session.Session(model, self._compiler.build_program)
        self._hook_epoch = guards.hook_epoch()
        self._compiler.session = self.session
        t0 = time.perf_counter()
        fn, owner = library.resolve_callable(model)
        # (before its program is built: a write into an argument is said as such, not as the
        # alias it also makes)
        _check_argument_writes(self._compiler.graph.add(fn, owner).parsed, owner)
        self._root = self.session.program_for(fn, owner)
        self._root_callable = (fn, owner)
        self._root_epoch = guards.structure_epoch()
        self._default_dtype = torch.get_default_dtype()
        guards.watch_method(model, type(model), "forward")  # replaced on the class: followed
        self._build_reachable()
        self.convert_seconds = time.perf_counter() - t0
        self._checked_paths: set[tuple[Any, ...]] = set()  # paths checked mode compared
        # per program: the first statement writing state that outlives the call (save.state_write)
        self._state_writes: dict[Any, tuple[int, str] | None] = {}

    def _follow_model(self) -> None:
        """What every call checks first: no hooks registered since, the default dtype captures
        were made under, and the forward the model has now (``model.forward =
        model.forward_fast`` after convert: its own program)."""
        self._hooks_still_absent()
        dtype = torch.get_default_dtype()
        if dtype is not self._default_dtype:  # torch.zeros(n) in every region follows it
            self._default_dtype = dtype
            self.session.rebuild()
        epoch = guards.structure_epoch()  # (moved by setting a method on the model or class)
        if epoch != self._root_epoch:
            self._root_epoch = epoch
            now = library.resolve_callable(self.model)
            if now != self._root_callable:
                self._root = self.session.program_for(*now)
                self._root_callable = now

    def _hooks_still_absent(self) -> None:
        """Refuse forward hooks registered since convert (checked only when one was registered
        somewhere: an int compare per call)."""
        epoch = guards.hook_epoch()
        if epoch != self._hook_epoch:
            _check_hooks(self.model)
            self._hook_epoch = epoch

    def _build_reachable(self) -> None:
        """Build programs for every dynamic callee analysis resolved, so errors surface now."""
        for node in self._compiler.graph.dynamic_nodes():
            self.session.program_for(node.fn, node.owner)

    # ---- calling -----------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.config.check:
            return self._checked_call(args, kwargs)
        return self._call(args, kwargs)

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.session.refresh_if_stale()
        self._follow_model()
        with jax.enable_x64(True):  # scoped; see dycl_jax/config.py
            try:
                memo: dict[int, Any] = {}
                before = io.argument_arrays(args, kwargs)
                given, given_kw = io.inputs(args, memo), io.inputs(kwargs, memo)
                copies = (
                    io.argument_copies((*args, *kwargs.values()), (*given, *given_kw.values()))
                    if before is not None
                    else []
                )
                result = self._root.run(given, given_kw)
                out = io.outputs(result)
                io.write_back(copies)
                out = io.returned_arguments(result, out, copies)
                io.settle_arguments(args, kwargs, before)
                return out
            except _TRACER_ERRORS as e:
                raise self._traced_call_error(args, kwargs) from e
            except TypeError as e:
                if _is_binding_error(e):
                    raise InputError(f"{self._root.qualname}: {e}") from None
                raise
            except ValueError as e:
                if _AMBIGUOUS_ARRAY in str(e):
                    # Python's truth test of a host array (`max(h, x)` on tensors), which
                    # PyTorch raises as a RuntimeError
                    raise RuntimeError(_AMBIGUOUS_TENSOR) from e
                raise

    def _traced_call_error(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> DyclError:
        """What a call that met abstract JAX values raises: the inputs are abstract (the model
        called inside jax.jit / jax.vmap), or, under ``apply`` with concrete inputs, a value
        computed from the parameters was read on the host."""
        leaves = jax.tree_util.tree_leaves((args, kwargs))
        if context.PARAMS.get() is not None and not any(
            isinstance(v, jax.core.Tracer) for v in leaves
        ):
            return UnsupportedConstructError(
                f"{self._root.qualname} under a JAX transformation of apply (jax.grad): a value "
                "computed from the parameters is read on the host, by an op PyTorch runs there "
                "(boolean-mask indexing, nonzero, argsort, unique, topk) or a Python conversion "
                "of it; a gradient cannot flow through a host read",
                None,
                hint="on the path you differentiate, compute such values densely (torch.where, "
                "a mask multiplied in) so they stay in compiled regions",
            )
        return InputError(
            f"{self._root.qualname} was called on abstract JAX values (inside jax.jit, "
            "jax.vmap or another transformation): its host program decides branches "
            "and loops on concrete tensor values, which a traced call does not have",
            hint="call the converted model outside jax.jit / jax.vmap (its regions are "
            "jitted already); for gradients use jax.grad over cm.apply(params, ...)",
        )

    def _checked_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Checked mode: compare with eager PyTorch on the first call of each distinct path."""
        # Module attributes forward writes (recurrent gate state) are restored around each run, so
        # both see the state the call started from and the converted run's state is kept.
        # Contents of the lists, dicts and helper objects they hold are restored too (in place:
        # objects shared between modules stay shared); eager PyTorch gets torch tensors where
        # the converted run keeps arrays.
        root = self.session.root
        pairs = self.session.state_attrs
        state = _state(_python_state(root, pairs) if root is not None else pairs)
        with context.record() as events:
            got = self._call(args, kwargs)
        path = path_of(events)
        if path in self._checked_paths:
            return got
        after = _state([(o, a) for o, a, _ in state])
        _restore(state, io.to_torch)
        try:
            with torch.no_grad():
                want = self.model(*io.to_torch(args), **io.to_torch(kwargs))
        finally:
            _restore(after)
        diff = difference(got, want, self.config.check_rtol, self.config.check_atol)
        if diff is not None:
            regions = [f"{e[1]}.{e[2]}" for e in events if e[0] == "region"]
            raise MismatchError(
                f"checked mode: the converted {self._root.qualname} differs from eager PyTorch: "
                f"{diff}\n  path taken: {len(regions)} region call(s) "
                f"({', '.join(dict.fromkeys(regions))}), conditions "
                f"{[e[1] for e in events if e[0] == 'cond']}",
                hint="please report this with the model; run the model in PyTorch meanwhile",
            )
        self._checked_paths.add(path)
        return got

    def apply(self, params: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """The pure form: run with ``params`` (a dict like :attr:`params`) instead of the model's
        parameters; buffers come from :attr:`buffers` unless ``params`` has them too. Under
        ``jax.grad`` this differentiates the path the inputs take."""
        full = {**self.buffers, **params}
        missing = set(self.session.param_names) - set(full)
        if missing:
            raise InputError(
                f"params is missing {len(missing)} entries, e.g. {sorted(missing)[:3]}"
            )
        token = context.PARAMS.set(full)
        try:
            return self(*args, **kwargs)
        finally:
            context.PARAMS.reset(token)

    def per_sample(self, *args: Any, stack: bool = True, mesh: Any = None, **kwargs: Any) -> Any:
        """The model on each row of a batch alone, as if called with ``x[i:i+1]`` (non-tensor
        arguments shared), with rows that take the same path run together (vmapped regions;
        see ``dycl_jax.runtime.per_sample``). ``stack=False``: the list of per-row results, each
        what ``cm(x[i:i+1])`` returns. ``stack=True``: one result, tensor leaves concatenated on
        dim 0 and Python numbers as arrays of shape (rows,); rows whose results differ in
        structure raise :class:`~dycl_jax.errors.InputError` (use ``stack=False``).
        ``mesh``: a ``jax.sharding.Mesh`` to shard each group's rows over (all its axes); by
        default every device of the default backend when there are several; False: one device."""
        self._refuse_state("per_sample")
        self.session.refresh_if_stale()
        self._follow_model()
        with jax.enable_x64(True):
            groups = per_sample.run(
                lambda a, k: self._root.run(a, k),
                args,
                kwargs,
                self.session.vmapped,
                layout=per_sample.Layout.choose(mesh),
            )
            self._refuse_state("per_sample")  # in a function first reached by this call
            self.session.stats.per_sample_groups += len(groups)
            rows = [io.outputs(r) for r in per_sample.unstack(groups)]
            return per_sample.stack(rows) if stack else rows

    def _refuse_state(self, what: str) -> None:
        """Refuse ``what`` (run once per group of rows, not per row) for a model whose forward
        writes state that outlives the call: a row's run would change it for the next."""
        from dycl_jax.save import state_write  # save imports the portable side: lazily

        hint = "call the model row by row: [cm(x[i:i+1]) for i in range(len(x))]"
        if self.session.state_attrs:
            names = ", ".join(f"{type(o).__name__}.{a}" for o, a in self.session.state_attrs)
            raise InputError(
                f"{what}: {self._root.qualname} keeps state on its modules ({names}), which "
                "a row's run would change for the next",
                hint=hint,
            )
        for prog in list(self.session.programs.values()):
            if prog not in self._state_writes:  # a static scan: once per program
                self._state_writes[prog] = state_write(prog)
            write = self._state_writes[prog]
            if write is not None:
                raise UnsupportedConstructError(
                    f"{what}: {prog.qualname} changes state that outlives the call "
                    f"({write[1]}), which a row's run would change for the next",
                    SourceLocation(prog.ir.filename, write[0]),
                    hint=hint,
                )

    def warmup(self, inputs: Iterable[tuple[Any, ...]], progress: bool | None = None) -> int:
        """Call the model once on each argument tuple of ``inputs`` so every region on the paths
        they take is captured and compiled now (a paper-size model takes seconds per path).
        Progress goes to the ``dycl_jax`` logger at INFO and, when ``progress`` is true (default:
        stderr is a terminal), as a one-line bar on stderr. Returns how many region signatures
        were compiled."""
        items = list(inputs)
        for i, args in enumerate(items):
            if not isinstance(args, tuple):
                raise InputError(
                    f"warmup() takes argument tuples, got {type(args).__name__} at position {i}",
                    hint="pass [(x1,), (x2,)]",
                )
        show = sys.stderr.isatty() if progress is None else progress
        before = self.stats.compiles
        t0 = time.perf_counter()
        for i, args in enumerate(items, 1):
            self(*args)
            done = self.stats.compiles - before
            elapsed = time.perf_counter() - t0
            logger.info(
                "warmup %d/%d: %d signatures compiled, %.1f s", i, len(items), done, elapsed
            )
            if show:
                bar = "#" * (24 * i // len(items))
                sys.stderr.write(
                    f"\rdycl_jax warmup [{bar:<24}] {i}/{len(items)} inputs, "
                    f"{done} compiled, {elapsed:.1f} s"
                )
                sys.stderr.flush()
        if show and items:
            sys.stderr.write("\n")
        return self.stats.compiles - before

    def refresh(self) -> None:
        """Re-read the model after changes dycl_jax cannot see on its own: weights written
        through ``.data``, a dtype change (``.double()``). Parameters written in place, replaced
        modules, parameters and buffers, and module attributes are followed automatically."""
        self.session.rebuild()

    @property
    def params(self) -> dict[str, Any]:
        """The trainable parameters as jax arrays, keyed by state_dict names (what ``jax.grad``
        of :meth:`apply` differentiates); buffers are in :attr:`buffers`. Current: weights
        written in place since the last call are read again first."""
        s = self.session
        s.refresh_if_stale()
        return {n: v for n, v in s.params.items() if n not in s.buffer_names}

    @property
    def buffers(self) -> dict[str, Any]:
        """Buffers (batch-norm statistics, counters) as jax arrays, keyed by state_dict names."""
        s = self.session
        s.refresh_if_stale()
        return {n: v for n, v in s.params.items() if n in s.buffer_names}

    def state_dict(self, params: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
        """``params`` (default: :attr:`params`) and the buffers as torch tensors, for
        ``model.load_state_dict(...)``: weights trained in JAX go back to PyTorch."""
        merged = {**self.buffers, **(self.params if params is None else params)}
        return {n: dtypes.numpy_to_tensor(v) for n, v in merged.items()}

    @contextlib.contextmanager
    def record(self) -> Iterator[list[tuple[Any, ...]]]:
        """Record the path calls take: ('region', program, name) and ('cond', value) events."""
        with context.record() as events:
            yield events

    # ---- saving ------------------------------------------------------------------------------

    def save(
        self, path: str | os.PathLike[str], example_inputs: Iterable[tuple[Any, ...]] = ()
    ) -> SaveReport:
        """Write this model as a directory that :func:`dycl_jax.load` runs with jax and numpy
        alone (no torch): every region signature compiled so far, plus those the argument
        tuples in ``example_inputs`` reach (each is called first), exported with ``jax.export``;
        the host programs; the module tree's Python attributes; the weights (safetensors).
        A loaded model raises ``ArtifactError`` on a call whose signature was not saved.
        Returns a ``SaveReport`` (sizes, counts, anything left out)."""
        from dycl_jax.save import save

        return save(self, path, example_inputs)

    # ---- introspection -----------------------------------------------------------------------

    @property
    def programs(self) -> list[session.Program]:
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
            for i, r in enumerate(p.regions):
                out.append(
                    RegionInfo(
                        p.qualname,
                        i,
                        r.name,
                        r.span,
                        r.live_in,
                        r.live_out,
                        str(r.split_reason) if r.split_reason else "end of block",
                        r.source,
                    )
                )
        return out

    @property
    def stats(self) -> Stats:
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


# What JAX raises when Python needs a concrete value from a traced one (jit, vmap).
_TRACER_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
)


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
    _check_hooks(model)
    if model.training:
        raise ConversionError(
            f"{type(model).__name__} is in training mode",
            hint="call model.eval() first: dycl_jax compiles inference (dropout off, batch-norm stats fixed)",
        )
    if example_inputs is not None and not isinstance(example_inputs, tuple):
        raise InputError(
            f"example_inputs must be a tuple of forward's arguments, got "
            f"{type(example_inputs).__name__}",
            hint="pass (x,) for a single input",
        )
    cm = ConvertedModel(model, config or Config())
    if example_inputs is not None:
        cm(*example_inputs)
    return cm


__all__ = ["ConvertedModel", "RegionInfo", "SplitReason", "convert"]
