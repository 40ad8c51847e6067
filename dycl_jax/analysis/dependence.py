"""Which values are tensors, which are static Python, and which calls need the host.

Terms:
  * **static** (``Kind.PY``): depends only on Python values — constants, module attributes that
    are numbers/strings, shapes (``x.shape``, ``x.size(0)``, ``x.dim()``, ``len(x)``), counters over
    ``range``/``ModuleList``/``zip``/``enumerate``. Static conditions are decided on the host (or
    while tracing a region, specialised per input signature).
  * **tensor** (``Kind.TENSOR``): a tensor, or a container holding tensors.
  * **host value** (``Kind.HOST``): a Python scalar read back from a tensor on the host
    (``t.item()``, ``int(t)``, ``float(t)``, ``bool(t)``, ``t.tolist()``).
  * **object** (``Kind.OBJ``): a static Python object such as a submodule, a ``ModuleList``, a
    function; ``AbsVal.values`` holds the concrete candidates when they are known.

A condition is *tensor-dependent* when its kind is TENSOR or HOST. A call is *dynamic* when its
callee (a user submodule's ``forward`` or a user method/function) itself needs the host — it has
tensor-dependent control flow, conversions, or side effects — and then runs as a nested host program.

``Typer`` infers kinds flow-insensitively (a variable's kind is the join over all its
assignments) by iterating over the function body to a fixpoint. It consumes a ParsedFunction and
the live ``self`` object; it produces kinds per expression on demand.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import enum
import functools
import importlib
import math
import operator
import types
from collections.abc import Callable
from typing import Any

import torch

from dycl_jax.analysis import aliasing, facts, source
from dycl_jax.analysis.facts import (
    COMPARING_BUILTINS,
    CONVERSION_BUILTINS,
    CONVERSION_METHODS,
    DATA_DEPENDENT_OPS,
    LIBRARY_MODULES,
    LIST_ONLY_METHODS,
    PURE_BUILTINS,
    PYTHON_RESULT_OPS,
    RANDOM_OPS,
    SHAPE_ATTRS,
    SHAPE_METHODS,
    SIDE_EFFECT_BUILTINS,
    STRUCTURAL_BUILTINS,
    TIE_SENSITIVE_OPS,
    TORCH_STATIC_FUNCS,
    container_call,
)
from dycl_jax.analysis.source import ParsedFunction
from dycl_jax.compat import OpOverloadPacket
from dycl_jax.errors import InternalError, UnsupportedConstructError
from dycl_jax.origin import foreign, library_origin, unwrap_foreign, user_class


class Kind(enum.IntEnum):
    # Ordered by the join: the join of two kinds is the larger one.
    PY = 0
    OBJ = 1
    HOST = 2
    TENSOR = 3


@dataclasses.dataclass(frozen=True)
class AbsVal:
    kind: Kind
    # Concrete candidates for a static object/value (None: unknown).
    values: tuple[Any, ...] | None = None
    # Element-wise abstract values of a tuple (for unpacking enumerate/zip targets).
    parts: tuple[AbsVal, ...] | None = None

    def join(self, other: AbsVal) -> AbsVal:
        if self == other:
            return self
        kind = max(self.kind, other.kind)
        values = None
        if self.values is not None and other.values is not None and kind == Kind.OBJ:
            values = tuple({id(v): v for v in (*self.values, *other.values)}.values())
        parts = None
        if self.parts and other.parts and len(self.parts) == len(other.parts):
            parts = tuple(a.join(b) for a, b in zip(self.parts, other.parts))
        return AbsVal(kind, values, parts)

    @property
    def dependent(self) -> bool:
        """True when the value depends on tensor *values* (a condition on it needs the host)."""
        return self.kind in (Kind.TENSOR, Kind.HOST)


PY = AbsVal(Kind.PY)
TENSOR = AbsVal(Kind.TENSOR)
HOST = AbsVal(Kind.HOST)
OBJ = AbsVal(Kind.OBJ)


class CallKind(enum.Enum):
    TRACE = "trace"  # traced inside a region (torch op, nn module, static user code)
    PURE = "pure"  # pure Python builtin on static values
    CONVERSION = "conversion"  # tensor -> Python value (host)
    EAGER = "eager"  # data-dependent output shape: run by PyTorch on the host
    HOST_BUILTIN = "host_builtin"  # max/min/sorted over tensors: compare on the host
    DYNAMIC = "dynamic"  # user callee that needs its own host program
    EFFECT = "effect"  # side effect: print, container mutation, setattr


def _host_op(name: str, node: ast.Call, method: bool) -> bool:
    """A torch op run by PyTorch on the host: its output shape depends on values, its result is
    a Python value read from tensors, it samples from torch's generator, or its indices on exact
    ties follow PyTorch's own algorithm (see facts)."""
    if name in DATA_DEPENDENT_OPS or name in PYTHON_RESULT_OPS or name in RANDOM_OPS:
        return True
    if name not in TIE_SENSITIVE_OPS:
        return False
    kw = {k.arg: k.value for k in node.keywords}
    stable = kw.get("stable")
    if name in ("sort", "argsort") and isinstance(stable, ast.Constant) and stable.value is True:
        return False
    if name == "median":  # without a dim it returns the (tie-free) value only
        return bool(node.args[0 if method else 1 :] or "dim" in kw)
    return True


def _only_start(call: ast.Call) -> bool:
    """``enumerate(xs, start=1)``: its one keyword is start."""
    return [k.arg for k in call.keywords] == ["start"]


def is_torch_builtin_module(m: torch.nn.Module) -> bool:
    return type(m).__module__.startswith("torch.")


def classify_value(v: Any) -> AbsVal:
    """The abstract value of a live Python object (a module attribute, a global)."""
    if isinstance(v, torch.Tensor):
        return TENSOR
    if v is None or isinstance(
        v, bool | int | float | str | complex | torch.dtype | torch.device | torch.Size
    ):
        return AbsVal(Kind.PY, (v,))
    if isinstance(v, tuple | list) and all(classify_value(x).kind == Kind.PY for x in v):
        return AbsVal(Kind.PY, (v,))
    if isinstance(v, tuple | list) and any(isinstance(x, torch.Tensor) for x in v):
        return TENSOR
    if isinstance(v, dict) and any(isinstance(x, torch.Tensor) for x in v.values()):
        return TENSOR
    return AbsVal(Kind.OBJ, (v,))


_BUILTIN_IDS = frozenset(id(v) for v in vars(builtins).values())


def _is_builtin(fobj: Any) -> bool:
    return (
        isinstance(fobj, types.BuiltinFunctionType | types.BuiltinMethodType)
        and fobj.__module__ == "builtins"
        or id(fobj) in _BUILTIN_IDS
    )


