"""Facts about torch, Python builtins and containers that the analyses consult, in one table.

The kind-inference engine (``dependence.Typer``) and placement (``placement``) hold no knowledge of
their own about which tensor methods read shapes, which builtins have side effects or which torch
ops have data-dependent output shapes: they look it up here. Adding support for a library
function usually means adding it to one of these sets.
"""

from __future__ import annotations

import ast
import collections
import random
from typing import Any

import numpy as np
import torch

# Tensor methods/attributes whose result is static (shape metadata).
SHAPE_ATTRS = frozenset(
    {"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "layout", "is_sparse"}
)
SHAPE_METHODS = frozenset(
    {
        "size",
        "dim",
        "numel",
        "nelement",
        "ndimension",
        "is_contiguous",
        "element_size",
        "is_floating_point",
        "is_complex",
        "get_device",
        "stride",
    }
)
# Tensor methods that read a value back to Python: a host conversion.
CONVERSION_METHODS = frozenset(
    {"item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__"}
)
CONVERSION_BUILTINS = frozenset({"bool", "int", "float", "complex"})
# Python builtins that are pure functions of their arguments.
PURE_BUILTINS = frozenset(
    {
        "range",
        "len",
        "min",
        "max",
        "abs",
        "sum",
        "enumerate",
        "zip",
        "isinstance",
        "issubclass",
        "getattr",
        "hasattr",
        "list",
        "tuple",
        "dict",
        "set",
        "sorted",
        "reversed",
        "round",
        "divmod",
        "pow",
        "all",
        "any",
        "map",
        "filter",
        "str",
        "repr",
        "type",
        "id",
        "hash",
        "callable",
        "slice",
        "iter",
        "next",
        "frozenset",
        "ord",
        "chr",
        "format",
    }
    | CONVERSION_BUILTINS
)
# Calls whose point is a side effect: they must run on the host every call.
SIDE_EFFECT_BUILTINS = frozenset({"print", "input", "open", "exec", "eval", "setattr", "delattr"})
# Builtins that turn their arguments into text (a tensor formats as ``tensor(...)`` there).
FORMATTING_BUILTINS = (str, repr, ascii, format)


def is_display_callee(obj: Any) -> bool:
    """Whether calling ``obj`` shows its arguments as text: ``print``, the formatting builtins,
    ``logging`` functions and logger methods, ``warnings.warn``. A tensor passed there must be
    shown as PyTorch shows it (``tensor(3.)``), not as the array standing for it."""
    if obj is print or obj in FORMATTING_BUILTINS:
        return True
    import logging
    import warnings

    if obj in (warnings.warn, warnings.warn_explicit):
        return True
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, logging.Logger | logging.LoggerAdapter):
        return True
    return getattr(obj, "__module__", None) == "logging" and callable(obj)


CONTAINER_MUTATORS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "pop",
        "remove",
        "clear",
        "update",
        "setdefault",
        "popitem",
        "add",
        "discard",
        "sort",
        "reverse",
    }
)
# Container mutators that are also (not in-place) tensor methods.
TENSOR_HOMONYMS = frozenset({"add", "sort"})
# The most positional arguments each container mutator takes on a list, dict, set or deque. A
# call with more is another object's method of the same name (transformers' ``DynamicCache.
# update(k, v, layer_idx)``), not a container's. (``set.update(a, b)`` takes more: rare among
# tensors.)
CONTAINER_ARITY = {
    "append": 1, "extend": 1, "insert": 2, "pop": 2, "remove": 1, "clear": 0, "update": 1,
    "setdefault": 2, "popitem": 1, "add": 1, "discard": 1, "sort": 0, "reverse": 0,
}  # fmt: skip


def container_call(call: ast.Call) -> bool:
    """Whether ``call`` is a container mutator's call as a list, dict, set or deque takes it
    (``outs.append(h)``, ``d.update(other)``), by name and number of positional arguments."""
    f = call.func
    most = CONTAINER_ARITY.get(f.attr) if isinstance(f, ast.Attribute) else None
    return most is not None and (
        len(call.args) <= most and not any(isinstance(a, ast.Starred) for a in call.args)
    )


