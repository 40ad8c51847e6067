"""Load a saved artifact (``ConvertedModel.save``) and run it with jax and numpy only.

An artifact is a directory::

    manifest.json          versions, the module tree, every program: its globals and regions,
                           each region's saved signatures (key, exported function, parameters,
                           output plan)
    weights.safetensors    parameters and buffers, by state_dict name
    host/*.py              the host programs, as ``cm.host_source`` shows them
    regions/*.jaxexport    compiled regions, serialized with ``jax.export`` (StableHLO)

:func:`load` rebuilds the module tree (``portable.skeleton``), executes each host program with a
``_dy`` whose host-run ops are numpy (``portable.hostops``), and binds each ``_region_N`` to a
:class:`Region` that looks the call's signature up among the saved ones. A call whose signature
was not saved raises :class:`~dycl_jax.errors.ArtifactError` listing the saved ones; a staged
region (``ir.stage``) falls back to its host form, which is always exact.
"""

from __future__ import annotations

import builtins
import importlib
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from dycl_jax import compat
from dycl_jax.compat import ARRAY_IMPL
from dycl_jax.errors import ArtifactError, InputError
from dycl_jax.log import logger
from dycl_jax.portable import hostops, keys, plan, skeleton, tensors, values
from dycl_jax.portable.hostlib import HostLibrary, HostStats
from dycl_jax.portable.structure import map_structure, outputs

FORMAT = "dycl_jax.artifact/1"
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"

# Standard-library and numpy modules a host program may name (``math.exp(x.item())``): imported
# by name at load. Anything else a host program reads from its module's globals is saved as a
# constant or is an Unsaved value.
IMPORTABLE = frozenset(
    {
        "math",
        "cmath",
        "operator",
        "itertools",
        "functools",
        "collections",
        "random",
        "time",
        "logging",
        "warnings",
        "re",
        "string",
        "statistics",
        "heapq",
        "bisect",
        "copy",
        "typing",
        "numpy",
    }
)


class Signature:
    """One saved signature of a region: the exported function, its parameters, its outputs."""

    __slots__ = ("fn", "params", "plan", "staged")

    def __init__(self, fn: Any, params: tuple[Any, ...], plan: Any, staged: bool) -> None:
        self.fn = fn
        self.params = params
        self.plan = plan  # None: every output is a graph output, in order
        self.staged = staged

    def run(self, leaves: list[Any], values: tuple[Any, ...]) -> tuple[Any, ...]:
        outs = self.fn(*self.params, *leaves) if self.fn is not None else ()
        if self.plan is not None:
            outs = plan.build(self.plan, outs, values)
        return outs[:-1] if self.staged else outs  # a staged region's last output: path codes


class LoadStats(HostStats):
    region_calls: int = 0


class Region:
    """What ``_region_N`` names in a loaded host program."""

    def __init__(
        self,
        program: str,
        name: str,
        live_in: tuple[str, ...],
        dynamic: frozenset[int],
        signatures: dict[Any, Signature],
        stats: LoadStats,
    ) -> None:
        self.program = program
        self.name = name
        self.live_in = live_in
        self.dynamic = dynamic
        self.signatures = signatures
        self.stats = stats
        self.fallback: Callable[..., tuple[Any, ...]] | None = None  # staged: the host form

    def __call__(self, *values: Any) -> tuple[Any, ...]:
        key, leaves = keys.split(values, self.dynamic)
        sig = self.signatures.get(key)
        if sig is None:
            if self.fallback is None:
                raise self._unsaved(key)
            try:
                return self.fallback(*values)
            except ArtifactError as e:  # its host form needs a signature not saved either
                raise self._unsaved(key) from e
        self.stats.region_calls += 1
        return sig.run(leaves, values)

    def _unsaved(self, key: Any) -> ArtifactError:
        saved = "\n".join(f"    {keys.describe(k, self.live_in)}" for k in self.signatures)
        return ArtifactError(
            f"{self.program}.{self.name} was called with a signature the artifact does not hold:\n"
            f"    {keys.describe(key, self.live_in)}\n  saved signature(s):\n{saved or '    none'}",
            hint="save the model after calling it on inputs like these "
            "(cm.save(path, example_inputs=[...]))",
        )


class Program:
    """A loaded host program: its function and regions."""

    def __init__(self, qualname: str, source: str, owner: skeleton.Module | None) -> None:
        self.qualname = qualname
        self.source = source
        self.owner = owner
        self.host: Callable[..., Any] = _unbound
        self.regions: list[Region] = []

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.owner is not None:
            return self.host(self.owner, *args, **kwargs)
        return self.host(*args, **kwargs)


