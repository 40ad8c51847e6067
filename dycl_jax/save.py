"""``ConvertedModel.save``: write a converted model as an artifact that runs without torch.

What is saved (the format: ``portable.artifact``): every region signature compiled so far,
exported with ``jax.export``; the host programs as ``cm.host_source`` shows them; the names they
read from their modules' globals, resolved now (constants, standard-library modules, host-run
torch ops, other programs); the module tree with its Python attributes (``portable.skeleton``);
the parameters and buffers (safetensors); a manifest.

The converter keys a signature partly by object identity; here every key is translated into the
portable grammar of ``portable.keys`` (modules by path). A signature that cannot be translated
(a closure, a NamedTuple, an object that is not a module of the tree) or whose outputs hold such
a value is left out with a warning, and listed in the manifest: a loaded model raises
``ArtifactError`` if a call needs it.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import hashlib
import inspect
import json
import logging
import os
import platform
import sys
import textwrap
import time
import types
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import torch

from dycl_jax._version import __version__
from dycl_jax.errors import ArtifactError, SourceLocation
from dycl_jax.ir.program import Simple, fallback_name, walk
from dycl_jax.log import logger
from dycl_jax.portable import artifact, hostops, keys, tensors, values
from dycl_jax.portable.hostlib import UNDEFINED
from dycl_jax.runtime import io
from dycl_jax.runtime.runner import RegionRunner, StagedRunner

if TYPE_CHECKING:
    from dycl_jax.api import ConvertedModel
    from dycl_jax.runtime.session import Program

# nn.Module's own instance attributes (hooks, registries): not the user's state.
_MODULE_INTERNALS = frozenset(torch.nn.Module().__dict__) - {"training"}
_KINDS = (
    (torch.nn.ModuleDict, "dict"),
    (torch.nn.ModuleList, "list"),
    (torch.nn.Sequential, "list"),
)


@dataclasses.dataclass
class SaveReport:
    """What ``save`` wrote: sizes in bytes, counts, and the signatures left out (with why)."""

    path: str
    signatures: int
    exported: int
    bytes_exported: int
    bytes_weights: int
    seconds: float
    skipped: list[str]


class _Saver:
    def __init__(self, cm: ConvertedModel, path: str) -> None:
        self.cm = cm
        self.session = cm.session
        self.path = path
        root = self.session.root
        assert root is not None
        self.root = root
        self.paths: dict[int, str] = {}
        for name, m in root.named_modules(remove_duplicate=False):
            self.paths.setdefault(id(m), name)
        self.programs: list[Program] = list(self.session.programs.values())
        # the Python function each program converts (a module-level one is a global's value)
        self.functions = {id(p): fn for (fn, _), p in self.session.programs.items()}
        self.index = {id(p): i for i, p in enumerate(self.programs)}
        self.skipped: list[str] = []
        self.unsaved: list[str] = []  # module attributes saved as placeholders
        # dynamic (converted) methods per owner module: bound by the loader, not placeholders
        self.methods: dict[int, set[str]] = {}
        for p in self.programs:
            if p.owner is not None:
                self.methods.setdefault(id(p.owner), set()).add(p.ir.name)
        self.files: dict[str, str] = {}  # exported function by (jitted, avals) -> file
        self.bytes_exported = 0
        self.signatures = 0
        # (owner module, attribute) -> the state_dict name the session reads it under
        self.param_of: dict[tuple[int, str], str] = {}
        for n in self.session.param_names:
            prefix, _, attr = n.rpartition(".")
            owner = root.get_submodule(prefix) if prefix else root
            self.param_of.setdefault((id(owner), attr), n)

    def module_path(self, v: Any) -> str | None:
        return self.paths.get(id(v)) if isinstance(v, torch.nn.Module) else None

    def encode(self, v: Any) -> Any:
        return values.encode(v, self.module_path)

    # ---- the module tree ---------------------------------------------------------------------

    def tree(self) -> dict[str, Any]:
        done: set[int] = set()

        def node(m: torch.nn.Module, path: str) -> dict[str, Any]:
            done.add(id(m))
            kind = next((k for cls, k in _KINDS if isinstance(m, cls)), "module")
            children = []
            for name, child in m._modules.items():
                if child is None:
                    continue
                cpath = f"{path}.{name}" if path else name
                if id(child) in done:
                    children.append([name, {"ref": self.paths[id(child)]}])
                else:
                    children.append([name, node(child, cpath)])
            params = {
                a: self.param_of[(id(m), a)]
                for a in (*m._parameters, *m._buffers)
                if (id(m), a) in self.param_of
            }
            attrs = self.attrs(m, set(params) | set(m._modules))
            for slots in (m._parameters, m._buffers, m._modules):
                attrs.update((a, None) for a, v in slots.items() if v is None)  # bias=False
            return {
                "path": path,
                "class": type(m).__qualname__,
                "kind": kind,
                "children": children,
                "params": params,
                "attrs": attrs,
            }

        return node(self.root, "")

    def attrs(self, m: torch.nn.Module, taken: set[str]) -> dict[str, Any]:
        """A module's Python attributes: class-level values and properties first, then its own."""
        found: dict[str, Any] = {}
        dynamic = self.methods.get(id(m), set())
        for cls in reversed(type(m).__mro__):
            if cls is object or cls.__module__.startswith("torch"):
                continue
            for name, v in vars(cls).items():
                if name.startswith("__") or name in dynamic:
                    continue
                if isinstance(v, types.FunctionType | staticmethod | classmethod):
                    found[name] = _Method(f"{cls.__qualname__}.{name}()")
                    continue
                if isinstance(v, property):
                    try:
                        v = getattr(m, name)
                    except Exception:
                        continue
                found[name] = v
        found.update((k, v) for k, v in m.__dict__.items() if k not in _MODULE_INTERNALS)
        out: dict[str, Any] = {}
        for name, v in found.items():
            if name in taken or name.startswith("_dycl"):
                continue
            if isinstance(v, _Method):
                what = f"{v.name}, a method that is not converted (only methods that branch on "
                what += "tensors run from an artifact)"
                out[name] = {"$": "unsaved", "what": what}
                continue
            try:
                out[name] = self.encode(v)
            except values.Unencodable as e:
                what = f"{type(m).__qualname__}.{name} ({e})"
                out[name] = {"$": "unsaved", "what": what}
                self.unsaved.append(what)
        return out

    # ---- programs ----------------------------------------------------------------------------

    def program(self, prog: Program) -> dict[str, Any]:
        source = prog.host_source
        digest = hashlib.sha1(source.encode()).hexdigest()[:12]
        file = f"host/{prog.ir.name}.{digest}.py"
        target = os.path.join(self.path, file)
        if not os.path.exists(target):
            with open(target, "w") as f:
                f.write(source)
        owner = None
        if prog.owner is not None:
            owner = self.module_path(prog.owner)
            if owner is None:
                raise ArtifactError(
                    f"{prog.qualname} runs on a {type(prog.owner).__name__}, which is not a "
                    "module of the model: the artifact cannot hold it"
                )
        regions = [self.region(prog, r) for r in prog.runners]
        return {
            "qualname": prog.qualname,
            "name": prog.ir.name,
            "method": prog.ir.name,
            "file": file,
            "owner": owner,
            "globals": self.globals(prog),
            "regions": regions,
        }

    def globals(self, prog: Program) -> dict[str, Any]:
        """Each name the host source reads from its globals, resolved to a saved form."""
        ns = prog.namespace
        out: dict[str, Any] = {}
        own = {r.name for r in prog.runners} | {"_dy"}
        for name in sorted(_free_names(prog.host_source) - own):
            try:
                v = ns[name]
            except KeyError:
                continue  # a NameError in the original too
            if getattr(builtins, name, _ABSENT) is v:
                continue
            out[name] = self.global_value(prog, name, v)
        return out

    def global_value(self, prog: Program, name: str, v: Any) -> dict[str, Any]:
        if isinstance(v, types.ModuleType):
            if v.__name__ == "torch" or v.__name__.startswith("torch."):
                return {"kind": "torch", "name": v.__name__}
            if v.__name__ in artifact.IMPORTABLE:
                return {"kind": "import", "module": v.__name__}
        elif isinstance(v, logging.Logger):
            return {"kind": "logger", "name": v.name}
        elif isinstance(v, type) and issubclass(v, BaseException):
            # an exception class forward raises and catches (an early exit): its source, run
            # at load; a class that needs more than builtins there is a placeholder instead
            try:
                source = textwrap.dedent(inspect.getsource(v))
            except (OSError, TypeError):
                source = None
            if source is not None:
                return {"kind": "class", "name": v.__name__, "source": source}
        elif callable(v):
            for i, p in enumerate(self.programs):
                if p.owner is None and self.functions[id(p)] is v:
                    return {"kind": "program", "index": i}
            qual = _torch_name(v)
            if qual is not None and qual in hostops.FUNCTIONS:
                return {"kind": "hostop", "name": qual}
            mod, fname = getattr(v, "__module__", None), getattr(v, "__name__", None)
            if mod in artifact.IMPORTABLE and getattr(sys.modules.get(mod), str(fname), None) is v:
                return {"kind": "import", "module": mod, "attr": fname}
        else:
            try:
                return {"kind": "const", "value": self.encode(v)}
            except values.Unencodable:
                pass
        what = f"{name} (a {type(v).__module__}.{type(v).__qualname__}, read by {prog.qualname})"
        logger.warning("save: %s is not saved; the loaded model raises if it uses it", what)
        return {"kind": "unsaved", "what": what}

    def region(self, prog: Program, runner: RegionRunner) -> dict[str, Any]:
        sigs = []
        entries = dict(runner.cache)
        for key, variants in runner._variants.items():
            valid = [e for e in variants if e.valid()]
            if valid:
                entries[key] = valid[-1]
        for key, entry in entries.items():
            if entry.guards and not entry.valid():
                continue
            where = f"{prog.qualname}.{runner.name}"
            if entry.eager is not None:
                raise ArtifactError(
                    f"save: {where} ({runner.span}) runs in PyTorch on the host for one of its "
                    f"signatures ({entry.why}), and a saved artifact runs without PyTorch"
                )
            try:
                pkey, avals = self.key(key, runner.live_in)
                plan = self.plan(entry.captured.plan.spec)
            except values.Unencodable as e:
                self.skipped.append(f"{where}: {e}")
                logger.warning("save: a signature of %s is left out: %s", where, e)
                continue
            export = None
            if entry.jitted is not None:
                params = [jax.ShapeDtypeStruct(p.shape, p.dtype) for p in entry.params]
                export = self.export(entry.jitted, (*params, *avals))
            sigs.append(
                {
                    "key": pkey,
                    "export": export,
                    "params": list(entry.captured.param_names),
                    "plan": None if entry.captured.plan.identity else plan,
                }
            )
            self.signatures += 1
        staged = isinstance(runner, StagedRunner)
        return {
            "name": runner.name,
            "live_in": list(runner.live_in),
            "live_out": list(runner.live_out),
            "dynamic": sorted(runner.dynamic),
            "fallback": fallback_name(runner.name) if staged else None,
            "signatures": sigs,
        }

    def export(self, jitted: Any, avals: tuple[Any, ...]) -> str:
        cache_key = f"{id(jitted)}:{[(a.shape, str(a.dtype)) for a in avals]}"
        file = self.files.get(cache_key)
        if file is not None:
            return file
        with jax.enable_x64(True):
            blob = bytes(jax.export.export(jitted)(*avals).serialize())
        file = f"regions/{hashlib.sha1(blob).hexdigest()[:16]}.jaxexport"
        target = os.path.join(self.path, file)
        if not os.path.exists(target):
            with open(target, "wb") as f:
                f.write(blob)
            self.bytes_exported += len(blob)
        self.files[cache_key] = file
        return file

    # ---- keys and plans ----------------------------------------------------------------------

    def key(self, key: tuple[Any, ...], names: tuple[str, ...]) -> tuple[list[Any], list[Any]]:
        """The portable form of a converter signature key, and its leaves' abstract values."""
        avals: list[Any] = []
        out = [self._key(k, avals) for k in key[: len(names)]]
        return out, avals

    def _key(self, k: Any, avals: list[Any]) -> Any:
        head = k[0]
        if isinstance(head, tuple):  # (shape, dtype): an array leaf
            avals.append(jax.ShapeDtypeStruct(head, k[1]))
            return list(keys.array_key(head, k[1]))
        if head == "s":
            dtype = np.int64 if k[1] is int else np.float64
            avals.append(jax.ShapeDtypeStruct((), dtype))
            return ["s", k[1].__name__]
        if head == "o" and k[1] == id(UNDEFINED):
            return ["u"]
        if head == "o":
            path = self.paths.get(k[1])  # live while the entry holds it, so the id is its own
            if path is None:
                raise values.Unencodable("a live-in object that is not a module of the model")
            return ["m", path]
        if head in (bool, int, float, str, type(None)):
            return list(keys.value_key(head, k[1]))
        if head is list or head is tuple:
            return [head.__name__, [self._key(x, avals) for x in k[1]]]
        if head is torch.Size:
            return ["tuple", [list(keys.value_key(int, d)) for d in k[1]]]
        if keys.named_tuple_type(head):  # torch.return_types.topk, a NamedTuple: by type name
            return ["named", head.__name__, [self._key(x, avals) for x in k[1]]]
        if head is dict:
            items = []
            for name, x in k[1]:
                if type(name) not in (str, int, bool):
                    raise values.Unencodable(f"a dict live-in keyed by a {type(name).__name__}")
                items.append([name, self._key(x, avals)])
            return ["dict", items]
        what = head.__qualname__ if isinstance(head, type) else repr(head)
        raise values.Unencodable(f"a live-in value of type {what}")

    def plan(self, spec: tuple[Any, ...]) -> list[Any]:
        def node(s: Any) -> Any:
            tag = s[0]
            if tag == "t":
                return ["t", s[1]]
            if tag == "c":
                return ["c", self.encode(s[1])]
            if tag == "l":
                return ["l", s[1].__name__, [node(x) for x in s[2]]]
            if tag == "d":
                return ["d", [[self.encode(k), node(x)] for k, x in s[1]]]
            if tag == "L":
                return ["L", s[1], [node(x) for x in s[2]]]
            if tag == "D":
                return ["D", s[1], [[self.encode(k), node(x)] for k, x in s[2]]]
            if tag == "r":
                return ["r", s[1]]
            if tag == "a":
                return ["a", [self.encode(k) for k in s[1]]]
            if tag == "i":
                return ["i", [self.encode(k) for k in s[1]], [node(x) for x in s[2]]]
            if tag == "j":
                path = [self.encode(k) for k in s[1]]
                return ["j", path, [[self.encode(k), node(x)] for k, x in s[2]]]
            if tag == "n" and s[1].__module__ == "torch.return_types":
                # `m = x.max(-1)`: the torch-free host ops' NamedTuple of the same name
                fields = list(s[1].__match_args__)
                return ["n", s[1].__name__, fields, [node(x) for x in s[2]]]
            raise values.Unencodable(f"a {tag!r} output (a NamedTuple or OrderedDict: not saved)")

        return [node(s) for s in spec]