def user_callee(fobj: Any) -> tuple[Any, Any] | None:
    """(function, bound owner) when calling ``fobj`` runs user Python code that may need its own
    host program: a submodule with a Python forward (not a torch built-in layer), a user method
    or function. None for torch ops and layers, builtins and library functions."""
    if isinstance(fobj, torch.nn.Module):
        if is_torch_builtin_module(fobj) and not isinstance(
            fobj, torch.nn.Sequential | torch.nn.ModuleList
        ):
            return None
        inst = fobj.__dict__.get("forward")
        if isinstance(inst, types.MethodType):
            return inst.__func__, inst.__self__
        if isinstance(inst, types.FunctionType):
            return inst, None
        return type(fobj).forward, fobj
    if _is_builtin(fobj):
        return None
    modname = getattr(fobj, "__module__", "") or ""
    if modname.startswith(LIBRARY_MODULES) or fobj is math:
        return None
    if isinstance(fobj, types.MethodType | types.FunctionType):
        fn = fobj.__func__ if isinstance(fobj, types.MethodType) else fobj
        owner = fobj.__self__ if isinstance(fobj, types.MethodType) else None
        if hasattr(fn, "cache_info") and hasattr(fn, "__wrapped__"):
            return None  # a memoized method (transformers' logger.warning_once): CallKind.EAGER
        if getattr(fn, "__name__", "") == "<lambda>":
            return None  # `self.act = lambda t: t * 2`: one expression, traced where it is called
        fn = unwrap_foreign(fn)  # @torch.no_grad(): the user's function underneath
        if foreign(fn) and not _model_method(fn, owner):
            return None  # torch's or library code: not analysed (see origin.library_origin)
        return fn, owner
    call = next((vars(c)["__call__"] for c in type(fobj).__mro__ if "__call__" in vars(c)), None)
    if isinstance(call, types.FunctionType) and not isinstance(fobj, type) and not foreign(call):
        return call, fobj  # a plain helper object with a Python __call__
    return None


# nn.Module methods that iterate over its submodules (on the host, as Python objects).
_MODULE_WALKS = frozenset({"children", "named_children", "modules", "named_modules"})

# Standard-library modules of pure functional tools (their classes build lazy iterators).
_FUNCTIONAL_MODULES = frozenset({"itertools", "functools", "operator"})

# Standard-library functions that compute a result from their arguments and change nothing
# (by module, as the function reports it): the in-place operators, insort and the heap
# mutators are not among them.
_PURE_STDLIB = {
    "_functools": frozenset({"reduce"}),
    "functools": frozenset({"reduce"}),
    "heapq": frozenset({"nlargest", "nsmallest", "merge"}),
    "_bisect": frozenset({"bisect", "bisect_left", "bisect_right"}),
    "bisect": frozenset({"bisect", "bisect_left", "bisect_right"}),
}


def _pure_stdlib(fobj: Any) -> bool:
    if not isinstance(fobj, types.FunctionType | types.BuiltinFunctionType):
        return False
    module = getattr(fobj, "__module__", None) or ""
    name = getattr(fobj, "__name__", "")
    if module in ("_operator", "operator"):
        return not name.startswith(("i", "set", "del")) or name in (
            "index",
            "indexOf",
            "is_",
            "is_not",
            "inv",
            "invert",
        )
    return name in _PURE_STDLIB.get(module, ())


def _model_method(fn: Any, owner: Any) -> bool:
    """A method of one of the model's own layers defined in an installed package (a
    transformers ``PreTrainedModel`` helper such as ``warn_if_padding_and_no_attention_mask``):
    analysed like the layer's forward, which is, so a tensor condition in it is split."""
    return (
        isinstance(owner, torch.nn.Module)
        and not is_torch_builtin_module(owner)
        and library_origin(fn) == "site-packages"
        and not (getattr(fn, "__module__", None) or "").startswith("torch")
    )


def _written_through(arg: ast.expr) -> set[str]:
    """The local names whose objects a callee writing its parameter in place may change when
    passed ``arg``: a name, the container an entry or view comes from, the names a display
    holds."""
    root = aliasing.view_root(arg)
    names = {root} if root is not None else set()
    if isinstance(arg, ast.List | ast.Tuple | ast.Dict | ast.Set):
        names.update(aliasing.held_names(arg))
    return names


def _is_binding(n: ast.AST) -> bool:
    return isinstance(
        n,
        ast.Assign
        | ast.AnnAssign
        | ast.AugAssign
        | ast.NamedExpr
        | ast.For
        | ast.comprehension
        | ast.With
        | ast.ExceptHandler
        | ast.Import
        | ast.ImportFrom
        | ast.Call,
    )


