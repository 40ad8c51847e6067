"""Sinking: move the region call after an ``if`` into its branches, merged with their last region.

A host ``if`` splits the tensor code around it into regions: in ::

    if _dy.truth(_t_0):
        x, = _region_1(block, x)          # the block runs
        masks.append(1)
    else:
        x, = _region_2(block, x)          # the block is skipped (a shortcut)
        masks.append(0)
    hidden, prob = _region_3(g, hidden, self, x)    # the gate for the next block

every path makes two region calls. Each falls-through branch can instead end with its own copy of
``_region_3``, traced into the same graph as the branch's last region: one region call per path
(a SkipNet gate after each block, the halting update after an ACT step's remainder). A branch that
ends in ``return`` / ``break`` / ``continue`` / ``raise`` never reaches the call and is left alone.

If the sunk region's first statement raises (a shape error), PyTorch's own exception is raised
as before: only local bookkeeping was moved past it, and nothing inside ``try`` / ``with`` moves.

The host statements between the branch's last region and its end are moved after the sunk call,
so only bookkeeping that cannot see it moves: assignments of names, constants and operators on
them (no calls) and ``append`` on a list this function made itself, none naming what the call reads
or writes. A region that writes state outside the function (``effects``) or is staged is never
merged or moved, and nothing inside a ``try`` or ``with`` moves (a handler could see the
bookkeeping not yet done when the moved region raises).
"""

from __future__ import annotations

import ast
import dataclasses

from dycl_jax.ir.code import PURE_NODES, to_ast
from dycl_jax.ir.program import (
    Block,
    Break,
    CallRegion,
    Continue,
    For,
    If,
    Program,
    Region,
    Return,
    Simple,
    Stmt,
    Try,
    While,
    With,
    walk,
)

# What a moved host assignment may contain: no attribute either (a property could run code).
_PURE_NODES = tuple(n for n in PURE_NODES if n is not ast.Attribute)


def sink(program: Program) -> Program:
    """``program`` with each region call that follows an ``if`` moved into the branches that
    fall through to it, where at least one can merge it with its last region."""
    if not any(isinstance(s, If) for s in walk(program.body)):
        return program
    pass_ = _Pass(program)
    body = pass_.block(program.body)
    if not pass_.changed:
        return program
    new = dataclasses.replace(program, body=body, regions=tuple(pass_.regions.values()))
    called = {c.region for c in new.calls()}  # (the merged regions' parts are called no more)
    return dataclasses.replace(new, regions=tuple(r for r in new.regions if r.name in called))


