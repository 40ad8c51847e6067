"""Host synthesis: readable plain-Python source that keeps the original control flow.

``synthesize`` turns the split body into a ``def`` with the original signature. Every region run
is a call ``a, b = _region_N(x, y)`` commented with the user's file:line span; conditions are read
with ``_dy.truth(c)``; dynamic callees run through ``_dy.call(f, ...)``. The source is registered
with ``linecache`` under a ``<dycl_jax host ...>`` file name so tracebacks show its lines.

``region_source`` builds the Python function a region is captured from: the region's original
statements (with their original line numbers, compiled under the user's file name so ATen nodes
carry the user's file:line) returning the live-out tuple.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import linecache
import os
import re
import sys
import tempfile
import types
from typing import Any

import torch.fx.proxy

from dycl_jax.analysis.source import ParsedFunction
from dycl_jax.rewrite.normalize import RUNTIME
from dycl_jax.rewrite.regions import Region

# ast.FunctionDef has type_params from Python 3.12 on (and unparse needs it there).
_TYPE_PARAMS: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}


@dataclasses.dataclass(frozen=True)
class HostFunction:
    qualname: str
    source: str
    filename: str
    code: types.CodeType


def _undefined_init(names: list[str], origin: ast.AST) -> list[ast.stmt]:
    if not names:
        return []
    stmt = ast.Assign(
        [ast.Name(n, ast.Store()) for n in names],
        ast.Attribute(ast.Name(RUNTIME, ast.Load()), "UNDEFINED", ast.Load()),
    )
    return [ast.fix_missing_locations(ast.copy_location(stmt, origin))]


def synthesize(
    parsed: ParsedFunction, body: list[ast.stmt], regions: list[Region], maybe_undefined: list[str]
) -> HostFunction:
    fn = ast.FunctionDef(
        name=parsed.fn.__name__,
        args=parsed.node.args,
        body=_undefined_init(maybe_undefined, parsed.node) + body,
        decorator_list=[],
        returns=None,
        **_TYPE_PARAMS,
    )
    ast.copy_location(fn, parsed.node)
    module = ast.Module([fn], [])
    ast.fix_missing_locations(module)
    text = ast.unparse(module)
    spans = {r.name: r for r in regions}
    lines = []
    for line in text.splitlines():
        m = re.search(r"\b(_region_\d+)\(", line)
        if m and m[1] in spans:
            r = spans[m[1]]
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(f"{indent}# {r.name}: {_short(r.filename)}:{r.first_line}-{r.last_line}")
        lines.append(line)
    header = f"# dycl_jax host program for {parsed.qualname} ({_short(parsed.filename)}:{parsed.node.lineno})\n"
    source = header + "\n".join(lines) + "\n"
    filename = _host_file(parsed.qualname, source)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec")
    return HostFunction(parsed.qualname, source, filename, code)


def _host_file(qualname: str, source: str) -> str:
    """Host sources are also written to a file so every traceback printer shows their lines."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:12]
    path = os.path.join(tempfile.gettempdir(), "dycl_jax_host", f"{qualname}.{digest}.py")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(source)
    except OSError:
        return f"<dycl_jax host {qualname} {digest}>"
    return path


def _short(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 1 else path


def region_function(
    parsed: ParsedFunction, region: Region, namespace: dict[str, Any]
) -> types.FunctionType:
    """The region as a Python function ``f(*live_in) -> tuple(live_out)`` in the user's file/lines."""
    ret = ast.Return(ast.Tuple([ast.Name(n, ast.Load()) for n in region.live_out], ast.Load()))
    ast.copy_location(ret, region.stmts[-1])
    args = ast.arguments(
        posonlyargs=[],
        args=[ast.arg(n) for n in region.live_in],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )
    fn = ast.FunctionDef(region.name, args, [*region.stmts, ret], [], None, **_TYPE_PARAMS)
    ast.copy_location(fn, region.stmts[0])
    module = ast.Module([fn], [])
    ast.fix_missing_locations(module)
    code = compile(module, parsed.filename, "exec")
    ns: dict[str, Any] = {}
    exec(code, namespace, ns)
    fn = ns[region.name]
    # make_fx keeps only frames named "forward" or registered anchors in node stack traces; anchor
    # the region so every ATen node records the user's file:line (torch is pinned, see pyproject).
    torch.fx.proxy._register_stack_trace_anchor(fn)
    return fn  # type: ignore[no-any-return]


def region_source(region: Region) -> str:
    """Readable source of a region (for explain())."""
    return "\n".join(ast.unparse(s) for s in region.stmts)