def _imported(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> AbsVal:
    """What an import statement in forward binds, when it names an absolute module that can be
    imported now (the statement itself imports it on every call)."""
    try:
        if isinstance(node, ast.Import):
            module = importlib.import_module(alias.name)
            if alias.asname is None:  # `import a.b` binds a
                module = importlib.import_module(alias.name.split(".")[0])
            return AbsVal(Kind.OBJ, (module,))
        if node.level or node.module is None:
            return OBJ
        return AbsVal(Kind.OBJ, (getattr(importlib.import_module(node.module), alias.name),))
    except Exception:  # not importable here: unknown, as before
        return OBJ


def _iter_elements(v: Any) -> tuple[Any, ...] | None:
    if isinstance(v, torch.nn.ModuleList | torch.nn.Sequential | list | tuple):
        return tuple(v)
    if isinstance(v, torch.nn.ModuleDict | dict):
        return tuple(v.keys())
    return None


def _python_constant(e: ast.expr) -> bool:
    """A default value made of Python constants (``0.5``, ``-1``, ``-float("inf")``, ``2 ** 8``),
    None excluded (an optional tensor argument)."""
    if isinstance(e, ast.Constant):
        return e.value is not None
    if isinstance(e, ast.UnaryOp):
        return _python_constant(e.operand)
    if isinstance(e, ast.BinOp):
        return _python_constant(e.left) and _python_constant(e.right)
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id in ("float", "int"):
        return not e.keywords and all(_python_constant(a) for a in e.args)
    return False


class Typer:
    """Flow-insensitive kinds for one function body, given the live ``self`` (or None)."""

    def __init__(
        self,
        parsed: ParsedFunction,
        self_obj: Any,
        arg_kinds: dict[str, AbsVal] | None = None,
        dynamic: Callable[[Any, Any], bool] | None = None,
    ) -> None:
        self.parsed = parsed
        self.self_obj = self_obj
        self.env: dict[str, AbsVal] = {}
        # Whether a user callee (function, owner) needs its own host program: the call graph's
        # answer (analysis.callgraph); without one every callee is traced inline.
        self._dynamic = dynamic or (lambda fn, owner: False)
        self._making: set[str] = set()  # locals whose class _made_here is working out
        self._init_params(arg_kinds or {})
        self.locals = self.parsed.assigned_names() | set(self.env)
        self._converge()

    def _converge(self) -> None:
        """Re-visit every binding until no kind changes. Kinds only grow along a finite lattice
        (PY < OBJ < HOST < TENSOR, candidate sets bounded by the objects the source names), so
        this terminates; the bound only turns a defect into an error instead of a hang."""
        bindings = [n for n in self.parsed.nodes if _is_binding(n)]
        bound = 8 * (len(bindings) + len(self.env) + 2)
        for _ in range(bound):
            before = dict(self.env)
            for node in bindings:
                self._visit_binding(node)
            if self.env == before:
                return
        raise InternalError(
            f"kind inference did not converge after {bound} passes",
            self.parsed.location(),
            stage="kind inference",
        )

    def declare(self, name: str, kind: AbsVal) -> None:
        """Declare a synthesized local (a normalizer temporary) whose kind is known."""
        self.env[name] = kind
        self.locals.add(name)

    # ---- environment -------------------------------------------------------------------------

    def _init_params(self, arg_kinds: dict[str, AbsVal]) -> None:
        args = self.parsed.node.args
        positional = [*args.posonlyargs, *args.args]
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        for i, (a, d) in enumerate(zip(positional, defaults)):
            if i == 0 and self.self_obj is not None:  # the bound object, whatever its name
                self.env[a.arg] = AbsVal(Kind.OBJ, (self.self_obj,))
            elif a.arg in arg_kinds:
                self.env[a.arg] = arg_kinds[a.arg]
            else:
                self.env[a.arg] = self._param_kind(a, d)
        for a, d in zip(args.kwonlyargs, args.kw_defaults):
            self.env[a.arg] = arg_kinds.get(a.arg) or self._param_kind(a, d)
        if args.vararg:
            self.env[args.vararg.arg] = arg_kinds.get(args.vararg.arg, TENSOR)
        if args.kwarg:
            self.env[args.kwarg.arg] = arg_kinds.get(args.kwarg.arg, TENSOR)

    @staticmethod
    def _param_kind(a: ast.arg, default: ast.expr | None) -> AbsVal:
        ann = a.annotation
        if isinstance(ann, ast.Name) and ann.id in ("int", "float", "bool", "str"):
            return PY
        if default is not None and _python_constant(default):
            return PY
        return TENSOR

    def bind_local(self, target: ast.expr, val: AbsVal) -> None:
        """Bind a synthesized target (a comprehension's renamed loop variable) as a local."""
        self.bind(target, val)
        self.locals.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))

    def bind(self, target: ast.expr, val: AbsVal) -> None:
        if isinstance(target, ast.Name):
            old = self.env.get(target.id)
            self.env[target.id] = val if old is None else old.join(val)
        elif isinstance(target, ast.Tuple | ast.List):
            for i, elt in enumerate(target.elts):
                if isinstance(elt, ast.Starred):
                    self.bind(elt.value, val if val.kind != Kind.PY else PY)
                elif val.parts and i < len(val.parts):
                    self.bind(elt, val.parts[i])
                elif val.kind == Kind.OBJ and val.values is not None:
                    self.bind(elt, self._element_of(val))
                else:
                    self.bind(elt, AbsVal(val.kind))
        elif isinstance(target, ast.Starred):
            self.bind(target.value, val)

    def _visit_binding(self, node: ast.AST) -> None:
        if isinstance(node, ast.Assign):
            val = self.kind(node.value)
            for t in node.targets:
                self.bind(t, val)
                if (
                    isinstance(t, ast.Subscript)
                    and isinstance(t.value, ast.Name)
                    and t.value.id in self.locals
                    and val.kind == Kind.TENSOR
                    # (`votes[c] = votes.get(c, 0) + 1` does not make itself a tensor)
                    and not any(
                        isinstance(n, ast.Name) and n.id == t.value.id for n in ast.walk(node.value)
                    )
                ):
                    # `outputs[i] = h`: a list or dict a tensor is stored in holds tensors
                    self.bind(t.value, TENSOR)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self.bind(node.target, self.kind(node.value))
        elif isinstance(node, ast.AugAssign):
            self.bind(node.target, self.kind(node.target).join(self.kind(node.value)))
        elif isinstance(node, ast.NamedExpr):
            self.bind(node.target, self.kind(node.value))
        elif isinstance(node, ast.For | ast.comprehension):
            self.bind(node.target, self.iter_element(node.iter))
        elif isinstance(node, ast.With):
            for item in node.items:
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, self.kind(item.context_expr))
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self.env[node.name] = OBJ
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:  # `import copy` in forward: the module it binds
                if alias.name != "*":
                    name = alias.asname or alias.name.split(".")[0]
                    self.env[name] = _imported(node, alias)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr
            in ("append", "extend", "insert", "update", "setdefault", "appendleft", "add")
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in self.locals
        ):
            # a list (dict, set, deque) a tensor is put in holds tensors
            values = [*node.args, *(k.value for k in node.keywords)]
            arg = max((self.kind(a).kind for a in values), default=Kind.PY)
            if arg == Kind.TENSOR:
                self.bind(node.func.value, TENSOR)

    # ---- expressions -------------------------------------------------------------------------

    def _element_of(self, val: AbsVal) -> AbsVal:
        if val.kind != Kind.OBJ or val.values is None:
            return AbsVal(val.kind)
        elems: list[Any] = []
        for v in val.values:
            items = _iter_elements(v)
            if items is None:
                return OBJ
            elems.extend(items)
        out: AbsVal | None = None
        for e in elems:
            ev = classify_value(e)
            out = ev if out is None else out.join(ev)
        return out or PY

    def iter_element(self, it: ast.expr) -> AbsVal:
        """The abstract value of one element when iterating over ``it``."""
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and (not it.keywords or (it.func.id == "enumerate" and _only_start(it)))
        ):
            name = it.func.id
            if name == "range":
                return AbsVal(
                    max((self.kind(a).kind for a in it.args), default=Kind.PY)
                    if any(self.kind(a).dependent for a in it.args)
                    else Kind.PY
                )
            if name == "enumerate" and it.args:
                return AbsVal(Kind.OBJ, parts=(PY, self.iter_element(it.args[0])))
            if name == "zip":
                parts = tuple(self.iter_element(a) for a in it.args)
                return AbsVal(max(p.kind for p in parts) if parts else Kind.PY, parts=parts)
            if name == "reversed" and it.args:
                return self.iter_element(it.args[0])
        if (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Attribute)
            and it.func.attr in ("keys", "values", "items")
            and not it.args
        ):
            base = self.kind(it.func.value)
            if (
                base.kind == Kind.OBJ
                and base.values
                and all(isinstance(v, torch.nn.ModuleDict | dict) for v in base.values)
            ):
                # `for k in self.heads.keys()`: the dict's own keys / values (Python objects)
                keys = tuple(k for d in base.values for k in d.keys())
                vals = tuple(v for d in base.values for v in d.values())
                key, value = (self._element_of(AbsVal(Kind.OBJ, (x,))) for x in (keys, vals))
                if it.func.attr == "items":
                    return AbsVal(Kind.OBJ, parts=(key, value))
                return key if it.func.attr == "keys" else value
        val = self.kind(it)
        if val.kind == Kind.OBJ:
            return self._element_of(val)
        if val.kind == Kind.PY and val.values is not None and len(val.values) == 1:
            v = val.values[0]
            if isinstance(v, tuple | list) and v:
                out = classify_value(v[0])
                for e in v[1:]:
                    out = out.join(classify_value(e))
                return AbsVal(out.kind)
        return AbsVal(val.kind)

    def kind(self, node: ast.expr) -> AbsVal:
        method = getattr(self, f"_k_{type(node).__name__}", None)
        if method is None:
            return self._join_children(node)
        return method(node)

    def _join_children(self, node: ast.AST) -> AbsVal:
        out = PY
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                k = self.kind(child)
                out = AbsVal(max(out.kind, k.kind if k.kind != Kind.OBJ else Kind.PY))
        return out

    def _k_Constant(self, node: ast.Constant) -> AbsVal:
        return AbsVal(Kind.PY, (node.value,))

    def _k_Name(self, node: ast.Name) -> AbsVal:
        if node.id in self.env:
            return self.env[node.id]
        if node.id in self.locals:
            return PY
        for ns in (self.parsed.closure, self.parsed.globals):
            if node.id in ns:
                return classify_value(ns[node.id])
        if hasattr(builtins, node.id):
            return AbsVal(Kind.OBJ, (getattr(builtins, node.id),))
        return OBJ

    def _k_Attribute(self, node: ast.Attribute) -> AbsVal:
        base = self.kind(node.value)
        if base.kind == Kind.TENSOR:
            return PY if node.attr in SHAPE_ATTRS else TENSOR
        if base.kind == Kind.OBJ and base.values is not None:
            out: AbsVal | None = None
            for obj in base.values:
                try:
                    v = getattr(obj, node.attr)
                except Exception:
                    return OBJ
                cv = classify_value(v)
                out = cv if out is None else out.join(cv)
            return out or OBJ
        return AbsVal(base.kind if base.kind != Kind.PY else Kind.PY)

    def _k_Subscript(self, node: ast.Subscript) -> AbsVal:
        base = self.kind(node.value)
        if base.kind == Kind.OBJ and base.values is not None:
            if isinstance(node.slice, ast.Slice):
                # self.blocks[:k]: a sub-sequence of the same candidates (all of them, soundly)
                return base
            elem = self._element_of(base)
            if isinstance(base.values[0], torch.nn.ModuleDict | dict):
                vals = tuple(v for obj in base.values for v in obj.values())
                return AbsVal(Kind.OBJ, vals) if vals else OBJ
            return elem
        if base.kind == Kind.PY and base.values and len(base.values) == 1:
            v = base.values[0]
            if isinstance(v, tuple | list) and any(isinstance(e, torch.Tensor) for e in v):
                return TENSOR
        idx = self.kind(node.slice)
        return AbsVal(max(base.kind, idx.kind if idx.kind != Kind.OBJ else Kind.PY))

    def rng_call(self, node: ast.Call) -> bool:
        """Whether the call reads or sets a random generator's state or makes a generator
        (``facts.touches_rng_state``), also a generator method on a value the analysis has no
        object for (``torch.Generator().manual_seed(s)``)."""
        func = node.func
        cands = self.callee_objects(func)
        if cands is not None:
            return any(facts.touches_rng_state(c) for c in cands)
        return (
            isinstance(func, ast.Attribute)
            and func.attr in facts.GENERATOR_METHODS
            and self.kind(func.value).kind != Kind.TENSOR
        )

    def _k_Call(self, node: ast.Call) -> AbsVal:
        ck = self.call_kind(node)
        if ck is CallKind.CONVERSION:
            return HOST
        if ck is CallKind.EFFECT and self.rng_call(node):
            return HOST  # a generator, its state or a seed: a host value
        func = node.func
        if isinstance(func, ast.Attribute):
            base = self.kind(func.value)
            if base.kind == Kind.TENSOR:
                return PY if func.attr in SHAPE_METHODS else TENSOR
            if base.kind == Kind.HOST:
                return HOST
        fval = self.kind(func)
        if fval.kind == Kind.OBJ and fval.values:
            fobj = fval.values[0]
            if isinstance(fobj, torch.nn.Module):
                return self._returned(TENSOR, fval.values)
            name = getattr(fobj, "__name__", "")
            modname = getattr(fobj, "__module__", "") or ""
            if fobj in (range, enumerate, zip):
                return AbsVal(Kind.OBJ)
            if fobj is super and len(node.args) == 2 and not node.keywords:
                # super(__class__, self) (the parser's form of super()): the parent's methods
                cls, obj = (self.kind(a) for a in node.args)
                if cls.values and obj.values and len(cls.values) == len(obj.values) == 1:
                    try:
                        return AbsVal(Kind.OBJ, (super(cls.values[0], obj.values[0]),))
                    except TypeError:
                        return OBJ
            if modname.startswith("torch") and name in TORCH_STATIC_FUNCS:
                return PY
            if modname.startswith("torch") or isinstance(fobj, OpOverloadPacket):
                return TENSOR
            if fobj in (len, isinstance, issubclass, callable, hasattr, id):
                return PY  # Python answers about the objects, never their values
            if isinstance(fobj, type) and not issubclass(fobj, torch.nn.Module):
                # Constructors of plain Python types: kind of the arguments.
                return self._args_kind(node, default=Kind.PY)
        arg = self._args_kind(node, default=Kind.PY)
        if ck is CallKind.DYNAMIC or ck is CallKind.TRACE:
            return self._returned(AbsVal(max(arg.kind, Kind.TENSOR)), self.callee_objects(func))
        return arg

    def _returned(self, val: AbsVal, callees: tuple[Any, ...] | None) -> AbsVal:
        """``val`` with the parts of the tuple that every user callee returns, where each
        visibly returns Python values at some positions (``return h, steps`` with ``steps`` a
        counter): ``h, n = self.block(x); n += 1`` rebinds a Python int."""
        found: set[tuple[bool, ...]] = set()
        for c in callees or ():
            target = user_callee(c)
            parts = python_return_parts(target[0]) if target is not None else None
            if parts is None:
                return val
            found.add(parts)
        if len(found) != 1:
            return val
        (parts,) = found
        return AbsVal(val.kind, val.values, tuple(PY if p else TENSOR for p in parts))

    def _args_kind(self, node: ast.Call, default: Kind) -> AbsVal:
        kinds = [self.kind(a).kind for a in node.args] + [
            self.kind(k.value).kind for k in node.keywords
        ]
        kinds = [k if k != Kind.OBJ else Kind.PY for k in kinds]
        return AbsVal(max(kinds, default=default))

    def _k_Lambda(self, node: ast.Lambda) -> AbsVal:
        return OBJ

    def _k_IfExp(self, node: ast.IfExp) -> AbsVal:
        return self.kind(node.body).join(self.kind(node.orelse))

    def _k_Tuple(self, node: ast.Tuple) -> AbsVal:
        parts = tuple(self.kind(e) for e in node.elts)
        kind = max((p.kind for p in parts), default=Kind.PY)
        return AbsVal(kind if kind != Kind.OBJ else Kind.OBJ, parts=parts)

    _k_List = _k_Tuple

    def _k_Compare(self, node: ast.Compare) -> AbsVal:
        if all(isinstance(op, ast.Is | ast.IsNot) for op in node.ops):
            return PY
        return self._join_children(node)

    def _k_ListComp(self, node: ast.ListComp) -> AbsVal:
        return self._join_children(node)

    # ---- calls -------------------------------------------------------------------------------

    def callee_objects(self, func: ast.expr) -> tuple[Any, ...] | None:
        """Concrete candidates for a call's callee (None when unknown)."""
        if isinstance(func, ast.Attribute):
            base = self.kind(func.value)
            if base.kind == Kind.OBJ and base.values:
                out = []
                for obj in base.values:
                    try:
                        out.append(getattr(obj, func.attr))
                    except Exception:
                        return None
                return tuple(out)
            return None
        val = self.kind(func)
        if val.kind == Kind.OBJ and val.values:
            return val.values
        return None

    def call_kind(self, node: ast.Call) -> CallKind:
        func = node.func
        if isinstance(func, ast.Attribute):
            base = self.kind(func.value)
            if base.kind == Kind.TENSOR and func.attr in LIST_ONLY_METHODS and container_call(node):
                return CallKind.EFFECT  # a Python list holding tensors, not a tensor
            if base.kind == Kind.TENSOR:
                if _host_op(func.attr, node, method=True):
                    return CallKind.EAGER
                return CallKind.CONVERSION if func.attr in CONVERSION_METHODS else CallKind.TRACE
            if base.kind == Kind.HOST:
                return CallKind.PURE
            if container_call(node) and (
                base.kind != Kind.OBJ
                or (base.values and all(facts.held_state(v) for v in base.values))
            ):
                return CallKind.EFFECT  # incl. a list held on the module: self.cache["k"]
        cands = self.callee_objects(func)
        if cands is None:
            if container_call(node):
                return CallKind.EFFECT
            made = self._made_here(func)
            if made is not None and isinstance(func, ast.Attribute):
                # b.push(v) / q.put(item) on an object made in forward: what the method changes
                # is the point of calling it, so it runs every call (traced, it would run once,
                # at capture). The user's own class's method gets a host program (its tensor
                # work compiled, its Python effects on the host); a library's (queue) runs on
                # the host
                user = all(user_class(c) and not foreign(getattr(c, func.attr, None)) for c in made)
                return CallKind.DYNAMIC if user else CallKind.EFFECT
            if self.rng_call(node):
                return CallKind.EFFECT  # torch.Generator().manual_seed(s): on the host
            return CallKind.TRACE
        kinds = {self._callee_kind(c, node) for c in cands}
        for k in (
            CallKind.EFFECT,
            CallKind.DYNAMIC,
            CallKind.EAGER,
            CallKind.HOST_BUILTIN,
            CallKind.CONVERSION,
            CallKind.TRACE,
        ):
            if k in kinds:
                return k
        return CallKind.PURE

    def _made_here(self, func: ast.expr) -> tuple[type, ...] | None:
        """The classes, when ``func`` is a method of a local that holds, wherever it is
        assigned, an object this function builds from a plain Python class (``b = Buf()``,
        ``q = queue.PriorityQueue()``; not a tensor, a module, or a value the analysis can
        name); else None."""
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            return None
        name = func.value.id
        if name not in self.locals:
            return None
        base = self.kind(func.value)
        if base.kind not in (Kind.PY, Kind.OBJ) or base.values or base.parts is not None:
            return None
        made = self.parsed.assignments(name)
        if made is None or name in self._making:
            return None  # (asked again while answering: `q = q.view(...)` reads q's own kind)
        self._making.add(name)
        try:
            classes = [self._plain_class(v) for v in made]
        finally:
            self._making.discard(name)
        if any(c is None for c in classes):
            return None
        return tuple(c for cs in classes if cs is not None for c in cs)

    def _plain_class(self, value: ast.expr) -> tuple[type, ...] | None:
        """The classes ``value`` builds an instance of, when they are plain Python classes (no
        module, tensor, torch or builtin type)."""
        if not isinstance(value, ast.Call):
            return None
        cands = self.callee_objects(value.func) or ()
        if cands and all(
            isinstance(c, type)
            and not issubclass(c, torch.nn.Module | torch.Tensor)
            and not (getattr(c, "__module__", "") or "").startswith("torch")
            and c.__module__ != "builtins"
            for c in cands
        ):
            return tuple(cands)
        return None

    def _callee_kind(self, fobj: Any, node: ast.Call) -> CallKind:
        if facts.touches_rng_state(fobj):
            return CallKind.EFFECT  # run on the host every call (see facts.touches_rng_state)
        if (
            isinstance(fobj, types.MethodType)
            and isinstance(fobj.__self__, torch.nn.Module)
            and fobj.__name__ in _MODULE_WALKS
        ):
            return CallKind.PURE  # self.seq.named_children(): a Python walk over the modules
        if hasattr(fobj, "cache_info") and hasattr(fobj, "__wrapped__"):
            # functools.lru_cache / cache: PyTorch runs it on the host, so its cache keeps real
            # tensors (traced, it would keep the capture's stand-ins and hand them to eager)
            return CallKind.EAGER
        target = user_callee(fobj)
        if target is not None:
            return CallKind.DYNAMIC if self._dynamic(*target) else CallKind.TRACE
        if isinstance(fobj, torch.nn.Module):
            return CallKind.TRACE
        if _is_builtin(fobj):
            name = getattr(fobj, "__name__", "")
            if name in SIDE_EFFECT_BUILTINS:
                return CallKind.EFFECT
            if name in CONVERSION_BUILTINS and any(
                self.kind(a).kind == Kind.TENSOR for a in node.args
            ):
                return CallKind.CONVERSION
            if name in ("any", "all") and any(self.kind(a).kind == Kind.TENSOR for a in node.args):
                return CallKind.CONVERSION  # bool() of each item, read on the host
            if name in COMPARING_BUILTINS and (
                any(self.kind(a).kind == Kind.TENSOR for a in node.args)
                or self._key_reads_tensors(node)
            ):
                return CallKind.HOST_BUILTIN
            if name in PURE_BUILTINS:
                if (
                    any(self.kind(a).kind == Kind.TENSOR for a in node.args)
                    and name not in STRUCTURAL_BUILTINS
                ):
                    return CallKind.TRACE
                return CallKind.PURE
            return CallKind.TRACE
        modname = getattr(fobj, "__module__", "") or ""
        if modname.startswith("torch") and _host_op(getattr(fobj, "__name__", ""), node, False):
            return CallKind.EAGER
        if fobj is torch.where and len(node.args) == 1 and not node.keywords:
            return CallKind.EAGER  # torch.where(cond) is nonzero(cond, as_tuple=True)
        if fobj is torch.tensor and any(self.kind(a).kind == Kind.TENSOR for a in node.args):
            return CallKind.EAGER  # torch.tensor([t0, t1]) reads the tensors' values
        if modname.startswith(LIBRARY_MODULES) or fobj is math:
            return CallKind.TRACE if modname.startswith("torch") else CallKind.PURE
        if isinstance(fobj, type):
            if issubclass(fobj, torch.Tensor) or fobj.__module__ in _FUNCTIONAL_MODULES:
                # itertools.accumulate(layers, lambda h, f: f(h), initial=x): tensor work
                # done lazily by a pure iterator, traced with the code that consumes it
                return CallKind.TRACE
            if any(
                self.kind(a).kind == Kind.TENSOR
                for a in (*node.args, *(k.value for k in node.keywords))
            ):
                self._refuse_tensor_constructor(fobj, node)
            return CallKind.PURE
        if _pure_stdlib(fobj):
            # functools.reduce(torch.maximum, feats), heapq.nlargest(k, rows, key=torch.norm):
            # Python over tensors, traced like the code around it (on the host, the callable
            # would get arrays PyTorch does not know)
            args = (*node.args, *(k.value for k in node.keywords))
            return (
                CallKind.TRACE
                if any(self.kind(a).kind == Kind.TENSOR or self.reads_tensor(a) for a in args)
                else CallKind.PURE
            )
        if library_origin(fobj) == "stdlib":
            return CallKind.EFFECT  # logging, warnings, time, ...: run on the host every call
        return CallKind.TRACE

    def _refuse_tensor_constructor(self, cls: type, node: ast.Call) -> None:
        """Refuse building a user class from tensors when its ``__init__`` computes with them.
        The host builds such objects (``Dispatcher(gates)``) with the arrays it holds, and methods
        of helper objects are converted, but constructors are not: a torch op or tensor method in
        ``__init__`` would run on an array PyTorch does not know."""
        init = next((vars(c)["__init__"] for c in cls.__mro__ if "__init__" in vars(c)), None)
        if not isinstance(init, types.FunctionType) or foreign(init):
            return  # object.__init__, a dataclass's or a library's: only stores its arguments
        try:
            parsed = source.parse(init)
        except Exception:  # no source: nothing to say
            return
        params = {a.arg for a in parsed.node.args.args[1:]} | {
            a.arg for a in parsed.node.args.kwonlyargs
        }
        for sub in ast.walk(parsed.node):
            if not isinstance(sub, ast.Call) or not isinstance(sub.func, ast.Attribute):
                continue
            root = aliasing.chain_root(sub.func.value)
            if root in params or root in ("torch", "F"):
                raise UnsupportedConstructError(
                    f"{cls.__name__}(...) builds a helper object from tensors, and its __init__ "
                    f"computes with them ({parsed.filename}:{sub.lineno}); dycl_jax converts "
                    "the methods of helper objects, not their constructors",
                    self.parsed.location(node),
                    hint="compute those tensors in forward (or in a method of the object) and "
                    "pass the results to the constructor",
                )

    def _key_reads_tensors(self, node: ast.Call) -> bool:
        """``sorted(range(n), key=lambda i: -scores[i].item())``: a key lambda reading tensors."""
        for k in node.keywords:
            if k.arg == "key" and isinstance(k.value, ast.Lambda):
                return self.kind(k.value.body).dependent
        return False

    def returned_arg(self, call: ast.Call) -> int | None:
        """The position in ``call.args`` of an argument the call may hand back itself, a view
        of it, or a container holding it (``nn.Identity``, dropout in eval, an empty
        ``nn.Sequential``, a user helper ending ``return t[:, :2]``): the result aliases it."""
        found: set[int] = set()
        by_keyword = False
        callees = self.callee_objects(call.func) or ()
        for c in callees:
            if _returns_input(c):
                found.add(0)
                continue
            target = user_callee(c)
            if target is None:
                continue
            fn, owner = target
            shift = 1 if owner is not None else 0
            positions = _returned_param_positions(fn, owner)
            found.update(p - shift for p in positions if p >= shift)
            # a returned parameter passed by keyword (`self.step(tok, h=h)`)
            named = _returned_param_names(fn, owner)
            node = _source_node(fn.__code__, fn) if hasattr(fn, "__code__") else None
            kwarg = node.args.kwarg if node is not None else None
            by_keyword |= any(
                kw.arg is None or kw.arg in named or (kwarg is not None and kwarg.arg in named)
                for kw in call.keywords
            )
        if any(isinstance(a, ast.Starred) for a in call.args):
            by_keyword |= bool(found)  # `f(*hs)`: which argument lands where is not known
        found = {i for i in found if i < len(call.args)}
        if len(found) == 1 and not by_keyword:
            return min(found)
        if found or by_keyword:
            return aliasing.ANY_ARGUMENT  # `return a if c else b`: any of them
        if any(_opaque_holder(c) for c in callees):
            return aliasing.ANY_ARGUMENT
        return None

    def may_change_state(self, call: ast.Call) -> bool:
        """Whether ``call``, traced into a region, may change Python state the analysis does not
        follow: a list or dict it is given or reaches (``hooks["exit"](outs, i)``, ``ap(v)``
        with ``ap = outs.append``, a lambda on the module appending to ``self.mem``, a
        ``functools.partial``, a user module's forward). False for torch functions and built-in
        layers, tensor and Python-number methods and pure builtins, given no callable that
        they might call (``map(f, xs)``, ``sorted(xs, key=f)``)."""
        func = call.func
        if isinstance(func, ast.Attribute) and self.kind(func.value).kind in (
            Kind.TENSOR,
            Kind.HOST,
        ):
            pure = True  # a tensor's or a Python number's method (in-place ops: Draft.writes)
        else:
            cands = self.callee_objects(func)
            pure = cands is not None and all(_pure_callee(c) for c in cands)
        return not pure or any(self._callable_argument(a) for a in _call_arguments(call))

    def _callable_argument(self, e: ast.expr) -> bool:
        """``e`` is a function a call may invoke (a lambda, a Python function or bound method,
        a ``functools.partial``), not a tensor, number or torch callable."""
        if isinstance(e, ast.Lambda):
            return True
        v = self.kind(e)
        if v.kind != Kind.OBJ:
            return False
        if not v.values:
            return isinstance(e, ast.Name)  # an object the analysis cannot see: maybe one
        return any(
            callable(c) and not isinstance(c, type) and not _pure_callee(c) for c in v.values
        )

    def returned_parts(self, call: ast.Call) -> aliasing.Parts | None:
        """For a call of user functions each of which returns a tuple display of one length
        (``return self.out(h), h``): per element, the argument expressions it may be, view or
        hold (``((), (h,))``), and the other elements it may share an object with (ints); None
        otherwise (see ``aliasing.returned_params_by_part``)."""
        callees = self.callee_objects(call.func)
        if not callees or any(isinstance(a, ast.Starred) for a in call.args):
            return None
        if any(kw.arg is None for kw in call.keywords):
            return None  # `f(**kw)`
        out: list[list[ast.expr | int]] | None = None
        for c in callees:
            target = user_callee(c) if not _returns_input(c) else None
            if target is None:
                return None
            fn, owner = target
            node = _source_node(fn.__code__, fn) if hasattr(fn, "__code__") else None
            if node is None:
                return None
            with aliasing.returning_input(_calls_maybe_returning_input(node, fn, owner)):
                parts = aliasing.returned_params_by_part(node)
            if parts is None or (out is not None and len(out) != len(parts)):
                return None
            if out is None:
                out = [[] for _ in parts]
            a = node.args
            positional = [x.arg for x in [*a.posonlyargs, *a.args]]
            me = positional[0] if owner is not None and positional else None
            given = positional[1:] if me is not None else positional
            named = set(positional) | {x.arg for x in a.kwonlyargs}
            for i, (names, shared) in enumerate(parts):
                if a.vararg is not None and a.vararg.arg in names:
                    return None  # `def f(*ts): return ts[0], ...`
                out[i] += [arg for p, arg in zip(given, call.args) if p in names]
                out[i] += [kw.value for kw in call.keywords if kw.arg in names]
                if a.kwarg is not None and a.kwarg.arg in names:  # `return ..., state["h"]`
                    out[i] += [kw.value for kw in call.keywords if kw.arg not in named]
                if me in names and isinstance(call.func, ast.Attribute):
                    out[i].append(call.func.value)  # `return ..., self.mem`: the object's state
                out[i] += sorted(shared)
        return None if out is None else tuple(tuple(x) for x in out)

    def call_mutations(
        self, call: ast.Call, attributes: bool = True, objects: bool = True
    ) -> frozenset[str]:
        """Local names whose objects ``call`` writes in place because the user function it calls
        writes the corresponding parameter in place (``self.put(d, k, v)`` with ``d[k] = v``);
        ``attributes=False``: not counting attributes it sets on them (``tree.state = v``);
        ``objects=False``: nor calls of methods no tensor has (``cache.update(k, v, i)``)."""
        out: set[str] = set()
        for c in self.callee_objects(call.func) or ():
            if isinstance(c, torch.nn.Module) and getattr(c, "inplace", False) is True:
                # nn.ReLU(inplace=True) and friends write their input
                if call.args and isinstance(call.args[0], ast.Name):
                    out.add(call.args[0].id)
                continue
            if _writes_first_argument(c):  # `from operator import iadd; iadd(h, 1)`
                if call.args:
                    out.update(_written_through(call.args[0]))
                continue
            target = user_callee(c)
            if target is None:
                continue
            fn, owner = target
            params = _mutated_param_positions(fn, attributes, objects)
            if not params:
                continue
            shift = 1 if owner is not None else 0
            for i, arg in enumerate(call.args):
                if (i + shift, None) in params:
                    out.update(_written_through(arg))  # h, outs[0], [h, k]
            for kw in call.keywords:
                if any(n == kw.arg for _, n in params):
                    out.update(_written_through(kw.value))
        return frozenset(out)

    def user_callees(self) -> list[tuple[Any, Any]]:
        """(function, owner) of every user callee this function's calls may reach: submodules
        with a Python forward, user methods and functions (the call graph's edges)."""
        out: dict[tuple[Any, int], tuple[Any, Any]] = {}
        for node in aliasing.walk_no_defs(self.parsed.node):
            if isinstance(node, ast.Call):
                for c in self.callee_objects(node.func) or ():
                    target = user_callee(c)
                    if target is not None:
                        out.setdefault((target[0], id(target[1])), target)
        return list(out.values())

    # ---- queries used by the rewriter ----------------------------------------------------------

    def reads_tensor(self, node: ast.AST) -> bool:
        """True when evaluating ``node`` touches a tensor (so it must run inside a region)."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                if self.kind(sub).kind == Kind.TENSOR:
                    return True
            elif isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Load):
                if self.kind(sub).kind == Kind.TENSOR:
                    return True
            elif isinstance(sub, ast.Call) and self.call_kind(sub) in (CallKind.TRACE,):
                cands = self.callee_objects(sub.func)
                if cands is None or any(
                    isinstance(c, torch.nn.Module)
                    or (
                        (getattr(c, "__module__", None) or "").startswith("torch")
                        and not _torch_context_manager(c)
                    )
                    for c in cands
                ):
                    return True
        return False


@functools.lru_cache(maxsize=1024)
def _source_node(code: types.CodeType, fn: Any) -> ast.FunctionDef | None:
    """``fn``'s parsed definition, once per code object (None without source: nothing known,
    the call is refused or traced elsewhere)."""
    try:
        return source.parse(fn).node
    except Exception:
        return None


@functools.lru_cache(maxsize=1024)
def _mutated_param_positions_of(
    code: types.CodeType, fn: Any, attributes: bool = True, objects: bool = True
) -> frozenset[tuple[int, Any]]:
    node = _source_node(code, fn)
    if node is None:
        return frozenset()
    names = aliasing.mutated_params(node, attributes, objects)
    out: set[tuple[int, Any]] = {(i, None) for i in aliasing.positions(node, names)}
    for p in names:
        out.add((-1, p))
    return frozenset(out)


@functools.lru_cache(maxsize=1024)
def _returned_param_positions_of(code: types.CodeType, fn: Any, owner: Any) -> frozenset[int]:
    node = _source_node(code, fn)
    if node is None:
        return frozenset()
    names = _returned_param_names_of(code, fn, owner)
    out = aliasing.positions(node, names)
    a = node.args
    if a.vararg is not None and a.vararg.arg in names:  # `def f(*ts): return ts[0]`
        n = len(a.posonlyargs) + len(a.args)
        out.update(range(n, n + 8))
    return frozenset(out)


def python_return_parts(fn: Any) -> tuple[bool, ...] | None:
    """See ``aliasing.python_return_parts`` (cached with the parse: a walk of the returns)."""
    code = getattr(fn, "__code__", None)
    node = _source_node(code, fn) if code is not None else None
    return aliasing.python_return_parts(node) if node is not None else None


def _calls_maybe_returning_input(node: ast.FunctionDef, fn: Any, owner: Any) -> dict[ast.Call, int]:
    """The calls in ``fn`` (parsed: ``node``; bound to ``owner``) that may hand back one of
    their arguments (``self.drop(h)`` with dropout in eval, ``nn.Identity``, a user module, a
    lambda, ``F.dropout``): each as returning any of them (``aliasing.ANY_ARGUMENT``). Known
    fresh: torch's functions and built-in layers that are not identities; a method of a value
    (``h.view(-1)``) is left to ``aliasing.view_root``'s own rules."""
    out: dict[ast.Call, int] = {}
    params = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
    me = params[0] if owner is not None and params else None
    scope = getattr(fn, "__globals__", {})
    for call in aliasing.walk_no_defs(node):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        c: Any = None
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == me
        ):
            try:
                c = getattr(owner, func.attr)
            except Exception:
                c = None
            fresh = (
                isinstance(c, torch.nn.Module)
                and is_torch_builtin_module(c)
                and not isinstance(
                    c, torch.nn.Sequential | torch.nn.ModuleList | torch.nn.ModuleDict
                )
                and not _returns_input(c)
            )
        elif isinstance(func, ast.Attribute | ast.Name):
            c = _dotted(func, scope)  # `F.dropout`, `torch.nn.functional.relu`, `helper`
            if c is None and isinstance(func, ast.Attribute):
                continue  # a method of a value (`h.view(-1)`): view_root's own rules
            fresh = c is not None and _torch_function(c) and not _returns_input(c)
        else:
            fresh = False  # `getattr(self, name)(h)`, `fns[i](h)`
        if not fresh:
            out[call] = aliasing.ANY_ARGUMENT
    return out