class _Pass:
    def __init__(self, program: Program) -> None:
        self.regions = {r.name: r for r in program.regions}
        self.fresh_lists = _fresh_lists(program)
        self.changed = False
        self.next_id = program.next_region_id()

    def block(self, block: Block) -> Block:
        stmts = [self.nested(s) for s in block]
        out: list[Stmt] = []
        i = 0
        while i < len(stmts):
            s = stmts[i]
            nxt = stmts[i + 1] if i + 1 < len(stmts) else None
            if isinstance(s, If) and isinstance(nxt, CallRegion):
                sunk = self.sunk(s, nxt)
                if sunk is not None:
                    out.append(sunk)
                    self.changed = True
                    i += 2
                    continue
            out.append(s)
            i += 1
        return tuple(out)

    def nested(self, s: Stmt) -> Stmt:
        if isinstance(s, If | While | For):
            return dataclasses.replace(s, body=self.block(s.body), orelse=self.block(s.orelse))
        # Inside a try or with, an error raised by the moved region could be caught where the
        # bookkeeping it moved past has not run yet: left as it is.
        return s

    # ---- one if and the call after it -----------------------------------------------------------

    def sunk(self, s: If, call: CallRegion) -> If | None:
        """``s`` with ``call`` moved into its branches, or None where that is not worth it or
        not sure to be the same."""
        region = self.regions[call.region]
        if region.effects or region.staged is not None:
            return None
        # per branch: None where it never reaches the call, else where the call merges into
        # it (the index of its last region call) or -1 (appended at its end)
        plans: list[int | None] = []
        for branch in (s.body, s.orelse):
            if _ends_in_jump(branch):
                plans.append(None)
            elif _jumps(branch):
                return None  # may or may not reach it
            else:
                plans.append(self.merge_point(branch, call))
        if not any(p is not None and p >= 0 for p in plans):
            return None  # no branch merges: the same calls, only moved
        body, orelse = (
            branch if at is None else self.with_call(branch, call, at)
            for branch, at in zip((s.body, s.orelse), plans)
        )
        return dataclasses.replace(s, body=body, orelse=orelse)

    def merge_point(self, branch: Block, call: CallRegion) -> int:
        """The index of ``branch``'s last region call when ``call`` can be merged into it (the
        statements after it commute with the call), else -1 (appended at the end)."""
        touched = {*call.args, *call.outs}
        for k in range(len(branch) - 1, -1, -1):
            s = branch[k]
            if isinstance(s, CallRegion):
                r = self.regions[s.region]
                return -1 if r.effects or r.staged is not None else k
            if not isinstance(s, Simple) or not self.bookkeeping(s, touched):
                return -1
        return -1

    def bookkeeping(self, s: Simple, touched: set[str]) -> bool:
        """``s`` moves past a region call reading and writing ``touched``: it only assigns
        names from names, constants and operators, or appends such a value to a list this
        function made, and names nothing in ``touched``."""
        stmts = to_ast(s.code)
        if len(stmts) != 1:
            return False
        a = stmts[0]
        names: list[str] = []
        if isinstance(a, ast.Assign | ast.AugAssign):
            targets = a.targets if isinstance(a, ast.Assign) else [a.target]
            if not all(isinstance(t, ast.Name) for t in targets):
                return False
            names += [t.id for t in targets if isinstance(t, ast.Name)]
            values = [a.value]
        elif (
            isinstance(a, ast.Expr)
            and isinstance(a.value, ast.Call)
            and isinstance(a.value.func, ast.Attribute)
            and a.value.func.attr == "append"
            and isinstance(a.value.func.value, ast.Name)
            and a.value.func.value.id in self.fresh_lists
            and not a.value.keywords
        ):
            names.append(a.value.func.value.id)
            values = list(a.value.args)
        else:
            return False
        for v in values:
            for node in ast.walk(v):
                if not isinstance(node, _PURE_NODES):
                    return False
                if isinstance(node, ast.Name):
                    names.append(node.id)
        return not (set(names) & touched)

    def with_call(self, branch: Block, call: CallRegion, at: int) -> Block:
        """``branch`` ending with a copy of ``call``, merged into its region call at index
        ``at`` (the statements after that one now run after both), or appended where -1."""
        if at < 0:
            return (*branch, self.copy(call))
        last = branch[at]
        assert isinstance(last, CallRegion)
        merged = self.merged(self.regions[last.region], self.regions[call.region])
        new_call = CallRegion(merged.name, merged.live_in, merged.live_out, last.line)
        return (*branch[:at], new_call, *branch[at + 1 :])

    # ---- regions -----------------------------------------------------------------------------

    def fresh(self) -> str:
        name = f"_region_{self.next_id}"
        self.next_id += 1
        return name

    def copy(self, call: CallRegion) -> CallRegion:
        r = dataclasses.replace(self.regions[call.region], name=self.fresh())
        self.regions[r.name] = r
        return dataclasses.replace(call, region=r.name)

    def merged(self, first: Region, then: Region) -> Region:
        """One region running ``first``'s statements, then ``then``'s."""
        live_in = tuple(
            dict.fromkeys((*first.live_in, *(n for n in then.live_in if n not in first.live_out)))
        )
        live_out = tuple(dict.fromkeys((*first.live_out, *then.live_out)))
        r = Region(
            name=self.fresh(),
            body=(*first.body, *then.body),
            live_in=live_in,
            live_out=live_out,
            host_scalars=(first.host_scalars | then.host_scalars) & frozenset(live_in),
            filename=first.filename,
            first_line=min(first.first_line, then.first_line),
            last_line=max(first.last_line, then.last_line),
            split_reason=then.split_reason,
            effects=False,
            read_after=((first.read_after | then.read_after) & frozenset(live_in))
            - frozenset(live_out),
            joins=(*first.joins, len(first.body), *(len(first.body) + j for j in then.joins)),
            opaque_calls=first.opaque_calls or then.opaque_calls,
        )
        self.regions[r.name] = r
        return r


