"""Make an IR program runnable: compile its host source and its regions' Python functions.

The host source (``ir.emit.host_source``) is compiled under a file name whose lines are also
written to disk and registered with ``linecache``, so tracebacks through host programs show the
synthesized lines. Each region becomes ``f(*live_in) -> tuple(live_out)`` compiled from the IR's
text under the *user's* file name and line numbers, so captured ATen nodes carry the user's
file:line.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import linecache
import os
import sys
import types
from collections.abc import Callable
from typing import Any

from dycl_jax import compat
from dycl_jax.errors import HOST_PROGRAM_DIR
from dycl_jax.ir.code import to_ast
from dycl_jax.ir.program import Program, Region

# ast.FunctionDef has type_params from Python 3.12 on (and compile needs it there).
_TYPE_PARAMS: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}


class Namespace(dict):  # type: ignore[type-arg]
    """The globals of a host program or region function: its own names (the runtime library,
    region runners, closure values) in the dict, every other name read from the user's module
    globals *live*, so a module-level constant changed after convert is seen (and guarded)."""

    __slots__ = ("live",)

    def __init__(self, live: dict[str, Any], own: dict[str, Any]) -> None:
        # Builtins and imported modules are copied in: looked up in the dict itself they cost a
        # plain lookup; only the module's other globals are read live through __missing__.
        b = live.get("__builtins__", builtins)
        names = vars(b) if isinstance(b, types.ModuleType) else b
        super().__init__((k, v) for k, v in names.items() if k not in live)  # not shadowed
        self.update((k, v) for k, v in live.items() if isinstance(v, types.ModuleType))
        self.update(own)
        self.live = live
        self["__builtins__"] = b

    def __missing__(self, name: str) -> Any:
        return self.live[name]


def compile_host(program: Program, source: str) -> types.CodeType:
    filename = _host_file(program.qualname, source)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return compile(source, filename, "exec")


def host_function(program: Program, source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """The host function of ``program`` with ``namespace`` as its globals."""
    exec(compile_host(program, source), namespace)
    fn: Callable[..., Any] = namespace[program.name]
    return fn


def _host_file(qualname: str, source: str) -> str:
    """Host sources are also written to a file so every traceback printer shows their lines."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    path = os.path.join(HOST_PROGRAM_DIR, f"{qualname}.{digest}.py")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(source)
    except OSError:
        return f"<dycl_jax host {qualname} {digest}>"
    return path


def region_function(region: Region, namespace: dict[str, Any]) -> types.FunctionType:
    """``region`` as ``f(*live_in) -> tuple(live_out)`` in the user's file and lines."""
    body: list[ast.stmt] = [s for c in region.body for s in to_ast(c)]
    ret = ast.Return(ast.Tuple([ast.Name(n, ast.Load()) for n in region.live_out], ast.Load()))
    ast.copy_location(ret, body[-1])
    args = ast.arguments(
        posonlyargs=[],
        args=[ast.arg(n) for n in region.live_in],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )
    fn_node = ast.FunctionDef(region.name, args, [*body, ret], [], None, **_TYPE_PARAMS)
    ast.copy_location(fn_node, body[0])
    module = ast.Module([fn_node], [])
    ast.fix_missing_locations(module)
    code = compile(module, region.filename, "exec")
    ns: dict[str, Any] = {}
    exec(code, namespace, ns)
    fn: types.FunctionType = ns[region.name]
    # make_fx keeps only frames named "forward" or registered anchors in node stack traces; anchor
    # the region so every ATen node records the user's file:line.
    compat.register_stack_trace_anchor(fn)
    return fn