_ABSENT = object()


@dataclasses.dataclass(frozen=True)
class _Method:
    """A plain (not converted) method of a module class: the artifact does not carry it."""

    name: str


def _free_names(source: str) -> set[str]:
    """Names a host source reads and never binds itself: its globals."""
    loads, bound = _names(source)
    return loads - bound


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names read, names bound: assigned, parameters, imports, handlers) of a host source."""
    tree = ast.parse(source)
    loads: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            bound.add(node.name)
            a = node.args
            bound.update(x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs))
            bound.update(x.arg for x in (a.vararg, a.kwarg) if x is not None)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return loads, bound


def _torch_name(v: Any) -> str | None:
    """``torch.topk`` for the function ``torch.topk`` (also reached as ``from torch import
    topk``); None for anything that is not a public torch function."""
    name = getattr(v, "__name__", None)
    if not isinstance(name, str):
        return None
    for mod, prefix in ((torch, "torch"), (torch.nn.functional, "torch.nn.functional")):
        if getattr(mod, name, None) is v:
            return f"{prefix}.{name}"
    return None


def save(
    cm: ConvertedModel,
    path: str | os.PathLike[str],
    example_inputs: Iterable[tuple[Any, ...]] = (),
) -> SaveReport:
    """Write ``cm`` to the directory ``path`` (created; existing files in it are replaced)."""
    t0 = time.perf_counter()
    path = os.fspath(path)
    session = cm.session
    if session.root is None:
        raise ArtifactError("only a converted nn.Module can be saved")
    examples = []
    inputs = list(example_inputs)
    before = _state(cm) if inputs else None
    for args in inputs:
        if not isinstance(args, tuple):
            raise ArtifactError(
                f"example_inputs holds argument tuples, got a {type(args).__name__}",
                hint="pass [(x1,), (x2,)]",
            )
        out = cm(*args)
        given = keys.describe(keys.split(io.inputs(args), frozenset())[0], _arg_names(args))
        examples.append({"inputs": given, "output": _structure(out)})
    writes = [
        (prog, w) for prog in session.programs.values() if (w := state_write(prog)) is not None
    ]
    if session.state_attrs:
        names = ", ".join(f"{type(o).__name__}.{a}" for o, a in session.state_attrs)
        where = SourceLocation(writes[0][0].ir.filename, writes[0][1][0]) if writes else None
        raise ArtifactError(
            f"{cm._root.qualname} keeps state on its modules between calls ({names}), which "
            "outlives the call; saved artifacts do not carry module state yet",
            where,
            hint="keep per-call state in locals, or run the model converted in-process",
        )
    if writes:
        prog, write = writes[0]
        raise ArtifactError(
            f"{prog.qualname} changes state that outlives the call ({write[1]}): a saved "
            "artifact freezes module attributes and globals as they are at save time",
            SourceLocation(prog.ir.filename, write[0]),
            hint="keep per-call state in locals, or run the model converted in-process",
        )
    if before is not None:
        changed = _changed(before, _state(cm))
        if changed is not None:
            raise ArtifactError(
                f"{cm._root.qualname} changed {changed} while running example_inputs: state "
                "that outlives the call, which a saved artifact freezes as it is at save time",
                hint="keep per-call state in locals, or run the model converted in-process",
            )
    session.refresh_if_stale()
    os.makedirs(os.path.join(path, "host"), exist_ok=True)
    os.makedirs(os.path.join(path, "regions"), exist_ok=True)
    saver = _Saver(cm, path)
    tree = saver.tree()
    if saver.unsaved:
        logger.warning(
            "save: %d module attribute(s) saved as placeholders (the loaded model raises if its "
            "host code uses one): %s",
            len(saver.unsaved),
            "; ".join(saver.unsaved[:5]),
        )
    programs = [saver.program(p) for p in saver.programs]
    weights = {n: np.asarray(a) for n, a in session.params.items()}
    bytes_weights = tensors.write(os.path.join(path, artifact.WEIGHTS), weights, {"format": "pt"})
    manifest = {
        "format": artifact.FORMAT,
        "model": type(session.root).__qualname__,
        "versions": {
            "dycl_jax": __version__,
            "jax": jax.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "platforms": [jax.default_backend()],
        "root": saver.index[id(cm._root)],
        "modules": tree,
        "programs": programs,
        "examples": examples,
        "skipped": saver.skipped,
    }
    with open(os.path.join(path, artifact.MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
    return SaveReport(
        path=path,
        signatures=saver.signatures,
        exported=len(set(saver.files.values())),
        bytes_exported=saver.bytes_exported,
        bytes_weights=bytes_weights,
        seconds=time.perf_counter() - t0,
        skipped=saver.skipped,
    )


_MUTATORS = frozenset(
    {"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "popitem",
     "add", "discard", "sort", "reverse", "__setitem__"}
)  # fmt: skip


def state_write(prog: Program) -> tuple[int, str] | None:
    """(line, statement) of the first statement of ``prog`` (host or region) that writes state
    outliving the call: an attribute or container entry reached from ``self`` or a global, or a
    mutating method called on one (``self.exit_log.append(1)``, ``self.sched["t"] *= 0.5``)."""
    ir = prog.ir
    local = _names(prog.host_source)[1]
    first = {ir.param_names[0]} if prog.owner is not None and ir.param_names else set()
    roots = set(first)

    def outer(e: ast.expr) -> bool:
        while True:
            if isinstance(e, ast.Attribute | ast.Subscript):
                e = e.value
            elif isinstance(e, ast.Call) and _is_getattr(e):
                e = e.args[0]
            else:
                break
        return isinstance(e, ast.Name) and (e.id in roots or e.id not in local)

    codes = [s.code for s in walk(ir.body) if isinstance(s, Simple)]
    for r in ir.regions:
        codes.extend(r.body)
        if r.staged is not None:
            codes.extend(s.code for s in walk(r.staged.block) if isinstance(s, Simple))
    trees = [(code, ast.parse(code.text)) for code in codes]
    # Locals bound to state (log = self.exit_log): writes through them are writes to it.
    grew = True
    while grew:
        grew = False
        for _, tree in trees:
            for node in ast.walk(tree):
                if not isinstance(node, ast.Assign):
                    continue
                v = node.value
                if (
                    isinstance(v, ast.Attribute | ast.Subscript | ast.Name) or _is_getattr(v)
                ) and outer(v):
                    for t in node.targets:
                        if isinstance(t, ast.Name) and t.id not in roots:
                            roots.add(t.id)
                            grew = True
    for code, tree in trees:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("setattr", "delattr")
                and node.args
                and (outer(node.args[0]) or _named(node.args[0], roots))
            ):
                return code.line, ast.unparse(node).splitlines()[0][:80]
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            elif isinstance(node, ast.Delete):
                targets = node.targets
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _MUTATORS
            ):
                receiver = node.func.value
                if _named(receiver, roots - first) or (
                    not isinstance(receiver, ast.Name) and outer(receiver)
                ):
                    return code.line, ast.unparse(node).splitlines()[0][:80]
            for t in targets:
                if isinstance(t, ast.Attribute | ast.Subscript) and outer(t):
                    return code.line, ast.unparse(node).splitlines()[0][:80]
    return None


def _is_getattr(e: ast.expr) -> bool:
    return (
        isinstance(e, ast.Call)
        and isinstance(e.func, ast.Name)
        and e.func.id == "getattr"
        and len(e.args) >= 2
    )


def _named(e: ast.expr, names: set[str]) -> bool:
    return isinstance(e, ast.Name) and e.id in names


def _state(cm: ConvertedModel) -> dict[str, Any]:
    """A fingerprint of what calls could change and an artifact would freeze: every module's
    Python attributes and the globals host programs read (containers by content, other
    objects by identity)."""
    root = cm.session.root
    assert root is not None
    out: dict[str, Any] = {}
    for name, m in root.named_modules():
        for k, v in m.__dict__.items():
            if k not in _MODULE_INTERNALS:
                out[f"{type(m).__qualname__}.{k}" if not name else f"{name}.{k}"] = _print(v)
    for prog in cm.session.programs.values():
        for g in _free_names(prog.host_source):
            v = prog.namespace.get(g, _ABSENT)
            if type(v) in (list, dict, tuple, set, int, float, str, bool):  # data, not code
                out[f"global {g}"] = _print(v)
    return out


def _print(v: Any, depth: int = 0) -> Any:
    t = type(v)
    if depth > 6:
        return ("deep",)
    if t is list or t is tuple:
        return (t.__name__, id(v) if t is list else None, tuple(_print(x, depth + 1) for x in v))
    if t is dict:
        return ("dict", id(v), tuple((k, _print(x, depth + 1)) for k, x in v.items()))
    if t in (int, float, str, bool, type(None), complex):
        return v
    return ("obj", id(v))


def _changed(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    for k in sorted(before.keys() | after.keys()):
        if before.get(k, _ABSENT) != after.get(k, _ABSENT):
            return k
    return None


def _structure(v: Any) -> str:
    """A readable form of an output's structure: ``(float32[1,10], int, [float32[1,4]])``."""
    if isinstance(v, jax.Array | np.ndarray):
        return f"{np.dtype(v.dtype).name}[{','.join(map(str, v.shape))}]"
    if isinstance(v, list):
        return "[" + ", ".join(_structure(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(_structure(x) for x in v) + ")"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {_structure(x)}" for k, x in v.items()) + "}"
    return type(v).__name__


def _arg_names(args: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(f"arg{i}" for i in range(len(args)))
