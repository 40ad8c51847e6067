"""Seeded generator of random dynamic PyTorch modules, as an IR that renders to Python source.

A program is a main ``nn.Module`` (class ``Model``) whose ``forward(self, x)`` mixes tensor ops with
tensor-dependent control flow, plus generated submodule classes (with their own dynamic forward) and
helper methods. Every tensor value has shape ``[B, D]`` (one feature width ``D`` per program), so any
statement can be deleted without breaking the others: the shrinker relies on that.

Variables of the main forward: ``x`` (the input), ``y`` (a second tensor), ``n`` (a Python int
counter) and ``acc`` (a Python list of tensors, stacked at the end). Loops add their own loop
variables, which only statements inside the loop use. Submodule forwards and helpers work on ``x``
only and return ``x``.

The rendered module is standalone: it defines ``Model``, ``make_model()`` (seeded initialisation,
eval mode) and ``make_inputs()`` (the inputs the campaign runs, at several scales/shifts so that
branches go both ways).

Beyond tensor ops and control flow, programs mix in the constructs where a program rewriter can be
silently wrong, each spread across region boundaries (a tensor ``if``/``while``/``.item()`` between
its pieces, the *mid* block of the node):

* in-place writes through aliases (``b = a``; a view ``v = a[:, :k]``; ``outs.append(h)``, a dict
  or tuple entry; a list of ``h`` each step of a loop) written after a boundary
  (``a[:, i] = ...``, ``v.mul_(...)``, ``h.relu_()``, ``h += 1``): such a program is marked
  ``ALIASED`` (dycl_jax may refuse it: "in-place write to 'a', which may share memory with 'b'");
  and in-place writes to fresh tensors (``torch.zeros_like``, ``x = x.clone()``, a list entry
  nothing else holds), which must stay supported (not marked);
* list entries rebound or written after append; ``enumerate``/``zip``/``reversed``/``dict.items()``
  over lists and dicts of tensors, with tensor conditions in the loop body;
* module attributes read in regions (a threshold, a temperature, a list of floats, a loop count, a
  static flag) that ``mutate(model, step)`` changes between calls after convert, and weights edited
  in place there (``with torch.no_grad(): lin.weight.mul_(...)``);
* outputs as a NamedTuple, a dataclass or a small transformers-style ``ModelOutput`` (an
  ``OrderedDict`` subclass dataclass, defined in the program), such objects carried across
  boundaries, and an exception class carrying tensors raised in a submodule and caught in forward;
* host scalars (``k = t.item()``; ``t0d * k``, ``h * k``, ``int(k)`` as a loop bound or an index),
  half precision (``HALF``: the model and inputs in float16), ``logging``/``warnings`` calls with
  f-strings of ``.item()`` values (logger ``dycl_fuzz``; messages start with ``fuzz``).

Only constructs dycl_jax documents as supported are generated, unless ``Knobs.unsupported`` is set
(then a few programs also use a refused construct, and a refusal is the expected outcome).
"""

from __future__ import annotations

import copy
import dataclasses
import random
import re
from collections.abc import Iterator
from typing import Any