def _dotted(e: ast.expr, scope: dict[str, Any]) -> Any:
    """The object a name or a module attribute chain (``F.dropout``) names in ``scope`` (then
    the builtins); None for anything else (an attribute of a value)."""
    names: list[str] = []
    while isinstance(e, ast.Attribute):
        names.append(e.attr)
        e = e.value
    if not isinstance(e, ast.Name):
        return None
    obj = scope.get(e.id, getattr(builtins, e.id, None))
    for name in reversed(names):
        if not isinstance(obj, types.ModuleType):
            return None
        obj = getattr(obj, name, None)
    return obj


def _torch_function(c: Any) -> bool:
    return (getattr(c, "__module__", None) or "").startswith("torch") and not isinstance(
        c, torch.nn.Module
    )


def _returned_param_names(fn: Any, owner: Any = None) -> frozenset[str]:
    """Names of the parameters ``fn`` (bound to ``owner``) may hand back (see
    ``aliasing.returned_params``; a call in it that may hand back its argument counts)."""
    code = getattr(fn, "__code__", None)
    return _returned_param_names_of(code, fn, owner) if code is not None else frozenset()


@functools.lru_cache(maxsize=1024)
def _returned_param_names_of(code: types.CodeType, fn: Any, owner: Any) -> frozenset[str]:
    node = _source_node(code, fn)
    if node is None:
        return frozenset()
    with aliasing.returning_input(_calls_maybe_returning_input(node, fn, owner)):
        return aliasing.returned_params(node)