def _jumps(block: Block) -> bool:
    """``block`` may leave by return, break, continue or raise (a loop inside it may break out
    of itself: that stays inside)."""
    for s in block:
        if isinstance(s, Return | Break | Continue) or _raises(s):
            return True
        if isinstance(s, If) and (_jumps(s.body) or _jumps(s.orelse)):
            return True
        if isinstance(s, While | For) and (
            any(isinstance(x, Return) or _raises(x) for x in walk(s.body)) or _jumps(s.orelse)
        ):
            return True
        if isinstance(s, With | Try):
            return True  # (a handler or a context manager may swallow or re-raise)
    return False


def _ends_in_jump(block: Block) -> bool:
    """Every path through ``block`` leaves it by return, break, continue or raise."""
    if not block:
        return False
    last = block[-1]
    if isinstance(last, Return | Break | Continue) or _raises(last):
        return True
    if isinstance(last, If):
        return _ends_in_jump(last.body) and _ends_in_jump(last.orelse)
    return False


def _raises(s: Stmt) -> bool:
    return isinstance(s, Simple) and any(isinstance(a, ast.Raise) for a in to_ast(s.code))


def _fresh_lists(program: Program) -> frozenset[str]:
    """Locals that hold a list no one else can reach: assigned only as ``name = [...]`` (one
    target) and otherwise only appended to, measured with ``len``, indexed, iterated or
    returned, in host statements and in every region's statements alike. Anything else (another
    name bound to it, ``self.trace = masks``, a dict or tuple holding it, a call taking it) lets
    code that reads it under another name see an append, so it is not one."""
    texts: list[str] = []
    for s in walk(program.body):
        if isinstance(s, Simple):
            texts.append(s.code.text)
        elif isinstance(s, If | While):
            texts.append(s.test)
        elif isinstance(s, For):
            texts += [f"{s.target} = None", s.iter]
        elif isinstance(s, With):
            texts.append(s.items)
        elif isinstance(s, Return) and s.value is not None:
            texts.append(f"return {s.value}")
        elif isinstance(s, CallRegion):  # (what it does with its arguments: its statements)
            texts.append(f"{', '.join(s.outs) or '_'} = None")
        elif isinstance(s, Try):
            texts += [f"{h.name} = None" for h in s.handlers if h.name]
    for r in program.regions:
        texts += [c.text for c in r.body]
    candidates: set[str] = set()
    other: set[str] = set(program.param_names)
    trees = []
    for text in texts:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return frozenset()  # a statement this cannot read: trust none
        trees.append(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.List)
            ):
                candidates.add(node.targets[0].id)
    for tree in trees:
        parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in candidates:
                if not _private_use(node, parents):
                    other.add(node.id)
            elif isinstance(node, ast.Global | ast.Nonlocal):
                other.update(node.names)
            elif isinstance(node, ast.arg):
                other.add(node.arg)
    return frozenset(candidates - other)


def _private_use(node: ast.Name, parents: dict[int, ast.AST]) -> bool:
    """A use of a list's name that gives no one else the list (see _fresh_lists)."""
    parent = parents.get(id(node))
    if isinstance(node.ctx, ast.Store):
        # only `name = [...]` (the region call outputs and loop targets are other bindings)
        return (
            isinstance(parent, ast.Assign)
            and len(parent.targets) == 1
            and parent.targets[0] is node
            and isinstance(parent.value, ast.List)
        )
    if not isinstance(node.ctx, ast.Load):
        return False
    if isinstance(parent, ast.Attribute) and parent.attr == "append":
        return isinstance(parents.get(id(parent)), ast.Call)
    if isinstance(parent, ast.Subscript) and parent.value is node:
        return True
    if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name):
        return parent.func.id in ("len", "sum", "max", "min", "any", "all")
    if isinstance(parent, ast.For | ast.comprehension) and parent.iter is node:
        return True
    return isinstance(parent, ast.Return) or (
        isinstance(parent, ast.Tuple) and isinstance(parents.get(id(parent)), ast.Return)
    )