@dataclasses.dataclass
class Node:
    """One statement. ``blocks`` are nested statement lists (then/elif.../else, loop bodies)."""

    kind: str
    args: dict[str, Any] = dataclasses.field(default_factory=dict)
    blocks: list[list[Node]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ClassIR:
    """A generated module class: attribute declarations, forward body, helper methods."""

    name: str
    body: list[Node]
    helpers: dict[str, list[Node]] = dataclasses.field(default_factory=dict)
    attrs: dict[str, str] = dataclasses.field(default_factory=dict)  # attr -> constructor source
    pairs: set[str] = dataclasses.field(default_factory=set)  # helpers taking and returning (x, y)
    mutable: dict[str, list[Any]] = dataclasses.field(
        default_factory=dict
    )  # attr -> values by step


@dataclasses.dataclass
class Program:
    seed: int
    d: int
    out_kind: str  # one of OUT_KINDS
    classes: dict[str, ClassIR]  # "Model" is the root
    inputs: list[tuple[int, float, float, int]]  # (batch, scale, shift, seed)
    unsupported: bool = False
    half: bool = False  # model and inputs in float16
    steps: int = 0  # calls to mutate(model, step) after convert (when anything is mutable)
    edit: tuple[int, float] | None = None  # weights edited in place by mutate: (every, factor)

    def copy(self) -> Program:
        return copy.deepcopy(self)


@dataclasses.dataclass(frozen=True)
class Knobs:
    max_depth: int = 3  # nesting of compound statements
    max_stmts: int = 7  # statements per block (upper bound)
    max_sub_depth: int = 2  # nesting of generated submodule classes
    p_helper: float = 0.35
    p_sub: float = 0.35
    n_inputs: int = 5
    batches: tuple[int, ...] = (2, 2, 2, 1)  # batch sizes of the inputs (each one compiles anew)
    widths: tuple[int, ...] = (3, 4, 5)
    unsupported: bool = False  # also emit refused constructs (off: only supported ones)
    # weights of the constructs added to the simple-statement forms (0 turns one off)
    w_alias: float = 0.6  # aliased in-place writes across a boundary (marks the program)
    w_fresh: float = 1.0  # in-place writes to fresh tensors
    w_listmut: float = 0.5  # list entries rebound / written after append
    w_iter: float = 0.8  # enumerate / zip / reversed / dict.items() over tensor containers
    w_attr: float = 1.0  # module attributes read in regions (changed by mutate)
    w_obj: float = 0.5  # NamedTuple / dataclass / ModelOutput carried across a boundary
    w_exc: float = 0.5  # exception with tensors raised in a submodule, caught in forward
    w_host: float = 1.0  # host scalars from .item() used in arithmetic, as a bound, an index
    w_log: float = 0.5  # logging / warnings with .item() f-strings
    # lists / dicts held by the module, written in forward and read by regions on this call and
    # the next (a memory of past states, a buffer, counters)
    w_held: float = 0.6
    # tensors where Python needs a value: a list index, a slice bound, allclose, max(key=...),
    # topk over tied (zero) rows, masked writes with per-row values
    w_tval: float = 0.8
    p_thr: float = 0.15  # a condition compares with a mutable threshold attribute
    p_half: float = 0.15
    p_edit: float = 0.5  # mutate also edits weights in place
    mutation_steps: int = 2


# ------------------------------------------------------------------------------------------------
# generation


@dataclasses.dataclass
class _Scope:
    role: str  # "main" | "sub" | "helper" | "pair" (a helper on (x, y))
    cls: ClassIR
    tensors: tuple[str, ...]
    depth: int = 0
    loop: bool = False  # break/continue allowed
    int_vars: tuple[str, ...] = ()  # loop counters (range/enumerate indices)
    mod_vars: tuple[str, ...] = ()  # loop variables bound to modules mapping [B,D] -> [B,D]
    sub_depth: int = 0

    def inner(self, **kw: Any) -> _Scope:
        kw.setdefault("depth", self.depth + 1)
        return dataclasses.replace(self, **kw)


class Generator:
    def __init__(self, seed: int, knobs: Knobs | None = None) -> None:
        self.seed = seed
        self.knobs = knobs or Knobs()
        self.rng = random.Random(seed)
        self.counter = 0
        self.classes: dict[str, ClassIR] = {}
        self.d = 4

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    # ---- entry -----------------------------------------------------------------------------------

    def program(self) -> Program:
        r = self.rng
        self.d = r.choice(self.knobs.widths)
        root = ClassIR("Model", [])
        self.classes = {"Model": root}
        scope = _Scope("main", root, ("x", "y"))
        root.body = self.block(scope, min_n=2)
        inputs = []
        scales = [1.0, 3.0, 0.1, 1.0, 1.0, 2.0, 0.5]
        shifts = [0.0, 0.0, 0.0, -1.0, 1.0, -0.5, 0.5]
        for k in range(self.knobs.n_inputs):
            b = r.choice(self.knobs.batches)
            inputs.append((b, scales[k % len(scales)], shifts[k % len(shifts)], r.randrange(10**6)))
        unsupported = False
        if self.knobs.unsupported and r.random() < 0.3:
            unsupported = True
            pos = r.randrange(len(root.body) + 1)
            root.body.insert(pos, Node("refused", {"form": r.choice(_REFUSED)}))
        out_kind = r.choice(OUT_KINDS)
        half = r.random() < self.knobs.p_half
        edit = (
            (r.randint(1, 3), r.choice([-0.75, 0.5, 1.5]))
            if r.random() < self.knobs.p_edit
            else None
        )
        return Program(
            self.seed,
            self.d,
            out_kind,
            self.classes,
            inputs,
            unsupported,
            half=half,
            steps=self.knobs.mutation_steps,
            edit=edit,
        )

    # ---- blocks and statements -------------------------------------------------------------------

    def block(self, s: _Scope, min_n: int = 1) -> list[Node]:
        n = self.rng.randint(min_n, max(min_n, self.knobs.max_stmts - 2 * s.depth))
        return [self.stmt(s) for _ in range(n)]

    def stmt(self, s: _Scope) -> Node:
        r = self.rng
        compound = s.depth < self.knobs.max_depth and r.random() < 0.45
        if not compound:
            return self.simple(s)
        options = ["if", "if", "static_if", "for_range", "for_list", "while", "early_return"]
        if s.loop:
            options += ["jump", "jump"]
        if s.role == "main":
            options += ["enumerate", "zip"]
        if s.role != "helper":
            options.append("no_grad")
        kind = r.choice(options)
        return getattr(self, "g_" + kind)(s)

    def tensor(self, s: _Scope) -> str:
        return self.rng.choice(s.tensors)

    def linear(self, s: _Scope) -> str:
        name = self.fresh("lin")
        s.cls.attrs[name] = f"nn.Linear({self.d}, {self.d})"
        return name

    def simple(self, s: _Scope) -> Node:
        r = self.rng
        t = self.tensor(s)
        o = self.tensor(s)
        forms: list[tuple[str, float]] = [
            ("linear", 3),
            ("act", 3),
            ("binop", 2),
            ("reduce", 2),
            ("softmax", 1),
            ("cat", 1),
            ("item", 1),
            ("seq", 0.5),
            ("ifexp", 1),
            ("if_assign", 1),
            ("route", 0.7),
            ("rows", 0.7),
        ]
        if s.role == "main":
            forms += [("count", 1), ("append", 1), ("use_n", 0.5), ("tolist", 0.5)]
            if s.depth < self.knobs.max_depth:
                forms.append(("try", self.knobs.p_helper))
            if s.depth < self.knobs.max_depth:
                forms.append(("pair", self.knobs.p_helper))
        if s.int_vars:
            forms.append(("use_i", 2))
        if s.mod_vars:
            forms.append(("call_blk", 4))
        if s.depth < self.knobs.max_depth:
            forms.append(("helper", 2 * self.knobs.p_helper))
            if s.sub_depth < self.knobs.max_sub_depth:
                forms.append(("sub", 2 * self.knobs.p_sub))
        k = self.knobs
        forms += [
            ("alias", k.w_alias),
            ("fresh", k.w_fresh),
            ("listmut", k.w_listmut),
            ("iterate", k.w_iter),
            ("attr", k.w_attr),
            ("obj", k.w_obj),
            ("hostk", k.w_host),
            ("log", k.w_log),
            ("tval", k.w_tval),
            ("held", k.w_held),
        ]
        if s.role in ("main", "sub") and s.sub_depth < self.knobs.max_sub_depth:
            forms.append(("exc", k.w_exc))
        form = r.choices([f for f, _ in forms], [w for _, w in forms])[0]
        if form in NEW_FORMS:
            return getattr(self, "g_" + form)(s, t, o)
        a: dict[str, Any] = {"t": t, "o": o}
        if form == "linear":
            a["attr"] = self.linear(s)
        elif form == "act":
            a["fn"] = r.choice(["torch.relu", "torch.tanh", "torch.sigmoid", "F.gelu"])
        elif form == "binop":
            a["op"] = r.choice(["+", "-", "*"])
        elif form == "reduce":
            a["red"] = r.choice(["mean", "sum", "max", "amax", "norm"])
        elif form == "seq":
            name = self.fresh("seq")
            s.cls.attrs[name] = f"nn.Sequential(nn.Linear({self.d}, {self.d}), nn.ReLU())"
            a["attr"] = name
        elif form == "ifexp":
            a["cond"] = self.cond(s, False)
        elif form == "if_assign":
            a["z"] = self.fresh("z")
            a["cond"] = self.cond(s)
        elif form == "route":
            a["k"] = self.rng.randint(2, 3)
            a["attr"] = self.module_list(s, a["k"])
        elif form == "rows":
            a["r"] = self.fresh("row")
            a["rows"] = self.fresh("rows")
            a["cond"] = f"{a['r']}.sum() > {self.rng.choice([0, 0.5])}"
        elif form == "use_i":
            a["i"] = r.choice(s.int_vars)
        elif form == "call_blk":
            a["blk"] = r.choice(s.mod_vars)
        elif form == "helper":
            name = self.fresh("_helper")
            hs = _Scope("helper", s.cls, ("x",), depth=s.depth + 1, sub_depth=s.sub_depth)
            s.cls.helpers[name] = self.block(hs)
            a["name"] = name
        elif form == "tolist":
            a["v"] = self.fresh("v")
        elif form == "try":
            name = self.fresh("_checked")
            hs = _Scope("helper", s.cls, ("x",), depth=s.depth + 1, sub_depth=s.sub_depth)
            body = self.block(hs)
            body.insert(
                self.rng.randint(0, len(body)), Node("raise", {"cond": self.cond(hs, False)})
            )
            s.cls.helpers[name] = body
            a["name"] = name
        elif form == "pair":
            name = self.fresh("_pair")
            hs = _Scope("pair", s.cls, ("x", "y"), depth=s.depth + 1, sub_depth=s.sub_depth)
            s.cls.helpers[name] = self.block(hs)
            s.cls.pairs.add(name)
            a["name"] = name
            a["kw"] = self.rng.random() < 0.5
        elif form == "sub":
            a["attr"] = self.fresh("sub")
            s.cls.attrs[a["attr"]] = f"{self.sub_class(s.sub_depth + 1)}()"
        return Node(form, a)

    def sub_class(self, sub_depth: int) -> str:
        name = self.fresh("Block")
        cls = ClassIR(name, [])
        self.classes[name] = cls
        cls.body = self.block(_Scope("sub", cls, ("x",), depth=1, sub_depth=sub_depth))
        return name

    def module_list(self, s: _Scope, n: int) -> str:
        name = self.fresh("blocks")
        if s.sub_depth < self.knobs.max_sub_depth and self.rng.random() < self.knobs.p_sub:
            elem = f"{self.sub_class(s.sub_depth + 1)}()"
        else:
            elem = f"nn.Linear({self.d}, {self.d})"
        s.cls.attrs[name] = f"nn.ModuleList([{elem} for _ in range({n})])"
        return name

    # ---- conditions ------------------------------------------------------------------------------

    def cond(self, s: _Scope, allow_compound: bool = True) -> str:
        r = self.rng
        v = self.tensor(s)
        if r.random() < self.knobs.p_thr:  # a module attribute, changed between calls by mutate
            thr = self.mutable(s, "thr", [r.choice([0.0, 0.13]), 0.55, -0.27])
            return r.choice([f"{v}.mean() > self.{thr}", f"{v}.max().item() > self.{thr} + 0.5"])
        form = r.choice(
            ["item_gt", "item_lt", "sum0d", "any", "all", "elem", "cmp", "conv", "compound"]
        )
        if form == "item_gt":
            return f"{v}.mean().item() > {r.choice([0.0, 0.0, 0.1, -0.1])}"
        if form == "item_lt":
            return f"{v}.max().item() < {r.choice([0.3, 0.6, 0.9])}"
        if form == "sum0d":
            return f"{v}.sum() > {r.choice([0, 0.5, -0.5])}"
        # (not +-1.0: tanh / sigmoid outputs saturate there, and XLA's and PyTorch's last-bit
        # rounding of them differ, so a comparison with the asymptote is a rounding tie)
        if form == "any":
            return f"({v} > {r.choice([0.5, 0.8, 0.95])}).any()"
        if form == "all":
            return f"({v} > {r.choice([-0.5, -0.95, 0.0])}).all()"
        if form == "elem":
            return f"{v}[0, {r.randrange(self.d)}] > 0"
        if form == "cmp":
            return f"{v}.mean() > {self.tensor(s)}.std()"
        if form == "conv":
            return r.choice(
                [f"bool({v}.sum() > 0)", f"float({v}.mean()) > 0.0", f"int({v}.argmax()) % 2 == 0"]
            )
        if not allow_compound:
            return f"{v}.mean() > 0"
        op = r.choice(["and", "or", "not", "py_and"])
        if op == "not":
            return f"not {self.cond(s, False)}"
        if op == "py_and" and s.role == "main":
            return f"n < {r.randint(1, 3)} and {self.cond(s, False)}"
        op = "and" if op == "py_and" else op
        return f"{self.cond(s, False)} {op} {self.cond(s, False)}"

    def static_cond(self, s: _Scope) -> str:
        r = self.rng
        options = ["flag", "shape", "not_flag"]
        if s.int_vars:
            options += ["loop_i", "loop_i"]
        if s.role == "main":
            options += ["host_int"]
        form = r.choice(options)
        if form in ("flag", "not_flag"):
            v = r.random() < 0.5
            if r.random() < 0.5:  # flipped between calls by mutate
                name = self.mutable(s, "flag", [v, not v])
            else:
                name = self.fresh("flag")
                s.cls.attrs[name] = repr(v)
            return f"self.{name}" if form == "flag" else f"not self.{name}"
        if form == "shape":
            return f"{self.tensor(s)}.shape[0] > {r.choice([1, 2])}"
        if form == "host_int":
            return r.choice([f"n > {r.randint(0, 2)}", f"len(acc) > {r.randint(0, 1)}"])
        i = r.choice(s.int_vars)
        return r.choice([f"{i} % 2 == 0", f"{i} > 0", f"{i} == 1"])

    # ---- compound statements ---------------------------------------------------------------------

    def g_if(self, s: _Scope) -> Node:
        r = self.rng
        inner = s.inner()
        blocks = [self.block(inner)]
        conds = [self.cond(s)]
        for _ in range(r.choice([0, 0, 1, 2])):
            conds.append(self.cond(s))
            blocks.append(self.block(inner))
        has_else = r.random() < 0.5
        if has_else:
            blocks.append(self.block(inner))
        return Node("if", {"conds": conds, "else": has_else}, blocks)

    def g_static_if(self, s: _Scope) -> Node:
        inner = s.inner()
        blocks = [self.block(inner)]
        has_else = self.rng.random() < 0.5
        if has_else:
            blocks.append(self.block(inner))
        return Node("if", {"conds": [self.static_cond(s)], "else": has_else}, blocks)

    def g_for_range(self, s: _Scope) -> Node:
        i = self.fresh("i")
        body = self.block(s.inner(loop=True, int_vars=(*s.int_vars, i)))
        return Node("for_range", {"i": i, "k": self.rng.randint(1, 3)}, [body])

    def g_for_list(self, s: _Scope) -> Node:
        blk = self.fresh("blk")
        attr = self.module_list(s, self.rng.randint(1, 3))
        body = [Node("call_blk", {"t": "x", "blk": blk})]
        body += self.block(s.inner(loop=True, mod_vars=(*s.mod_vars, blk)), min_n=0)
        self.rng.shuffle(body)
        return Node("for_list", {"blk": blk, "attr": attr}, [body])

    def g_enumerate(self, s: _Scope) -> Node:
        i, blk = self.fresh("i"), self.fresh("blk")
        attr = self.module_list(s, self.rng.randint(1, 3))
        body = [Node("call_blk", {"t": self.tensor(s), "blk": blk})]
        body += self.block(
            s.inner(loop=True, mod_vars=(*s.mod_vars, blk), int_vars=(*s.int_vars, i)), min_n=0
        )
        return Node("enumerate", {"i": i, "blk": blk, "attr": attr}, [body])

    def g_zip(self, s: _Scope) -> Node:
        a, b = self.fresh("blk"), self.fresh("blk")
        k = self.rng.randint(1, 3)
        la, lb = self.module_list(s, k), self.module_list(s, k)
        body = [Node("call_blk", {"t": "x", "blk": a}), Node("call_blk", {"t": "y", "blk": b})]
        body += self.block(s.inner(loop=True, mod_vars=(*s.mod_vars, a, b)), min_n=0)
        return Node("zip", {"a": a, "b": b, "la": la, "lb": lb}, [body])

    def g_while(self, s: _Scope) -> Node:
        c = self.fresh("steps")
        body = self.block(s.inner(loop=True))
        # the condition's tensor must change in the loop for the loop to be interesting
        body.insert(0, Node("act", {"t": "x", "o": "x", "fn": "torch.tanh"}))
        body.insert(1, Node("linear", {"t": "x", "o": "x", "attr": self.linear(s)}))
        return Node(
            "while",
            {"c": c, "cond": self.cond(s), "k": self.rng.randint(1, 4), "count": s.role == "main"},
            [body],
        )

    def g_jump(self, s: _Scope) -> Node:
        return Node("jump", {"cond": self.cond(s), "jump": self.rng.choice(["break", "continue"])})

    def g_early_return(self, s: _Scope) -> Node:
        return Node("early_return", {"cond": self.cond(s)})

    def g_no_grad(self, s: _Scope) -> Node:
        return Node("no_grad", {}, [self.block(s.inner())])

    # ---- constructs spread across region boundaries ----------------------------------------------
    #
    # Each is one node whose private names (fresh, never in the scope's tensors) no other statement
    # touches; ``blocks[0]`` (when present) is the *mid* block: random statements between its
    # pieces, with their own boundaries. Writes in place only ever touch private tensors, never
    # ``x``/``y`` (which may be the caller's input).

    def mid(self, s: _Scope) -> list[Node]:
        if s.depth >= self.knobs.max_depth:
            return []
        inner = s.inner()
        return [self.stmt(inner) for _ in range(self.rng.randint(0, 2))]

    def mutable(self, s: _Scope, prefix: str, values: list[Any]) -> str:
        name = self.fresh(prefix)
        s.cls.mutable[name] = values
        return name

    def guard(self, s: _Scope, p: float = 0.75) -> str | None:
        """A tensor condition put around a write (a region boundary before it), or None."""
        return self.cond(s, False) if self.rng.random() < p else None

    def fresh_expr(self, s: _Scope, o: str) -> str:
        r = self.rng
        form = r.choice(["tanh", "mul", "clone", "linear", "add"])
        if form == "tanh":
            return f"torch.tanh({o})"
        if form == "mul":
            return f"{o} * 1.0"
        if form == "clone":
            return f"{o}.clone()"
        if form == "linear":
            return f"self.{self.linear(s)}({o})"
        return f"{o} + 0.5"

    def scalar_write(self, name: str, aug: bool = True) -> str:
        r = self.rng
        forms = [
            f"{name}.mul_({r.choice([0.5, -1.0, 2.0])})",
            f"{name}.add_({r.choice([1.0, -0.5])})",
            f"{name}.relu_()",
            f"{name}.clamp_(min=-0.5, max=0.5)",
            f"{name}.tanh_()",
        ]
        if aug:
            forms += [f"{name} += 1.0", f"{name} *= 0.5"]
        return r.choice(forms)

    def full_write(self, name: str, src: str) -> str:
        """An in-place write to a [B, D] tensor ``name``, reading ``src`` ([B, D])."""
        r = self.rng
        c, c2 = r.randrange(self.d), r.randrange(self.d)
        k = r.randint(1, self.d - 1)
        return r.choice(
            [
                f"{name}[:, {c}] = {src}[:, {c2}] * 0.5",
                f"{name}[0] = {src}[0] * 0.5 + 1.0",
                f"{name}[:, :{k}] = {src}[:, -{k}:] * 0.5",
                f"{name}.add_({src} * 0.5)",
                f"{name} += torch.tanh({src})",
                f"{name}.copy_(torch.sigmoid({src}))",
                f"{name}[:, {c}] += 1.0",
                self.scalar_write(name),
            ]
        )

    def g_alias(self, s: _Scope, t: str, o: str) -> Node:
        """A second reference (name, view, container entry) to a tensor written in place after a
        boundary: the program is marked aliased."""
        r = self.rng
        a = {"t": t, "o": o, "aliased": True, "a": self.fresh("a"), "b": self.fresh("b")}
        a["expr"] = self.fresh_expr(s, o)
        a["form"] = form = r.choice(["rename", "view", "container", "container", "loop", "call"])
        src = self.tensor(s)
        if form == "rename":  # b = a; a[...] = ... (or the write through b)
            who = r.choice([a["a"], a["b"]])
            a["write"] = self.full_write(who, src)
        elif form == "call":  # b = torch.as_tensor(a), {"h": a}.get("h"), a if c else o, ...
            a["call"] = r.choice(
                [
                    "torch.as_tensor({A})",
                    '{{"h": {A}}}.get("h")',
                    "[{A}].pop()",
                    "{A} if True else {O}",
                    "({A}, {O})[0]",
                    "{A}.detach()",
                    "[q for q in ({A},)][0]",
                    "{{i: q for i, q in enumerate([{A}])}}[0]",
                    "copy.copy({A})",
                    "max(({A}, {O}), key=lambda q: 0)",
                    "(lambda q: q[:])({A})",
                ]
            )
            who = r.choice([a["a"], a["b"]])
            a["write"] = r.choice(
                [
                    self.full_write(who, src),
                    f'getattr({who}, "mul_")(0.5)',
                    f"operator.iadd({who}, 1.0)",
                    f"for {a['b']}_q in ({who}, {a['b']}_z):\n    {self.scalar_write(a['b'] + '_q')}",
                ]
            )
        elif form == "view":  # v = a[:, :k]; v.mul_(...) (or the base written, seen through v)
            kk = r.randint(1, self.d - 1)
            a["view"] = r.choice(
                [f"[:, :{kk}]", f"[:, {kk}:]", "[0]", ".view(-1)", ".t()", f".narrow(1, 0, {kk})"]
            )
            if r.random() < 0.7:
                a["write"] = self.scalar_write(a["b"])
            else:
                a["write"] = self.full_write(a["a"], src)
        elif form == "container":  # outs.append(h); h.relu_() (or the write through outs[0])
            a["box"] = r.choice(["append", "literal", "dict", "tuple"])
            entry = {"append": "[-1]", "literal": "[0]", "dict": '["h"]', "tuple": "[0]"}
            if r.random() < 0.6:
                a["write"] = self.full_write(a["a"], src)
            else:
                a["write"] = self.scalar_write(a["b"] + entry[a["box"]], a["box"] != "tuple")
        else:  # each step: h = f(h); outs.append(h); if cond(h): h += 1
            a["k"] = r.randint(1, 3)
            a["i"] = self.fresh("i")
            a["write"] = self.scalar_write(a["a"])
            a["cond"] = self.cond(dataclasses.replace(s, tensors=(a["a"],), role="sub"), False)
            return Node("alias", a)
        a["cond"] = self.guard(s)
        return Node("alias", a, [self.mid(s)])

    def g_fresh(self, s: _Scope, t: str, o: str) -> Node:
        """In-place writes to tensors nothing else references: must stay supported (exact)."""
        r = self.rng
        a: dict[str, Any] = {"t": t, "o": o, "a": self.fresh("z")}
        a["form"] = form = r.choice(["zeros", "zeros", "loop", "clone", "clone"])
        if form == "zeros":
            a["expr"] = r.choice(
                [
                    f"torch.zeros_like({o})",
                    f"{o}.new_zeros({o}.shape)",
                    f"torch.zeros({o}.shape[0], {self.d}, dtype={o}.dtype)",
                    f"torch.full_like({o}, 0.5)",
                    f"{o}.clone()",
                ]
            )
            a["write"] = self.full_write(a["a"], self.tensor(s))
            a["cond"] = self.guard(s)
            return Node("fresh", a, [self.mid(s)])
        if form == "loop":  # t = zeros; for i: if cond: t[:, i] = ... else: t[:, i] = ...
            a["i"] = self.fresh("i")
            a["k"] = r.randint(1, 3)
            a["cond"] = self.cond(s, False)
            return Node("fresh", a)
        # x = x.clone(); (boundary) x[...] = ...: nothing between the copy and the write
        a["write"] = self.full_write(t, o)
        a["cond"] = self.guard(s, 0.6)
        return Node("fresh", a)

    def g_listmut(self, s: _Scope, t: str, o: str) -> Node:
        """List entries rebound, or written in place (entries nothing else holds), after append."""
        r = self.rng
        a: dict[str, Any] = {"t": t, "o": o, "l": self.fresh("hs")}
        j = r.choice([0, 1, -1])
        entry = f"{a['l']}[{j}]"
        a["write"] = r.choice(
            [
                f"{entry} = {entry} + {self.tensor(s)} * 0.5",
                f"{entry} = torch.relu({entry})",
                self.scalar_write(entry),
                f"{entry}[:, {r.randrange(self.d)}] = 0.0",
            ]
        )
        a["cond"] = self.guard(s, 0.6)
        return Node("listmut", a, [self.mid(s)])

    def g_iterate(self, s: _Scope, t: str, o: str) -> Node:
        """enumerate / zip / reversed / dict.items() over tensors, with a tensor condition on the
        element inside the loop (and more statements, possibly with boundaries of their own)."""
        r = self.rng
        a: dict[str, Any] = {"t": t, "o": o, "l": self.fresh("hs"), "h": self.fresh("h")}
        a["form"] = form = r.choice(["enumerate", "zip", "reversed", "items", "enum_zip"])
        a["j"] = self.fresh("j")
        a["g"], a["gv"] = self.fresh("gs"), self.fresh("g")
        # the loop building the list reuses the index name of the iteration half the time, as
        # users write `for i in range(k): ...` then `for i, h in enumerate(hs): ...`
        a["jb"] = a["j"] if r.random() < 0.5 else self.fresh("jb")
        srcs = ["literal", "loop"] + (["acc"] if s.role == "main" else [])
        a["src"] = r.choice(srcs) if form != "items" else "dict"
        a["k"] = r.randint(1, 3)
        hs = dataclasses.replace(s, tensors=(*s.tensors, a["h"]))
        a["cond"] = self.cond(dataclasses.replace(hs, tensors=(a["h"],), role="sub"), False)
        inner = hs.inner(loop=True)
        if form in ("enumerate", "enum_zip"):
            inner = dataclasses.replace(inner, int_vars=(*s.int_vars, a["j"]))
        body: list[Node] = []
        if s.depth + 1 < self.knobs.max_depth:
            body = [self.stmt(inner) for _ in range(r.randint(0, 2))]
        return Node("iterate", a, [self.mid(s), body])

    def g_attr(self, s: _Scope, t: str, o: str) -> Node:
        """A module attribute read in a region; mutate() changes it between calls."""
        r = self.rng
        a: dict[str, Any] = {"t": t, "o": o}
        a["form"] = form = r.choice(["temp", "mix", "mix_loop", "steps"])
        if form == "temp":
            a["attr"] = self.mutable(s, "temp", [1.0, 0.5, 2.0])
        elif form in ("mix", "mix_loop"):
            a["attr"] = self.mutable(s, "mix", [[1.0, 0.5], [0.5, -1.0, 0.25], [2.0]])
            a["w"] = self.fresh("w")
        else:
            a["attr"] = self.mutable(s, "steps", [r.randint(1, 2), 0, 3])
        return Node("attr", a)

    def g_obj(self, s: _Scope, t: str, o: str) -> Node:
        """A NamedTuple / dataclass / ModelOutput built from tensors, used after a boundary."""
        r = self.rng
        a: dict[str, Any] = {"t": t, "o": o, "r": self.fresh("rec")}
        a["cls"] = r.choice(["FuzzPair", "FuzzRecord", "FuzzPairOutput"])
        a["e1"], a["e2"] = f"torch.tanh({o})", f"{self.tensor(s)} * 0.5"
        a["read"] = r.choice(["attr", "index"])
        return Node("obj", a, [self.mid(s)])

    def g_exc(self, s: _Scope, t: str, o: str) -> Node:
        """try: t = self.subN(o) / except FuzzExit as e: (tensors carried by the exception)."""
        name = self.fresh("Block")
        cls = ClassIR(name, [])
        self.classes[name] = cls
        sub = _Scope("sub", cls, ("x",), depth=1, sub_depth=s.sub_depth + 1)
        cls.body = self.block(sub)
        raise_node = Node("raise_exc", {"cond": self.cond(sub, False), "k": self.rng.randint(0, 3)})
        cls.body.insert(self.rng.randint(0, len(cls.body)), raise_node)
        attr = self.fresh("sub")
        s.cls.attrs[attr] = f"{name}()"
        return Node(
            "exc", {"t": t, "o": o, "attr": attr, "e": self.fresh("e"), "h": self.fresh("h")}
        )

    def g_hostk(self, s: _Scope, t: str, o: str) -> Node:
        """k = o.mean().item(); (boundaries); t = t * k / o.sum() * k / int(k) as bound or index.

        ``int()`` steps sit off round values (``k * 2.7 + 0.31``): a softmax sums to exactly 1 per
        row in PyTorch and to 0.99999994 in XLA, and ``int(2 * k)`` would then count differently.
        Thresholds avoid round values (1/D is the mean of a softmax) for the same reason."""
        r = self.rng
        a: dict[str, Any] = {"t": t, "o": o, "k": self.fresh("k"), "i": self.fresh("i")}
        a["read"] = r.choice(
            [f"{o}.mean().item()", f"{o}.max().item()", f"float({o}.sum())", f"{o}[0, 0].item()"]
        )
        a["uses"] = r.sample(["mul", "t0d", "bound", "index", "round"], r.randint(1, 2))
        a["o2"] = self.tensor(s)
        return Node("hostk", a, [self.mid(s)])

    def g_tval(self, s: _Scope, t: str, o: str) -> Node:
        """A tensor used where Python needs a value (see Knobs.w_tval)."""
        r = self.rng
        a: dict[str, Any] = {"t": t, "o": o, "v": self.fresh("v"), "w": self.fresh("w")}
        forms = ["list_index", "slice_bound", "allclose", "max_key", "topk", "mask", "shared"]
        forms += ["keyed"] + (["closure"] if s.role == "main" else [])
        a["form"] = r.choice(forms)
        if a["form"] == "mask":
            a["attr"] = self.linear(s)
        if a["form"] == "closure":
            a["fn"] = self.fresh("_keep")
        return Node("tval", a, [self.mid(s)])

    def g_held(self, s: _Scope, t: str, o: str) -> Node:
        """A list or dict on the module written in forward (under a tensor condition, or not)
        and read by a region, on this call and later ones. Entries are reduced over the batch
        ([D]) so that calls with different batch sizes can share them."""
        r = self.rng
        a: dict[str, Any] = {"t": t, "o": o, "cond": self.guard(s, 0.7)}
        a["form"] = form = r.choice(["memory", "memory", "buffer", "counts", "keyed"])
        a["persist"] = r.random() < 0.6  # kept across calls, or cleared first
        a["attr"] = self.fresh("held")
        a["j"] = r.randrange(2)
        ctor = {
            "memory": "[]",
            "buffer": f"[torch.zeros({self.d}) for _ in range(2)]",
            "counts": '{"a": 0, "b": 0}',
            "keyed": "{}",
        }
        s.cls.attrs[a["attr"]] = ctor[form]
        a["value"] = r.choice([f"{o}.mean(0)", f"torch.tanh({o}).amax(0)", f"{o}[0] * 0.5"])
        return Node("held", a, [self.mid(s)])

    def g_log(self, s: _Scope, t: str, o: str) -> Node:
        r = self.rng
        a: dict[str, Any] = {"t": t, "o": o, "tag": self.fresh("fuzz")}
        forms = ["info", "debug", "percent", "warn"]
        if s.role == "main":
            forms.append("cond_n")
        a["form"] = r.choice(forms)
        a["cond"] = self.cond(s, False)
        return Node("log", a)


_REFUSED = ["mask_index", "nonzero", "bernoulli", "while_else"]
NEW_FORMS = (
    "held",
    "alias",
    "fresh",
    "listmut",
    "iterate",
    "attr",
    "obj",
    "hostk",
    "log",
    "exc",
    "tval",
)
OUT_KINDS = ("tensor", "tuple", "dict", "namedtuple", "dataclass", "modeloutput")


# ------------------------------------------------------------------------------------------------
# rendering


def _ret(out_kind: str, role: str, x: str = "x") -> str:
    if role == "pair":
        return f"{x}, y"
    if role != "main":
        return x
    if out_kind == "tensor":
        return x
    if out_kind == "tuple":
        return f"{x}, y, n"
    if out_kind == "namedtuple":
        return f"FuzzOut({x}, y, n)"
    if out_kind == "dataclass":
        return f"FuzzResult(out={x}, aux=y, n=n)"
    if out_kind == "modeloutput":
        return (
            f"FuzzModelOutput(last_hidden_state={x}, aux=y if n > 0 else None, "
            "hidden_states=tuple(acc), n=n)"
        )
    return f'{{"out": {x}, "aux": y, "n": n}}'


# Definitions a program may use, emitted when its source names them.
_PRELUDE: list[tuple[str, str]] = [
    (
        "FuzzExit",
        """
class FuzzExit(Exception):
    \"\"\"Raised with tensors inside a submodule, caught in forward (the DeeBERT pattern).\"\"\"

    def __init__(self, outputs, k):
        super().__init__(k)
        self.outputs = outputs
        self.k = k
""",
    ),
    (
        "FuzzPair(",
        """
class FuzzPair(NamedTuple):
    a: torch.Tensor
    b: torch.Tensor
""",
    ),
    (
        "FuzzOut(",
        """
class FuzzOut(NamedTuple):
    out: torch.Tensor
    aux: torch.Tensor
    n: int
""",
    ),
    (
        "FuzzRecord(",
        """
@dataclasses.dataclass
class FuzzRecord:
    a: torch.Tensor
    b: torch.Tensor
""",
    ),
    (
        "FuzzResult(",
        """
@dataclasses.dataclass
class FuzzResult:
    out: torch.Tensor
    aux: torch.Tensor
    n: int
""",
    ),
    (
        "Output(",
        """
class ModelOutput(OrderedDict):
    \"\"\"A small transformers.utils.ModelOutput: a dataclass that is also an ordered dict of its
    non-None fields, indexable by name or position.\"\"\"

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is not None:
                self[f.name] = v

    def __getitem__(self, k):
        if isinstance(k, str):
            return dict(self.items())[k]
        return self.to_tuple()[k]

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __setattr__(self, name, value):
        if name in self.keys() and value is not None:
            super().__setitem__(name, value)
        super().__setattr__(name, value)

    def to_tuple(self):
        return tuple(self[k] for k in self.keys())
""",
    ),
    (
        "FuzzPairOutput(",
        """
@dataclasses.dataclass
class FuzzPairOutput(ModelOutput):
    a: torch.Tensor | None = None
    b: torch.Tensor | None = None
""",
    ),
    (
        "FuzzModelOutput(",
        """
@dataclasses.dataclass
class FuzzModelOutput(ModelOutput):
    last_hidden_state: torch.Tensor | None = None
    aux: torch.Tensor | None = None
    hidden_states: tuple | None = None
    n: int = 0
""",
    ),
]

_SELF_ATTR = re.compile(r"self\.(\w+)")


def _strings(args: dict[str, Any]) -> Iterator[str]:
    for v in args.values():
        if isinstance(v, str):
            yield v
        elif isinstance(v, list | tuple):
            yield from (e for e in v if isinstance(e, str))


class _Renderer:
    def __init__(self, prog: Program) -> None:
        self.p = prog
        self.d = prog.d

    def block(self, nodes: list[Node], ind: int, role: str) -> list[str]:
        out: list[str] = []
        for n in nodes:
            out += self.node(n, ind, role)
        if not out:
            out = [" " * ind + "pass"]
        return out

    def node(self, n: Node, ind: int, role: str) -> list[str]:
        sp = " " * ind
        a = n.args
        k = n.kind
        t, o = a.get("t", "x"), a.get("o", "x")
        if k == "linear":
            return [f"{sp}{t} = self.{a['attr']}({o})"]
        if k == "act":
            return [f"{sp}{t} = {a['fn']}({o})"]
        if k == "binop":
            if a["op"] == "*":
                return [f"{sp}{t} = {t} * torch.tanh({o})"]
            return [f"{sp}{t} = {t} {a['op']} {o}"]
        if k == "reduce":
            red = a["red"]
            if red == "mean":
                return [f"{sp}{t} = {t} - 0.5 * {o}.mean(dim=-1, keepdim=True)"]
            if red == "sum":
                return [f"{sp}{t} = {t} + 0.1 * {o}.sum()"]
            if red == "max":
                return [f"{sp}{t} = {t} - {o}.max(dim=-1, keepdim=True).values"]
            if red == "amax":
                return [f"{sp}{t} = {t} / (1.0 + {o}.abs().amax())"]
            return [f"{sp}{t} = {t} / (1.0 + {o}.norm(dim=-1, keepdim=True))"]
        if k == "softmax":
            return [f"{sp}{t} = F.softmax({o}, dim=-1)"]
        if k == "cat":
            return [
                f"{sp}{t} = torch.cat([{t}, {o}], dim=-1).reshape({t}.shape[0], 2, {self.d}).mean(1)"
            ]
        if k == "item":
            return [f"{sp}{t} = {t} + 0.5 * {o}.mean().item()"]
        if k == "seq":
            return [f"{sp}{t} = self.{a['attr']}({o})"]
        if k == "count":
            return [f"{sp}n += 1"]
        if k == "append":
            return [f"{sp}acc.append({o})"]
        if k == "ifexp":
            return [f"{sp}{t} = {o} * 2.0 if {a['cond']} else -{o}"]
        if k == "if_assign":
            z = a["z"]
            return [
                f"{sp}if {a['cond']}:",
                f"{sp}    {z} = torch.sigmoid({o})",
                f"{sp}else:",
                f"{sp}    {z} = {t} * 0.5",
                f"{sp}{t} = {t} + {z}",
            ]
        if k == "route":
            idx = f"int({o}.mean(0)[:{a['k']}].argmax())"
            return [f"{sp}{t} = self.{a['attr']}[{idx}]({t})"]
        if k == "rows":
            r, rows = a["r"], a["rows"]
            return [
                f"{sp}{rows} = []",
                f"{sp}for {r} in {o}:",
                f"{sp}    if {a['cond']}:",
                f"{sp}        {rows}.append({r} * 2.0)",
                f"{sp}    else:",
                f"{sp}        {rows}.append(torch.tanh({r}))",
                f"{sp}{t} = torch.stack({rows})",
            ]
        if k == "tolist":
            v = a["v"]
            return [
                f"{sp}for {v} in {o}[0].tolist():",
                f"{sp}    if {v} > 0:",
                f"{sp}        n += 1",
            ]
        if k == "try":
            return [
                f"{sp}try:",
                f"{sp}    {t} = self.{a['name']}({o})",
                f"{sp}    n += 1",
                f"{sp}except ValueError:",
                f"{sp}    {t} = torch.tanh({o})",
            ]
        if k == "raise":
            return [f"{sp}if {a['cond']}:", f'{sp}    raise ValueError("fuzz")']
        if k == "use_n":
            return [f"{sp}{t} = {t} + 0.1 * n"]
        if k == "use_i":
            return [f"{sp}{t} = {t} + 0.1 * {a['i']}"]
        if k == "call_blk":
            return [f"{sp}{t} = {a['blk']}({t})"]
        if k == "helper":
            return [f"{sp}{t} = self.{a['name']}({o})"]
        if k == "pair":
            args = "x, y=y" if a["kw"] else "x, y"
            return [f"{sp}x, y = self.{a['name']}({args})"]
        if k == "sub":
            return [f"{sp}{t} = self.{a['attr']}({o})"]
        if k == "if":
            lines = []
            for j, c in enumerate(a["conds"]):
                lines.append(f"{sp}{'if' if j == 0 else 'elif'} {c}:")
                lines += self.block(n.blocks[j], ind + 4, role)
            if a["else"]:
                lines.append(f"{sp}else:")
                lines += self.block(n.blocks[-1], ind + 4, role)
            return lines
        if k == "for_range":
            return [
                f"{sp}for {a['i']} in range({a['k']}):",
                *self.block(n.blocks[0], ind + 4, role),
            ]
        if k == "for_list":
            return [
                f"{sp}for {a['blk']} in self.{a['attr']}:",
                *self.block(n.blocks[0], ind + 4, role),
            ]
        if k == "enumerate":
            head = f"{sp}for {a['i']}, {a['blk']} in enumerate(self.{a['attr']}):"
            return [head, *self.block(n.blocks[0], ind + 4, role)]
        if k == "zip":
            head = f"{sp}for {a['a']}, {a['b']} in zip(self.{a['la']}, self.{a['lb']}):"
            return [head, *self.block(n.blocks[0], ind + 4, role)]
        if k == "while":
            c = a["c"]
            lines = [f"{sp}{c} = 0", f"{sp}while {a['cond']}:", f"{sp}    {c} += 1"]
            lines += [f"{sp}    if {c} > {a['k']}:", f"{sp}        break"]
            lines += self.block(n.blocks[0], ind + 4, role)
            if a["count"] and role == "main":
                lines.append(f"{sp}n += {c}")
            return lines
        if k == "jump":
            return [f"{sp}if {a['cond']}:", f"{sp}    {a['jump']}"]
        if k == "early_return":
            return [f"{sp}if {a['cond']}:", f"{sp}    return {_ret(self.p.out_kind, role)}"]
        if k == "no_grad":
            return [f"{sp}with torch.no_grad():", *self.block(n.blocks[0], ind + 4, role)]
        if k in NEW_FORMS or k == "raise_exc":
            return getattr(self, "r_" + k)(n, sp, ind, role)
        if k == "refused":
            form = a["form"]
            if form == "mask_index":
                return [f"{sp}x = x + x[x > 0].sum()"]
            if form == "nonzero":
                return [f"{sp}x = x + torch.nonzero(x > 0).shape[0]"]
            if form == "bernoulli":
                return [f"{sp}x = x * torch.bernoulli(torch.sigmoid(x))"]
            return [
                f"{sp}while x.sum() > 100:",
                f"{sp}    x = x * 0.5",
                f"{sp}else:",
                f"{sp}    x = x + 1",
            ]
        raise AssertionError(k)

    # ---- the constructs spread across boundaries (see Generator.g_*) -----------------------------

    def guarded(self, cond: str | None, lines: list[str], sp: str) -> list[str]:
        lines = [part for line in lines for part in line.split("\n")]  # (a write may be a loop)
        if cond is None:
            return [sp + line for line in lines]
        return [f"{sp}if {cond}:", *(f"{sp}    {line}" for line in lines)]

    def mid(self, n: Node, ind: int, role: str) -> list[str]:
        if not n.blocks or not n.blocks[0]:
            return []
        return self.block(n.blocks[0], ind, role)

    def r_alias(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        A, B, t, o = a["a"], a["b"], a["t"], a["o"]
        form = a["form"]
        if form == "loop":
            return [
                f"{sp}{B} = []",
                f"{sp}{A} = {a['expr']}",
                f"{sp}for {a['i']} in range({a['k']}):",
                f"{sp}    {A} = torch.tanh({A} + 0.1 * {a['i']})",
                f"{sp}    {B}.append({A})",
                f"{sp}    if {a['cond']}:",
                f"{sp}        {a['write']}",
                f"{sp}{t} = {t} + torch.stack({B}).mean(0)",
            ]
        lines = [f"{sp}{A} = {a['expr']}"]
        if form == "rename":
            lines.append(f"{sp}{B} = {A}")
            tail = f"{t} = {t} + 0.5 * {B} - 0.25 * {A}"
        elif form == "call":
            lines.append(f"{sp}{B} = " + a["call"].format(A=A, O=o))
            lines.append(f"{sp}{B}_z = {o} * 1.0")
            tail = f"{t} = {t} + 0.5 * {B} - 0.25 * {A} + {B}_z"
        elif form == "view":
            lines.append(f"{sp}{B} = {A}{a['view']}")
            tail = f"{t} = {t} + {A} + 0.1 * {B}.sum()"
        else:
            box = a["box"]
            if box == "append":
                lines += [f"{sp}{B} = []", f"{sp}{B}.append({A})"]
            elif box == "literal":
                lines.append(f"{sp}{B} = [{A}, {o} * 2.0]")
            elif box == "dict":
                lines.append(f'{sp}{B} = {{"h": {A}}}')
            else:
                lines.append(f"{sp}{B} = ({A}, {A} * 2.0)")
            read = {
                "append": f"torch.stack({B}).sum(0)",
                "literal": f"torch.stack({B}).sum(0)",
                "dict": f'{B}["h"]',
                "tuple": f"{B}[0] + {B}[1]",
            }[box]
            tail = f"{t} = {t} + {read} + 0.5 * {A}"
        lines += self.mid(n, ind, role)
        lines += self.guarded(a["cond"], [a["write"]], sp)
        return [*lines, sp + tail]

    def r_fresh(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        A, t, o = a["a"], a["t"], a["o"]
        if a["form"] == "zeros":
            lines = [f"{sp}{A} = {a['expr']}", *self.mid(n, ind, role)]
            lines += self.guarded(a["cond"], [a["write"]], sp)
            return [*lines, f"{sp}{t} = {t} + {A}"]
        if a["form"] == "loop":
            i = a["i"]
            return [
                f"{sp}{A} = torch.zeros_like({o})",
                f"{sp}for {i} in range({a['k']}):",
                f"{sp}    if {a['cond']}:",
                f"{sp}        {A}[:, {i}] = {o}[:, {i}] * 2.0",
                f"{sp}    else:",
                f"{sp}        {A}[:, {i}] = {A}[:, {i}] - 1.0",
                f"{sp}{t} = {t} + {A}",
            ]
        return [f"{sp}{t} = {t}.clone()", *self.guarded(a["cond"], [a["write"]], sp)]

    def r_listmut(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        L, t, o = a["l"], a["t"], a["o"]
        lines = [f"{sp}{L} = []", f"{sp}{L}.append(torch.tanh({o}))", f"{sp}{L}.append({t} * 0.5)"]
        lines += self.mid(n, ind, role)
        lines += self.guarded(a["cond"], [a["write"]], sp)
        return [*lines, f"{sp}{t} = {t} + torch.stack({L}).mean(0)"]

    def r_iterate(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        L, G, h, j, t, o = a["l"], a["g"], a["h"], a["j"], a["t"], a["o"]
        gv, jb = a.get("gv", G), a.get("jb", j)
        form, src = a["form"], a["src"]
        if src == "literal":
            lines = [f"{sp}{L} = [{o}, torch.tanh({t})]"]
        elif src == "loop":
            lines = [
                f"{sp}{L} = []",
                f"{sp}for {jb} in range({a['k']}):",
                f"{sp}    {L}.append(torch.tanh({o} * ({jb} + 1)))",
            ]
        elif src == "acc":
            lines = [f"{sp}{L} = [*acc, {o}]"]
        else:
            lines = [f'{sp}{L} = {{"a": {o}, "b": torch.tanh({t})}}']
        if form in ("zip", "enum_zip"):
            lines.append(f"{sp}{G} = [torch.sigmoid({t}), {o} * 0.5]")
        lines += self.mid(n, ind, role)
        head = {
            "enumerate": f"for {j}, {h} in enumerate({L}):",
            "zip": f"for {h}, {gv} in zip({L}, {G}):",
            "reversed": f"for {h} in reversed({L}):",
            "items": f"for {j}, {h} in {L}.items():",
            "enum_zip": f"for {j}, ({h}, {gv}) in enumerate(zip({L}, {G})):",
        }[form]
        first = {
            "enumerate": f" * {j}",
            "enum_zip": f" * {j}",
            "items": f' * (1.0 if {j} == "a" else -1.0)',
        }.get(form, "")
        second = f" * {gv}" if form in ("zip", "enum_zip") else ""
        lines += [
            sp + head,
            f"{sp}    if {a['cond']}:",
            f"{sp}        {t} = {t} + 0.5 * {h}{first}",
            f"{sp}    else:",
            f"{sp}        {t} = {t} - 0.25 * {h}{second}",
        ]
        if n.blocks[1]:
            lines += self.block(n.blocks[1], ind + 4, role)
        return lines

    def r_attr(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        t, o, attr = a["t"], a["o"], a["attr"]
        form = a["form"]
        if form == "temp":
            return [f"{sp}{t} = {o} / self.{attr}"]
        if form == "mix":
            return [f"{sp}{t} = {t} * self.{attr}[0] + {o} * self.{attr}[-1]"]
        if form == "mix_loop":
            return [
                f"{sp}for {a['w']} in self.{attr}:",
                f"{sp}    {t} = torch.tanh({t} * {a['w']}) + 0.1 * {o}",
            ]
        return [f"{sp}for _ in range(self.{attr}):", f"{sp}    {t} = torch.tanh({t}) + 0.1 * {o}"]

    def r_obj(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        R, t, cls = a["r"], a["t"], a["cls"]
        if cls == "FuzzPair":
            lines = [f"{sp}{R} = FuzzPair({a['e1']}, {a['e2']})"]
        else:
            lines = [f"{sp}{R} = {cls}(a={a['e1']}, b={a['e2']})"]
        lines += self.mid(n, ind, role)
        if a["read"] == "index" and cls == "FuzzPair":
            first, second = f"{R}[0]", f"{R}[1]"
        elif a["read"] == "index" and cls == "FuzzPairOutput":
            first, second = f'{R}["a"]', f"{R}[1]"
        else:
            first, second = f"{R}.a", f"{R}.b"
        return [*lines, f"{sp}{t} = {t} + {first} - 0.5 * {second}"]

    def r_exc(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        e, h, t = a["e"], a["h"], a["t"]
        return [
            f"{sp}try:",
            f"{sp}    {t} = self.{a['attr']}({a['o']})",
            f"{sp}except FuzzExit as {e}:",
            f"{sp}    {h} = {e}.outputs[0] + 0.5 * {e}.outputs[1]",
            f"{sp}    {t} = {h} + 0.1 * {e}.k",
        ]

    def r_raise_exc(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        return [f"{sp}if {a['cond']}:", f"{sp}    raise FuzzExit((x, torch.tanh(x)), {a['k']})"]

    def r_hostk(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        K, t, o2 = a["k"], a["t"], a["o2"]
        lines = [f"{sp}{K} = max(min({a['read']}, 2.0), -2.0)", *self.mid(n, ind, role)]
        for use in a["uses"]:
            if use == "mul":
                lines.append(f"{sp}{t} = {t} * (1.0 + 0.1 * {K})")
            elif use == "t0d":
                lines.append(f"{sp}{t} = {t} + {o2}.mean() * {K} * 0.1")
            elif use == "bound":
                lines += [
                    f"{sp}for {a['i']} in range(int(abs({K}) * 2.7 + 0.31) % 3 + 1):",
                    f"{sp}    {t} = torch.tanh({t}) + 0.1 * {a['i']}",
                ]
            elif use == "index":
                idx = f"int(abs({K}) * 6.3 + 0.17) % {self.d}"
                lines.append(f"{sp}{t} = {t} + {t}[:, {idx}].unsqueeze(-1)")
            else:
                # not `t - max(K, 0.0)` with K = t.mean(): that centres t on 0 exactly, and a
                # later `t.mean() > 0.0` compares rounding noise (XLA's and PyTorch's differ)
                lines.append(f"{sp}{t} = {t} - 0.5 * max({K}, 0.0)")
        return lines

    def r_tval(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        t, o, v, w, form = a["t"], a["o"], a["v"], a["w"], a["form"]
        mid = self.mid(n, ind, role)
        if form == "list_index":
            return [
                f"{sp}{v} = [{t}, torch.tanh({o}), {t} * 0.5 - {o}]",
                *mid,
                f"{sp}{t} = {v}[torch.stack([e.abs().mean() for e in {v}]).argmax()]",
            ]
        if form == "slice_bound":
            return [
                f"{sp}{v} = ({o} > 0).sum(-1).max().clamp(min=1)",
                *mid,
                f"{sp}{t} = torch.cat([{t}[:, :{v}] * 2.0, torch.tanh({t}[:, {v}:])], dim=1)",
            ]
        if form == "allclose":
            return [
                *mid,
                f"{sp}if torch.allclose({t}, {o}, atol=0.75):",
                f"{sp}    {t} = {t} + 1.0",
            ]
        if form == "max_key":
            return [
                *mid,
                f"{sp}{t} = max([{t}, -{t}, {o}], key=lambda e: e.sum().item())",
                f"{sp}{t} = sorted([{t}, {o}], key=lambda e: float(e.max()))[0] + 0.0",
            ]
        if form == "topk":
            return [
                f"{sp}{v} = torch.cat([{t}, torch.zeros_like({t})])",
                *mid,
                f"{sp}{w}, {v} = torch.topk({v}, 2, dim=-1)",
                f"{sp}{t} = {t} + {w}[: {t}.shape[0]].sum(-1, keepdim=True) * 0.1 "
                f"+ {v}[{t}.shape[0] :].to({t}.dtype).sum(-1, keepdim=True) * 0.01",
            ]
        if form == "shared":
            # one tensor at two places of a list, written in place through one after a boundary
            # (nothing else holds it): the other place sees the write
            return [
                f"{sp}{w} = {t} * 1.0",
                f"{sp}{v} = [{w}, {w}]",
                *mid,
                f"{sp}{v}[0] *= 1.5",
                f"{sp}{t} = {t} + 0.5 * {v}[1]",
            ]
        if form == "keyed":
            # a class read back with .item() used as a dict key (Python hashes it)
            return [
                f"{sp}{v} = {o}[0].argmax().item()",
                *mid,
                f"{sp}{t} = {t} * {{0: 1.5, 1: 0.5, 2: -0.5}}.get({v}, 2.0)",
            ]
        if form == "closure":
            # a function defined in forward appending to forward's list (inlined at the call)
            fn = a["fn"]
            return [
                f"{sp}def {fn}(e):",
                f"{sp}    acc.append(torch.tanh(e))",
                f"{sp}    if e.sum() > 0:",
                f"{sp}        acc.append(e * 0.5)",
                *mid,
                f"{sp}{fn}({t})",
            ]
        return [
            f"{sp}{v} = {o}.sum(-1) > 0",
            *mid,
            f"{sp}{t} = {t}.clone()",  # after mid: nothing else holds the tensor written
            f"{sp}{t}[{v}] = self.{a['attr']}({t}[{v}])",
        ]

    def r_held(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        t, v, j, form = a["t"], a["value"], a["j"], a["form"]
        box = f"self.{a['attr']}"
        lines: list[str] = []
        if form == "memory":
            if not a["persist"]:
                lines.append(f"{sp}{box}.clear()")
            write = [f"{box}.append({v})", f"if len({box}) > 3:", f"    {box}.pop(0)"]
            read = [f"if len({box}) > 0:", f"    {t} = {t} + 0.5 * torch.stack({box}).mean(0)"]
        elif form == "buffer":
            write = [f"{box}[{j}] = {v}"]
            # zeros made in __init__ stay float32 when the model is .half()
            read = [f"{t} = {t} + (0.5 * {box}[0] - 0.25 * {box}[1]).to({t}.dtype)"]
        elif form == "counts":
            write = [f'{box}["a"] += 1']
            read = [f'{t} = {t} * (1.0 + 0.1 * ({box}["a"] % 3))']
        else:
            if not a["persist"]:
                lines.append(f"{sp}{box}.clear()")
            write = [f'{box}["h"] = {v}']
            read = [f'if "h" in {box}:', f'    {t} = {t} - 0.5 * {box}["h"]']
        lines += self.guarded(a["cond"], write, sp)
        lines += self.mid(n, ind, role)
        return lines + [sp + line for line in read]

    def r_log(self, n: Node, sp: str, ind: int, role: str) -> list[str]:
        a = n.args
        o, tag = a["o"], a["tag"]
        form = a["form"]
        if form == "info":
            return [f'{sp}log.info(f"{tag} mean={{{o}.mean().item():.4f}}")']
        if form == "debug":
            return [f'{sp}log.debug(f"{tag} max={{{o}.max().item():.4f}} shape={{{o}.shape[0]}}")']
        if form == "percent":
            return [f'{sp}log.info("{tag} sum=%.4f", {o}.sum().item())']
        if form == "warn":
            return [f'{sp}warnings.warn(f"{tag} norm={{{o}.norm().item():.4f}}", stacklevel=1)']
        return [
            f"{sp}if {a['cond']}:",
            f'{sp}    log.info(f"{tag} n={{n}} mean={{{o}.mean().item():.4f}}")',
        ]

    # ---- classes and module ----------------------------------------------------------------------

    def used(self, nodes: list[Node], cls: ClassIR, seen: set[str]) -> None:
        """Attributes and helpers the statements reference (helpers' bodies included)."""
        for n in walk(nodes):
            for key in ("attr", "la", "lb"):
                if key in n.args and n.args[key] not in seen:
                    seen.add(n.args[key])
            if n.kind in ("helper", "pair", "try") and n.args["name"] not in seen:
                seen.add(n.args["name"])
                self.used(cls.helpers[n.args["name"]], cls, seen)
            for c in _strings(n.args):
                seen.update(_SELF_ATTR.findall(c))
            for c in n.args.get("conds", []):
                seen.update(_SELF_ATTR.findall(c))

    def cls(self, cls: ClassIR) -> list[str]:
        role = "main" if cls.name == "Model" else "sub"
        seen: set[str] = set()
        self.used(cls.body, cls, seen)
        lines = [
            f"class {cls.name}(nn.Module):",
            "    def __init__(self):",
            "        super().__init__()",
        ]
        for attr, ctor in cls.attrs.items():
            if attr in seen:
                lines.append(f"        self.{attr} = {ctor}")
        for attr, values in cls.mutable.items():
            if attr in seen:
                lines.append(f"        self.{attr} = {values[0]!r}")
                self.mutable.setdefault(cls.name, {})[attr] = values
        for name, body in cls.helpers.items():
            if name in seen and name in cls.pairs:
                lines += [
                    "",
                    f"    def {name}(self, x, y):",
                    *self.block(body, 8, "pair"),
                    "        return x, y",
                ]
            elif name in seen:
                lines += [
                    "",
                    f"    def {name}(self, x):",
                    *self.block(body, 8, "helper"),
                    "        return x",
                ]
        lines += ["", "    def forward(self, x):"]
        if role == "main":
            lines += ["        y = torch.tanh(x)", "        n = 0", "        acc = []"]
        lines += self.block(cls.body, 8, role)
        if role == "main":
            lines += ["        acc.append(y)", "        x = x + torch.stack(acc).sum(0)"]
        lines.append(f"        return {_ret(self.p.out_kind, role)}")
        return lines

    def classes_used(self) -> list[ClassIR]:
        """Classes reachable from Model, dependencies first."""
        order: list[ClassIR] = []

        def visit(cls: ClassIR) -> None:
            seen: set[str] = set()
            self.used(cls.body, cls, seen)
            for attr in cls.attrs:
                if attr in seen:
                    for name, other in self.p.classes.items():
                        if (
                            name != cls.name
                            and f"{name}()" in cls.attrs[attr]
                            and other not in order
                        ):
                            visit(other)
            if cls not in order:
                order.append(cls)

        visit(self.p.classes["Model"])
        return order

    def source(self, header: str = "") -> str:
        self.mutable: dict[str, dict[str, list[Any]]] = {}
        body: list[str] = []
        classes = self.classes_used()
        for cls in classes:
            body += ["", "", *self.cls(cls)]
        text = "\n".join(body)
        prelude = [code.strip("\n") for key, code in _PRELUDE if key in text]
        steps = self.p.steps if (self.mutable or self.p.edit) else 0
        lines = [header.rstrip()] if header else []
        lines += ["import copy", "import dataclasses", "import logging", "import operator"]
        lines += ["import warnings"]
        lines += ["from collections import OrderedDict", "from typing import NamedTuple", ""]
        lines += [
            "import torch",
            "import torch.nn as nn",
            "import torch.nn.functional as F",
            "",
            f"SEED = {self.p.seed}",
            f"INPUTS = {self.p.inputs!r}  # (batch, scale, shift, seed)",
            f"UNSUPPORTED = {self.p.unsupported!r}",
            f"ALIASED = {is_aliased(self.p, classes)!r}  # an in-place write through an alias",
            f"HALF = {self.p.half!r}",
            f"MUTATION_STEPS = {steps!r}  # calls to mutate(model, step) after convert",
            f"MUTABLE = {self.mutable!r}",
            f"WEIGHT_EDIT = {self.p.edit!r}  # (every, factor)",
            "",
            'log = logging.getLogger("dycl_fuzz")',
        ]
        for code in prelude:
            lines += ["", "", code]
        lines += body
        lines += [
            "",
            "",
            "def make_model():",
            "    torch.manual_seed(SEED)",
            "    model = Model().eval()",
            "    return model.half() if HALF else model",
            "",
            "",
            "def make_inputs():",
            "    out = []",
            "    for b, scale, shift, seed in INPUTS:",
            "        g = torch.Generator().manual_seed(seed)",
            f"        x = torch.randn(b, {self.d}, generator=g) * scale + shift",
            "        out.append((x.half() if HALF else x,))",
            "    return out",
            "",
            "",
            "def mutate(model, step):",
            '    """Between calls after convert: change attributes read in regions, edit weights."""',
            "    for mod in model.modules():",
            "        for name, values in MUTABLE.get(type(mod).__name__, {}).items():",
            "            value = values[step % len(values)]",
            "            if isinstance(value, list) and step % 2 == 0:",
            "                getattr(mod, name)[:] = value  # the same list object, edited in place",
            "            else:",
            "                setattr(mod, name, list(value) if isinstance(value, list) else value)",
            "    if WEIGHT_EDIT is not None:",
            "        every, factor = WEIGHT_EDIT",
            "        lins = [m for m in model.modules() if isinstance(m, nn.Linear)]",
            "        with torch.no_grad():",
            "            for lin in lins[step % every :: every]:",
            "                lin.weight.mul_(factor)",
            "                lin.bias.add_(0.1 * step)",
        ]
        return "\n".join(lines) + "\n"


def render(prog: Program, header: str = "") -> str:
    return _Renderer(prog).source(header)


def walk(nodes: list[Node]) -> Iterator[Node]:
    for n in nodes:
        yield n
        for b in n.blocks:
            yield from walk(b)


def is_aliased(prog: Program, classes: list[ClassIR] | None = None) -> bool:
    """Does the program (its reachable classes) write in place through an alias?"""
    if classes is None:
        classes = _Renderer(prog).classes_used()
    for cls in classes:
        seen: set[str] = set()
        _Renderer(prog).used(cls.body, cls, seen)
        bodies = [cls.body, *(b for name, b in cls.helpers.items() if name in seen)]
        if any(n.args.get("aliased") for body in bodies for n in walk(body)):
            return True
    return False


def constructs(prog: Program) -> set[str]:
    """The construct families a program uses (for the campaign's coverage line)."""
    r = _Renderer(prog)
    r.source()
    out: set[str] = set()
    for cls in r.classes_used():
        for body in [cls.body, *cls.helpers.values()]:
            for n in walk(body):
                if n.kind in NEW_FORMS:
                    out.add(n.kind)
    if r.mutable:
        out.add("mutable_attr")
    if prog.half:
        out.add("half")
    if prog.out_kind in ("namedtuple", "dataclass", "modeloutput"):
        out.add("out_" + prog.out_kind)
    if prog.edit is not None:
        out.add("weight_edit")
    if is_aliased(prog):
        out.add("ALIASED")
    return out


def count_stmts(prog: Program) -> int:
    r = _Renderer(prog)
    total = 0
    for cls in r.classes_used():
        total += sum(1 for _ in walk(cls.body))
        for body in cls.helpers.values():
            total += sum(1 for _ in walk(body))
    return total


def generate(seed: int, knobs: Knobs | None = None) -> Program:
    return Generator(seed, knobs).program()