def _returned_param_positions(fn: Any, owner: Any = None) -> frozenset[int]:
    """Positions of the parameters ``fn`` may hand back (see ``aliasing.returned_params``)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return frozenset()
    return _returned_param_positions_of(code, fn, owner)


def _mutated_param_positions(
    fn: Any, attributes: bool = True, objects: bool = True
) -> frozenset[tuple[int, Any]]:
    """(position, None) and (-1, name) for each parameter ``fn`` writes in place."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return frozenset()
    return _mutated_param_positions_of(code, fn, attributes, objects)


_IDENTITY_MODULES = (
    torch.nn.Identity,
    torch.nn.Dropout,
    torch.nn.Dropout1d,
    torch.nn.Dropout2d,
    torch.nn.Dropout3d,
    torch.nn.AlphaDropout,
    torch.nn.FeatureAlphaDropout,
)


# operator's in-place functions (`__iadd__` is `iadd`) and item writers, reached bare.
_OPERATOR_WRITERS = frozenset(
    getattr(operator, n)
    for n in (*aliasing.OPERATOR_INPLACE, *aliasing.ITEM_WRITERS, "iconcat")
    if not n.startswith("__")
)


def _writes_first_argument(c: Any) -> bool:
    """A function (reached under another name) that writes its first argument in place:
    ``operator.iadd`` / ``setitem``, ``torch.relu_`` imported bare."""
    try:
        if c in _OPERATOR_WRITERS:
            return True
    except TypeError:  # unhashable callee
        return False
    name = getattr(c, "__name__", "") or ""
    return (getattr(c, "__module__", None) or "").startswith("torch") and (
        name.endswith("_") and not name.startswith("_") and not isinstance(c, type)
    )