# Tensor methods whose result is one tensor whatever the receiver held (not a list, tuple or
# Python number): a name bound only to such results is a tensor, and ``t[i] = v`` copies into it.
TENSOR_RESULT_METHODS = frozenset(
    m
    for m in dir(torch.Tensor)
    if not m.startswith("_")
    and m not in {*dir(list), *dir(dict), *dir(tuple), *dir(set), *dir(collections.deque)}
    and m
    not in {
        "tolist", "item", "unbind", "split", "split_with_sizes", "tensor_split", "chunk",
        "hsplit", "vsplit", "dsplit", "topk", "sort", "max", "min", "median", "nanmedian",
        "mode", "kthvalue", "unique", "unique_consecutive", "nonzero", "cummax", "cummin",
        "aminmax", "frexp", "slogdet", "qr", "svd", "eig", "lu", "triangular_solve", "lstsq",
        "symeig", "geqrf", "dim", "size", "numel", "stride", "element_size", "data_ptr",
        "storage_offset", "get_device", "is_contiguous", "numpy", "storage", "untyped_storage",
        "type", "backward", "register_hook", "nelement", "ndimension",
        "equal", "allclose", "is_nonzero", "is_floating_point", "is_complex", "is_signed",
    }
)  # fmt: skip
# Container mutators torch.Tensor does not have: the receiver is a list/dict.
LIST_ONLY_METHODS = CONTAINER_MUTATORS - TENSOR_HOMONYMS - set(dir(torch.Tensor))
# torch functions whose result is static Python (no tensor value read).
TORCH_STATIC_FUNCS = frozenset(
    {
        "is_tensor",
        "is_floating_point",
        "numel",
        "is_grad_enabled",
        "no_grad",
        "enable_grad",
        "inference_mode",
        "set_grad_enabled",
        "get_default_dtype",
        "is_complex",
    }
)


# Ops whose output *shape* depends on tensor values: they run eagerly in PyTorch on the host,
# between regions, so every region keeps static shapes (specialised per observed shape).
DATA_DEPENDENT_OPS = frozenset(
    {"nonzero", "masked_select", "unique", "unique_consecutive", "argwhere", "bincount"}
)
# Ops whose result on exact ties (which index of equal values comes first) is PyTorch's own CPU
# selection algorithm, which XLA does not reproduce: on all-equal values torch.topk(k=1) returns
# index 2 of 4, 3 of 6, 10 of 16. They run in PyTorch on the host, between regions, like the
# data-dependent ones. ``sort``/``argsort`` with ``stable=True`` are deterministic and stay traced.
TIE_SENSITIVE_OPS = frozenset({"topk", "sort", "argsort", "msort", "kthvalue", "mode", "median"})
# Ops that sample from torch's random number generator: PyTorch runs them on the host, between
# regions, so they draw the same numbers from the same generator state as eager PyTorch (fairseq
# and HF LayerDrop compute `torch.rand([])` on every layer, also in eval mode).
RANDOM_OPS = frozenset(
    {
        "rand", "randn", "randint", "rand_like", "randn_like", "randint_like", "randperm",
        "bernoulli", "multinomial", "normal", "poisson",
    }
)  # fmt: skip
# Methods of a random generator object (torch.Generator, numpy's Generator / RandomState) that
# read or set its state; torch.Tensor has none of these names.
GENERATOR_METHODS = frozenset({"manual_seed", "seed", "initial_seed", "get_state", "set_state"})


def _rng_state_functions() -> frozenset[Any]:
    fns: list[Any] = [torch.Generator, np.random.Generator, np.random.RandomState]
    for mod, names in (
        (torch, ("manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state")),
        (torch.random, ("manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
                        "fork_rng")),
        (torch.cuda, ("manual_seed", "manual_seed_all", "seed", "seed_all", "get_rng_state",
                      "set_rng_state", "get_rng_state_all", "set_rng_state_all")),
        (np.random, ("seed", "get_state", "set_state", "default_rng")),
        (random, ("seed", "getstate", "setstate")),
    ):  # fmt: skip
        fns.extend(getattr(mod, n) for n in names if hasattr(mod, n))
    return frozenset(_unwrapped(f) for f in fns)


def _unwrapped(fobj: Any) -> Any:
    """``fobj`` without ``functools.wraps`` wrappers: importing torch._dynamo replaces
    ``torch.manual_seed`` with a wrapper of it (so identity with the function read at import
    fails)."""
    while True:
        inner = getattr(fobj, "__wrapped__", None)
        if inner is None or inner is fobj:
            return fobj
        fobj = inner


RNG_STATE_FUNCTIONS = _rng_state_functions()


