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

Only constructs dycl_jax documents as supported are generated, unless ``Knobs.unsupported`` is set
(then a few programs also use a refused construct, and a refusal is the expected outcome).
"""

from __future__ import annotations

import copy
import dataclasses
import random
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


@dataclasses.dataclass
class Program:
    seed: int
    d: int
    out_kind: str  # "tensor" | "tuple" | "dict"
    classes: dict[str, ClassIR]  # "Model" is the root
    inputs: list[tuple[int, float, float, int]]  # (batch, scale, shift, seed)
    unsupported: bool = False

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
        return Program(
            self.seed,
            self.d,
            r.choice(["tensor", "tuple", "dict"]),
            self.classes,
            inputs,
            unsupported,
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
        form = r.choices([f for f, _ in forms], [w for _, w in forms])[0]
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
        form = r.choice(
            ["item_gt", "item_lt", "sum0d", "any", "all", "elem", "cmp", "conv", "compound"]
        )
        if form == "item_gt":
            return f"{v}.mean().item() > {r.choice([0.0, 0.0, 0.1, -0.1])}"
        if form == "item_lt":
            return f"{v}.max().item() < {r.choice([0.3, 0.6, 0.9])}"
        if form == "sum0d":
            return f"{v}.sum() > {r.choice([0, 0.5, -0.5])}"
        if form == "any":
            return f"({v} > {r.choice([0.5, 0.8, 1.0])}).any()"
        if form == "all":
            return f"({v} > {r.choice([-0.5, -1.0, 0.0])}).all()"
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
            name = self.fresh("flag")
            s.cls.attrs[name] = repr(r.random() < 0.5)
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


_REFUSED = ["mask_index", "nonzero", "bernoulli", "while_else"]


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
    return f'{{"out": {x}, "aux": y, "n": n}}'


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

    def used(self, nodes: list[Node], cls: ClassIR, seen: set[str]) -> None:
        """Attributes and helpers the statements reference (helpers' bodies included)."""
        for n in walk(nodes):
            for key in ("attr", "la", "lb"):
                if key in n.args and n.args[key] not in seen:
                    seen.add(n.args[key])
            if n.kind in ("helper", "pair", "try") and n.args["name"] not in seen:
                seen.add(n.args["name"])
                self.used(cls.helpers[n.args["name"]], cls, seen)
            for c in [*n.args.get("conds", []), n.args.get("cond", "")]:
                for word in c.replace("(", " ").replace(")", " ").split():
                    if word.startswith("self."):
                        seen.add(word[5:])

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
        lines = [header.rstrip()] if header else []
        lines += [
            "import torch",
            "import torch.nn as nn",
            "import torch.nn.functional as F",
            "",
            f"SEED = {self.p.seed}",
            f"INPUTS = {self.p.inputs!r}  # (batch, scale, shift, seed)",
            f"UNSUPPORTED = {self.p.unsupported!r}",
            "",
        ]
        for cls in self.classes_used():
            lines += ["", *self.cls(cls), "", ""]
        lines += [
            "def make_model():",
            "    torch.manual_seed(SEED)",
            "    return Model().eval()",
            "",
            "",
            "def make_inputs():",
            "    out = []",
            "    for b, scale, shift, seed in INPUTS:",
            "        g = torch.Generator().manual_seed(seed)",
            f"        out.append((torch.randn(b, {self.d}, generator=g) * scale + shift,))",
            "    return out",
        ]
        return "\n".join(lines) + "\n"


def render(prog: Program, header: str = "") -> str:
    return _Renderer(prog).source(header)


def walk(nodes: list[Node]) -> Iterator[Node]:
    for n in nodes:
        yield n
        for b in n.blocks:
            yield from walk(b)


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