def _torch_context_manager(c: Any) -> bool:
    """A torch class whose instances are context managers, not tensors (``torch.no_grad``,
    ``torch.autocast``, ``torch.set_grad_enabled``): made on the host, where ``with`` runs. (Made
    in a region, it would be an object the region returns: that region would run in PyTorch.)"""
    return (
        isinstance(c, type)
        and not issubclass(c, torch.Tensor | torch.nn.Module)
        and hasattr(c, "__enter__")
        and hasattr(c, "__exit__")
    )


# Builtins that compute from their arguments and change nothing (given no callable to call).
_PURE_BUILTINS = frozenset(
    getattr(builtins, n)
    for n in (
        "len range int float bool complex abs min max sum any all tuple list dict set frozenset "
        "zip enumerate sorted reversed isinstance issubclass hasattr getattr round divmod pow str "
        "repr type id iter slice hash format ord chr bin hex oct"
    ).split()
)


def _pure_callee(c: Any) -> bool:
    """A callee that changes no Python state when called (see ``Typer.may_change_state``):
    torch's functions and built-in layers (in-place ops are counted apart), pure builtins,
    ``math`` and ``operator``'s out-of-place functions."""
    if isinstance(c, torch.nn.Module):
        return is_torch_builtin_module(c) and not isinstance(
            c, torch.nn.Sequential | torch.nn.ModuleList | torch.nn.ModuleDict
        )
    try:
        if c in _PURE_BUILTINS:
            return True
        if c in _OPERATOR_WRITERS:
            return False
    except TypeError:  # unhashable
        return False
    if isinstance(c, type):
        return c.__module__ == "builtins" or c.__module__.startswith("torch")
    module = getattr(c, "__module__", None) or ""
    if module.startswith("torch") and not isinstance(c, types.MethodType):
        return True
    return module in ("math", "_operator", "operator") and not isinstance(c, types.MethodType)