def _unbound(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - load binds every program
    raise AssertionError("program not loaded")


class Bound:
    """A dynamic method of a saved module (``self.early_exit``), called through ``_dy.call``."""

    __slots__ = ("owner", "program")

    def __init__(self, program: Program, owner: skeleton.Module) -> None:
        self.program = program
        self.owner = owner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.program.host(self.owner, *args, **kwargs)


class Runtime(HostLibrary):
    """The ``_dy`` of loaded host programs: host-run ops in numpy."""

    def eager(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A host-run op (``torch.nonzero`` in the source is numpy's here, see TorchNames)."""
        self.stats.host_reads += 1
        return fn(*args, **kwargs)

    def eager_method(self, t: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(t, jax.Array | np.ndarray):
            return getattr(t, name)(*args, **kwargs)  # a list's own .sort()
        op = hostops.METHODS.get(name)
        if op is None:
            raise ArtifactError(f"Tensor.{name} has no host implementation without torch")
        self.stats.host_reads += 1
        return op(t, *args, **kwargs)

    def eager_getitem(self, t: Any, index: Any) -> Any:
        self.stats.host_reads += 1
        return hostops.getitem(t, index)

    def call(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a dynamic callee: a saved module's forward, a bound method or a function."""
        if isinstance(f, skeleton.Module):
            bind = f._dycl_methods.get("forward")
            if bind is None:
                raise ArtifactError(f"{f!r}: its forward was not saved")
            f = bind(f)
        if isinstance(f, Bound | Program):
            return f(*args, **kwargs) if isinstance(f, Bound) else f.run(args, kwargs)
        raise ArtifactError(f"a dynamic call of {f!r}, which the artifact does not hold")


class TorchNames:
    """What ``torch`` (or ``torch.nn.functional``...) names in a loaded host program: the host-run
    ops, in numpy (``portable.hostops``), and the no-op grad-mode contexts."""

    _CONTEXTS = frozenset({"no_grad", "enable_grad", "inference_mode", "set_grad_enabled"})

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        qual = f"{self._prefix}.{name}"
        op = hostops.FUNCTIONS.get(qual)
        if op is not None:
            return op
        if name in self._CONTEXTS:
            return _NullContext
        if name in ("nn", "functional"):
            return TorchNames(qual)
        raise ArtifactError(
            f"the host program uses {qual}, which a saved artifact runs without torch and has "
            "no host implementation for"
        )


class _NullContext:
    """``torch.no_grad()`` and friends: nothing to switch off where nothing is differentiated."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None

    def __call__(self, fn: Any) -> Any:  # used as a decorator
        return fn


class LoadedModel:
    """A saved converted model, loaded: called like the original model (numpy or jax arrays in,
    jax arrays out)."""

    def __init__(
        self,
        path: str,
        manifest: dict[str, Any],
        root: Program,
        programs: list[Program],
        stats: LoadStats,
        load_seconds: float,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self._root = root
        self.programs = programs
        self.stats = stats
        self.load_seconds = load_seconds

    @property
    def host_source(self) -> str:
        seen: dict[str, None] = {}
        for p in self.programs:
            seen.setdefault(p.source, None)
        return "\n\n".join(seen)

    def signatures(self) -> dict[str, list[str]]:
        """Every saved signature, by region (``Program.forward._region_1``), readable."""
        out: dict[str, list[str]] = {}
        for p in self.programs:
            for r in p.regions:
                out[f"{p.qualname}.{r.name}"] = [keys.describe(k, r.live_in) for k in r.signatures]
        return out

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with jax.enable_x64(True):  # as the converter runs regions (see dycl_jax/config.py)
            return outputs(self._root.run(_inputs(args), _inputs(kwargs)))


def _inputs(value: Any) -> Any:
    """Arguments as arrays: numpy and jax arrays pass, anything array-like (a CPU torch tensor)
    becomes numpy."""

    def leaf(v: Any) -> Any:
        if type(v) is np.ndarray or type(v) is ARRAY_IMPL or isinstance(v, jax.Array):
            return v
        if hasattr(type(v), "__array__") and not isinstance(v, int | float | bool | complex):
            a = np.asarray(v)
            if a.dtype == object:
                raise InputError(f"an argument of type {type(v).__name__} is not an array")
            return a
        return v

    return map_structure(leaf, value)


def load(path: str | os.PathLike[str], compile_cache: bool | str = False) -> LoadedModel:
    """Load an artifact written by ``ConvertedModel.save``. Needs jax and numpy, not torch.

    Exported regions compile on their first call in each process. ``compile_cache=True`` keeps
    the executables in JAX's persistent compilation cache under ``<path>/xla_cache`` (a string:
    that directory), so the next process starts warm; it sets JAX's process-wide cache options
    and is skipped, with a warning, when another cache directory is configured."""
    t0 = time.perf_counter()
    path = os.fspath(path)
    if compile_cache:
        where = os.path.join(path, "xla_cache") if compile_cache is True else str(compile_cache)
        if not compat.use_compilation_cache(where):
            logger.warning("load: JAX's compilation cache is set elsewhere; left as it is")
    try:
        with open(os.path.join(path, MANIFEST)) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no {MANIFEST} (not a dycl_jax artifact)") from None
    if manifest.get("format") != FORMAT:
        raise ArtifactError(
            f"{path}: artifact format {manifest.get('format')!r}, this dycl_jax reads {FORMAT!r}"
        )
    with jax.enable_x64(True):
        weights = {
            n: jax.device_put(a) for n, a in tensors.read(os.path.join(path, WEIGHTS)).items()
        }
    modules = _modules(manifest["modules"], weights)
    stats = LoadStats()
    exported: dict[str, Any] = {}
    classes: dict[tuple[str, str], Any] = {}  # exception classes, shared by every program
    programs = [
        Program(
            p["qualname"],
            _read(path, p["file"]),
            modules[p["owner"]] if p["owner"] is not None else None,
        )
        for p in manifest["programs"]
    ]
    for spec, prog in zip(manifest["programs"], programs):
        _bind(path, spec, prog, programs, modules, weights, exported, stats, classes)
    for spec, prog in zip(manifest["programs"], programs):
        if prog.owner is not None:
            prog.owner._dycl_methods[spec["method"]] = _binder(prog)
    root = programs[manifest["root"]]
    return LoadedModel(path, manifest, root, programs, stats, time.perf_counter() - t0)


def _binder(prog: Program) -> Callable[[skeleton.Module], Bound]:
    return lambda module: Bound(prog, module)


def _read(path: str, name: str) -> str:
    with open(os.path.join(path, name)) as f:
        return f.read()


def _modules(tree: dict[str, Any], weights: dict[str, Any]) -> dict[str, skeleton.Module]:
    """The saved module tree, by path; attribute values decoded (module references resolved once
    every module exists)."""
    by_path: dict[str, skeleton.Module] = {}
    pending: list[tuple[skeleton.Module, dict[str, Any]]] = []

    def make(node: dict[str, Any]) -> skeleton.Module:
        m = skeleton.of_class(node["kind"], node["class"])(node["path"], node["class"])
        by_path[node["path"]] = m
        pending.append((m, node))
        for name, child in node["children"]:
            if "ref" not in child:
                m._dycl_children[name] = make(child)
        return m

    make(tree)
    for m, node in pending:
        for name, child in node["children"]:
            if "ref" in child:  # a module registered twice (a shared block)
                m._dycl_children[name] = by_path[child["ref"]]
            m.__dict__[name] = m._dycl_children[name]
        for name, full in node["params"].items():
            m.__dict__[name] = weights[full]
        for name, enc in node["attrs"].items():
            m.__dict__[name] = _attr(enc, by_path)
    return by_path


def _attr(enc: Any, by_path: dict[str, skeleton.Module]) -> Any:
    if type(enc) is dict and enc.get("$") == "unsaved":
        return skeleton.Unsaved(enc["what"])
    return values.decode(enc, by_path.__getitem__)


def _bind(
    path: str,
    spec: dict[str, Any],
    prog: Program,
    programs: list[Program],
    modules: dict[str, skeleton.Module],
    weights: dict[str, Any],
    exported: dict[str, Any],
    stats: LoadStats,
    classes: dict[tuple[str, str], Any],
) -> None:
    """Execute one host program with its regions, runtime and globals."""
    ns: dict[str, Any] = {"__builtins__": builtins, "_dy": Runtime(stats), "super": _super}
    for name, g in spec["globals"].items():
        ns[name] = _global(g, programs, modules, classes)
    for r in spec["regions"]:
        sigs: dict[Any, Signature] = {}
        for s in r["signatures"]:
            fn = None
            if s["export"] is not None:
                fn = exported.get(s["export"])
                if fn is None:
                    fn = exported[s["export"]] = _exported(path, s["export"])
            plan = None if s["plan"] is None else _plan(s["plan"], modules)
            params = tuple(weights[n] for n in s["params"])
            sigs[values.frozen(s["key"])] = Signature(fn, params, plan, bool(r["fallback"]))
        region = Region(
            prog.qualname, r["name"], tuple(r["live_in"]), frozenset(r["dynamic"]), sigs, stats
        )
        prog.regions.append(region)
        ns[r["name"]] = region
    code = compile(prog.source, os.path.join(path, spec["file"]), "exec")
    exec(code, ns)
    prog.host = ns[spec["name"]]
    for region, r in zip(prog.regions, spec["regions"]):
        if r["fallback"]:
            region.fallback = ns[r["fallback"]]
            if not region.signatures:  # never staged: the host form directly
                ns[region.name] = region.fallback


def _exported(path: str, name: str) -> Any:
    with open(os.path.join(path, name), "rb") as f:
        exp = jax.export.deserialize(bytearray(f.read()))
    return jax.jit(exp.call)


_SEQUENCES = {"list": list, "tuple": tuple}


def _plan(spec: Any, modules: dict[str, skeleton.Module]) -> tuple[Any, ...]:
    """A saved output plan in the form ``portable.plan`` builds (constants decoded)."""

    def node(s: Any) -> Any:
        tag = s[0]
        if tag == "t" or tag == "r":
            return (tag, s[1])
        if tag == "c":
            return ("c", values.decode(s[1], modules.__getitem__))
        if tag == "l":
            return ("l", _SEQUENCES[s[1]], tuple(node(x) for x in s[2]))
        if tag == "d":
            return ("d", tuple((values.decode(k), node(x)) for k, x in s[1]))
        if tag == "L":
            return ("L", s[1], tuple(node(x) for x in s[2]))
        if tag == "D":
            return ("D", s[1], tuple((values.decode(k), node(x)) for k, x in s[2]))
        if tag == "a":
            return ("a", tuple(values.decode(k) for k in s[1]))
        if tag == "i":
            return ("i", tuple(values.decode(k) for k in s[1]), tuple(node(x) for x in s[2]))
        if tag == "j":
            items = tuple((values.decode(k), node(x)) for k, x in s[2])
            return ("j", tuple(values.decode(k) for k in s[1]), items)
        if tag == "n":  # a torch.return_types result: a NamedTuple of that name and fields
            return ("n", hostops.return_type(s[1], tuple(s[2])), tuple(node(x) for x in s[3]))
        raise ArtifactError(f"unknown output plan entry {tag!r}")

    return tuple(node(s) for s in spec)


def _global(
    g: dict[str, Any],
    programs: list[Program],
    modules: dict[str, skeleton.Module],
    classes: dict[tuple[str, str], Any],
) -> Any:
    kind = g["kind"]
    if kind == "const":
        return values.decode(g["value"], modules.__getitem__)
    if kind == "import":
        mod = importlib.import_module(g["module"])
        for part in g.get("attr", "").split(".") if g.get("attr") else ():
            mod = getattr(mod, part)
        return mod
    if kind == "torch":
        return TorchNames(g["name"])
    if kind == "hostop":
        op = hostops.FUNCTIONS.get(g["name"])
        return op if op is not None else skeleton.Unsaved(g["name"])
    if kind == "program":
        return programs[g["index"]]
    if kind == "logger":
        return logging.getLogger(g["name"])
    if kind == "class":  # one class object per artifact: raised in one program, caught in another
        key = (g["name"], g["source"])
        if key not in classes:
            ns: dict[str, Any] = {"__builtins__": builtins, "__name__": "dycl_jax_artifact"}
            try:
                exec(compile(g["source"], f"<saved class {g['name']}>", "exec"), ns)
                classes[key] = ns[g["name"]]
            except Exception as e:
                classes[key] = skeleton.Unsaved(f"class {g['name']} ({type(e).__name__}: {e})")
        return classes[key]
    return skeleton.Unsaved(g["what"])


def _super(*args: Any) -> Any:
    """``super`` in loaded host programs: a parent class's forward is not carried."""
    if args and isinstance(args[0], skeleton.Unsaved):
        raise ArtifactError(
            "the host program calls super(): a parent class's methods are not carried by "
            "saved artifacts"
        )
    return builtins.super(*args)