def touches_rng_state(fobj: Any) -> bool:
    """Whether calling ``fobj`` reads or sets a random generator's state, or makes a generator:
    ``torch.manual_seed``, ``torch.get_rng_state`` / ``set_rng_state``, ``fork_rng``,
    ``torch.Generator()`` and its methods, numpy's and Python's seeding. Traced, such a call
    would run once, at capture; it runs on the host every call instead, where the draws that
    follow it (also run on the host, see RANDOM_OPS) see its effect."""
    try:
        if _unwrapped(fobj) in RNG_STATE_FUNCTIONS:
            return True
    except TypeError:  # unhashable
        return False
    owner = getattr(fobj, "__self__", None)
    return isinstance(
        owner, torch.Generator | np.random.Generator | np.random.RandomState | random.Random
    )


# Ops that return a Python value computed from tensor values (``torch.allclose`` is a bool): they
# read tensors back, so they run in PyTorch on the host too.
PYTHON_RESULT_OPS = frozenset({"allclose", "equal", "is_nonzero"})
# Python builtins that compare their (tensor) arguments: evaluated on the host, like PyTorch does.
COMPARING_BUILTINS = frozenset({"max", "min", "sorted"})


# Libraries whose functions are traced (torch) or pure on Python values (the others).
LIBRARY_MODULES = ("torch", "math", "numpy", "functools", "operator", "_operator", "builtins")
# Pure builtins that only restructure or inspect their arguments (no tensor compute).
STRUCTURAL_BUILTINS = frozenset(
    {
        "len",
        "isinstance",
        "range",
        "enumerate",
        "zip",
        "getattr",
        "hasattr",
        "type",
        "id",
        "list",
        "tuple",
        "reversed",
        "slice",
        "iter",
    }
)


# Tensor methods whose result is boolean (so indexing with it selects by mask).
MASK_METHODS = frozenset(
    {
        "bool",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "isnan",
        "isinf",
        "isfinite",
        "logical_and",
        "logical_or",
        "logical_not",
        "logical_xor",
        "any",  # with a dim: a mask per row (`(idx == e).any(-1)`, the top-k MoE pattern)
        "all",
        "isin",
        "isclose",
        "signbit",
        "isneginf",
        "isposinf",
    }
)

# Tensor methods whose result may share storage with the receiver (a view): an in-place write to
# the result changes the receiver, and the other way round.
VIEW_METHODS = frozenset(
    {
        "view",
        "view_as",
        "reshape",
        "reshape_as",
        "flatten",
        "unflatten",
        "transpose",
        "t",
        "permute",
        "squeeze",
        "unsqueeze",
        "expand",
        "expand_as",
        "narrow",
        "select",
        "unfold",
        "diagonal",
        "as_strided",
        "detach",
        "chunk",
        "split",
        "unbind",
        "tensor_split",
        "movedim",
        "moveaxis",
        "swapaxes",
        "swapdims",
        "view_as_real",
        "view_as_complex",
        "as_tensor",
        "asarray",
        "numpy",  # shares the tensor's memory (as from_numpy shares the array's)
        "from_numpy",
        "broadcast_to",
        "broadcast_tensors",
        "resolve_conj",
        "resolve_neg",
        "conj",
        "adjoint",
        "atleast_1d",
        "atleast_2d",
        "atleast_3d",
        "hsplit",
        "vsplit",
        "dsplit",
        "split_with_sizes",
        "alias",
        "contiguous",
        # conversions that return the tensor itself when nothing changes
        "to",
        "type",
        "type_as",
        "float",
        "double",
        "half",
        "bfloat16",
        "int",
        "long",
        "bool",
        "cpu",
        "cuda",
    }
)
VIEW_ATTRS = frozenset({"T", "mT", "H", "mH", "data", "real", "imag"})

# Builtins that only iterate or restructure their argument: an iterator made by one over a
# container hands out the container's own items.
ITERATING_BUILTINS = frozenset({"enumerate", "zip", "reversed", "iter", "list", "tuple"})


def registered(obj: Any, name: str) -> bool:
    """``name`` is a submodule, parameter or buffer registered on ``obj`` (kept in
    ``nn.Module``'s own tables, read through ``__getattr__``), not a Python attribute."""
    d = getattr(obj, "__dict__", {})
    return any(name in d.get(t, ()) for t in ("_modules", "_parameters", "_buffers"))


# Python's mutable containers (subclasses such as OrderedDict, defaultdict and Counter included).
CONTAINER_TYPES = (list, dict, set, collections.deque)


def held_state(v: Any) -> bool:
    """A Python container whose contents can change between calls when a module holds it: a
    list, dict, set or deque (subclasses such as OrderedDict and defaultdict included), or a
    tuple holding one (``self.past = ([], [])``)."""
    if isinstance(v, CONTAINER_TYPES):
        return True
    return type(v) is tuple and any(held_state(x) for x in v)