def _call_arguments(call: ast.Call) -> list[ast.expr]:
    return [
        *(a.value if isinstance(a, ast.Starred) else a for a in call.args),
        *(k.value for k in call.keywords),
    ]


# Builtins that hand back one of their arguments (`max(h, x)` is h or x itself).
_PICKING_BUILTINS = (max, min, getattr, vars)


def _opaque_holder(c: Any) -> bool:
    """A callee whose result may be, view or hold any of its arguments, and which dycl_jax does
    not analyse: a standard-library or installed package's Python function (``copy.copy``,
    ``functools.reduce``, ``einops.rearrange``), a picking builtin, or a class whose instances
    keep what they are built from (a dataclass, ``NamedTuple``, ``SimpleNamespace``)."""
    if isinstance(c, type):
        return c is types.SimpleNamespace or user_class(c)
    if any(c is b for b in _PICKING_BUILTINS):
        return True
    if (getattr(c, "__module__", None) or "").startswith("torch"):
        return False
    return isinstance(c, types.FunctionType | types.MethodType | types.BuiltinFunctionType) and (
        library_origin(c) is not None
    )


def _returns_input(c: Any) -> bool:
    if isinstance(c, torch.nn.Module) and getattr(c, "inplace", False) is True:
        return type(c).__module__.startswith("torch.nn.")  # nn.ReLU(inplace=True): its input
    if isinstance(c, _IDENTITY_MODULES):
        return not c.training or isinstance(c, torch.nn.Identity)
    if isinstance(c, torch.nn.Sequential) and len(c) == 0:
        return True
    return c in (torch.nn.functional.dropout, torch.dropout) or c is torch.nn.functional.dropout1d
