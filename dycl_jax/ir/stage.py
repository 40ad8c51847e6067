"""Staging: run cheap host control flow in-graph, so a program makes fewer region calls.

A host ``if`` on a condition read (``if _dy.truth(c):``) whose branches are only region calls is
*stageable*: both branches can be traced into the graph of one region and the condition chosen
there (a select), saving the condition's device read and a region dispatch. This pass rewrites
each run of consecutive stageable statements in a block — region calls and stageable ``if``s,
with at least one ``if`` — into one **staged region** whose body is::

    <the first region's statements>
    def _dy_then_3(h, s):          # the if at line 3: each branch a function of what it reads
        <the then-branch regions' statements>
        return (h,)                # the names the if assigns that are read afterwards
    def _dy_else_3(h):
        <the else-branch regions' statements>
        return (h,)
    h, = _dy_select(c, _dy_then_3, (h, s), _dy_else_3, (h,))
    <the next region's statements>

Inner blocks are staged first, so an ``elif`` chain or nested ``if`` becomes one region when
every level is stageable. The staged region keeps the statements it replaces (``Region.staged``)
as its **fallback**: the host program runs them instead for a signature where the select does not
apply — branches whose results differ in shape or Python value, a branch too costly to compute
when not taken (``runtime.staging`` decides per signature, by a measured cost model), a condition
that is not one element, or gradients through ``ConvertedModel.apply`` (a select's untaken branch
can turn a zero cotangent into NaN).

What is never staged: an ``if`` whose branches hold host statements (returns, Python bookkeeping,
dynamic calls, appends), regions that write state outside the function (``effects``), and an ``if``
whose branch would pass through a name that is not assigned on every path before the run.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from typing import Any

from dycl_jax.analysis import placement
from dycl_jax.ir.code import PURE_NODES, code_of, to_ast
from dycl_jax.ir.facts import Facts, host_function
from dycl_jax.ir.program import (
    RUNTIME,
    Block,
    CallRegion,
    Code,
    If,
    Program,
    Region,
    Simple,
    Staged,
    Stmt,
    line_of,
    map_blocks,
    walk,
)

SELECT = "_dy_select"  # the name staged region bodies call (bound by the loader)

# ast.FunctionDef has type_params from Python 3.12 on (and compile needs it there).
_TYPE_PARAMS: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}


def stage(program: Program, host_names: frozenset[str], tensor_names: frozenset[str]) -> Program:
    """``program`` with every stageable run of statements replaced by a staged region call;
    ``host_names`` are the locals holding Python scalars read back from tensors (a staged region
    takes them as 0-d inputs, like any region, so a new value does not recompile);
    ``tensor_names`` the locals holding tensors (or containers of them): the only names a host
    assignment may bind and still be staged (traced, a Python number would become a tensor and
    an object would come back a copy)."""
    if not any(isinstance(s, If) for s in walk(program.body)):
        return program
    fn = host_function(program)
    facts = Facts.of(program, fn)
    if facts is None:
        return program
    # A name compared by identity (`out is y`) keeps the very object the host assigned: traced,
    # `out = x if c else y` would come back as a new array.
    identity = _identity_operands(fn)
    pass_ = _Pass(program, facts, host_names, tensor_names - identity, identity)
    body = pass_.block(program.body)
    if not pass_.made:
        return program
    return dataclasses.replace(program, body=body, regions=(*program.regions, *pass_.made))


def _identity_operands(fn: ast.FunctionDef) -> frozenset[str]:
    """Names the host function ``fn`` compares with ``is`` / ``is not`` or takes the ``id`` of,
    and the names copied into them (``_t = x; out = _t``)."""
    out: set[str] = set()
    copies: list[tuple[str, str]] = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Compare) and any(
            isinstance(o, ast.Is | ast.IsNot) for o in node.ops
        ):
            out.update(o.id for o in (node.left, *node.comparators) if isinstance(o, ast.Name))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "id"
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Name)
        ):
            out.add(node.args[0].id)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
            copies += [(t.id, node.value.id) for t in node.targets if isinstance(t, ast.Name)]
    grew = True
    while grew:
        grew = False
        for target, source in copies:
            if target in out and source not in out:
                out.add(source)
                grew = True
    return frozenset(out)


@dataclasses.dataclass(frozen=True)
class _Item:
    """One statement of a run, summarised: what it reads first, what it assigns (read later)."""

    stmt: Stmt
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    code: tuple[Code, ...]  # its statements inside the staged region's body
    ifs: tuple[int, ...]


class _Pass:
    def __init__(
        self,
        program: Program,
        facts: Facts,
        host_names: frozenset[str],
        tensor_names: frozenset[str],
        identity: frozenset[str] = frozenset(),
    ) -> None:
        self.program = program
        self.identity = identity  # names compared by `is`: a select would make new objects
        self.host_names = host_names
        self.tensor_names = tensor_names
        self.facts = facts
        self.regions = {r.name: r for r in program.regions}
        self.made: list[Region] = []
        self.next_id = program.next_region_id()

    # ---- blocks --------------------------------------------------------------------------------

    def block(self, block: Block) -> Block:
        stmts = [self.nested(s) for s in block]
        out: list[Stmt] = []
        run: list[_Item] = []
        for s in stmts:
            item = self.item(s)
            if item is None:
                out.extend(self.close(run))
                run = []
                out.append(s)
            else:
                run.append(item)
        out.extend(self.close(run))
        return tuple(out)

    def nested(self, s: Stmt) -> Stmt:
        new = map_blocks(s, self.block)
        if new is not s:
            self._same_facts(s, new)
        return new

    def _same_facts(self, old: Stmt, new: Stmt) -> None:
        f = self.facts
        if id(old) in f.live_after:
            f.live_after[id(new)] = f.live_after[id(old)]
            f.defined_before[id(new)] = f.defined_before[id(old)]

    # ---- items -----------------------------------------------------------------------------------

    def item(self, s: Stmt) -> _Item | None:
        if isinstance(s, CallRegion):
            r = self.regions[s.region]
            if r.effects:
                return None
            return _Item(s, s.args, s.outs, r.body, r.staged.ifs if r.staged else ())
        if isinstance(s, If):
            return self.if_item(s)
        if isinstance(s, Simple):
            return self.simple_item(s)
        return None

    def simple_item(self, s: Simple) -> _Item | None:
        """A host assignment that computes nothing (``_t_0 = y``, ``flag = scale > 2``): names
        bound to names, constants, attributes and operators on them; no calls. Traced into a
        staged region it is the same Python, run at capture time or on traced values."""
        stmts = to_ast(s.code)
        if len(stmts) != 1 or not isinstance(stmts[0], ast.Assign):
            return None
        a = stmts[0]
        if not all(isinstance(t, ast.Name) for t in a.targets):
            return None
        reads: list[str] = []
        for node in ast.walk(a.value):
            if not isinstance(node, PURE_NODES):
                return None
            if isinstance(node, ast.Name):
                if node.id == RUNTIME or not isinstance(node.ctx, ast.Load):
                    return None
                reads.append(node.id)
        defined = self.facts.defined_before.get(id(s))
        if defined is None or any(n not in defined for n in reads):
            return None  # a global or a name not assigned on every path: leave it on the host
        writes = tuple(t.id for t in a.targets if isinstance(t, ast.Name))
        if any(n not in self.tensor_names or n in self.host_names for n in writes):
            return None  # a Python number or object: it stays one, on the host
        return _Item(s, tuple(dict.fromkeys(reads)), writes, (s.code,), ())

    def if_item(self, s: If) -> _Item | None:
        pred, negated = _truth_test(s.test)
        if pred is None:
            return None
        then, orelse = self.branch(s.body), self.branch(s.orelse)
        if then is None or orelse is None:
            return None
        (t_reads, t_writes, t_code, t_ifs), (e_reads, e_writes, e_code, e_ifs) = then, orelse
        after = self.facts.live_after.get(id(s))
        defined = self.facts.defined_before.get(id(s))
        if after is None or defined is None:
            return None
        outs = tuple(n for n in dict.fromkeys((*t_writes, *e_writes)) if n in after)
        if any(n in self.identity for n in outs):
            return None  # `y is x` after it: the host keeps the object a branch leaves
        # A name one branch leaves as it was is passed through that branch: it must exist.
        through = [n for n in outs if n not in t_writes or n not in e_writes]
        if any(n not in defined for n in through):
            return None
        t_params = tuple(dict.fromkeys((*t_reads, *(n for n in outs if n not in t_writes))))
        e_params = tuple(dict.fromkeys((*e_reads, *(n for n in outs if n not in e_writes))))
        if negated:
            t_params, e_params = e_params, t_params
            t_code, e_code = e_code, t_code
        tag = s.line
        then_fn, else_fn = f"_dy_then_{tag}", f"_dy_else_{tag}"
        code = (
            _def(then_fn, t_params, t_code, outs, s.line),
            _def(else_fn, e_params, e_code, outs, s.line),
            _select_call(pred, then_fn, t_params, else_fn, e_params, outs, s.line),
        )
        reads = tuple(dict.fromkeys((pred, *t_params, *e_params)))
        return _Item(s, reads, outs, code, (s.line, *t_ifs, *e_ifs))

    def branch(
        self, block: Block
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Code, ...], tuple[int, ...]] | None:
        """(reads, writes, code, ifs) of a branch made only of region calls, else None."""
        items = []
        for s in block:
            # an inner if is here only if it could not be staged itself
            item = None if isinstance(s, If) else self.item(s)
            if item is None:
                return None
            items.append(item)
        reads, writes = _flow(items)
        code = tuple(c for i in items for c in i.code)
        return reads, writes, code, tuple(x for i in items for x in i.ifs)

    # ---- runs ------------------------------------------------------------------------------------

    def close(self, run: list[_Item]) -> list[Stmt]:
        """The statements of ``run``: one staged region call if it holds an ``if``."""
        subs = [self.regions[c.region] for i in run for c in _calls(i.stmt)]
        if not subs or not any(isinstance(i.stmt, If) for i in run):
            return [i.stmt for i in run]  # no select, or nothing to compute in it
        live_in, writes = _flow(run)
        first, last = run[0].stmt, run[-1].stmt
        after = self.facts.live_after[id(last)]
        live_out = tuple(n for n in writes if n in after)
        name = f"_region_{self.next_id}"
        self.next_id += 1
        region = Region(
            name=name,
            body=tuple(c for i in run for c in i.code),
            live_in=live_in,
            live_out=live_out,
            # a host scalar used as a Python key anywhere in the run (a part specialises on it)
            # stays a Python value here
            host_scalars=(self.host_names & frozenset(live_in))
            - placement.python_keys(
                [a for i in run for c in i.code for a in to_ast(c)], self.tensor_names
            ),
            filename=self.program.filename,
            first_line=min(r.first_line for r in subs),
            last_line=max(r.last_line for r in subs),
            split_reason=self.regions[last.region].split_reason
            if isinstance(last, CallRegion)
            else None,
            staged=Staged(tuple(i.stmt for i in run), tuple(x for i in run for x in i.ifs)),
            opaque_calls=any(r.opaque_calls for r in subs),
            # (what a write the analysis does not follow would leave stale: see RegionRunner)
            read_after=(
                (frozenset().union(*(r.read_after for r in subs)) | frozenset(after))
                & frozenset(live_in)
            )
            - frozenset(live_out),
        )
        self.made.append(region)
        self.regions[name] = region
        call = CallRegion(name, live_in, live_out, line_of(first))
        self.facts.live_after[id(call)] = after
        self.facts.defined_before[id(call)] = self.facts.defined_before[id(first)]
        return [call]


def _flow(items: list[_Item]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(reads, writes) of ``items`` run in order: a name read after an item wrote it is not a
    read of the sequence."""
    reads: list[str] = []
    writes: list[str] = []
    for i in items:
        reads.extend(n for n in i.reads if n not in writes)
        writes.extend(i.writes)
    return tuple(dict.fromkeys(reads)), tuple(dict.fromkeys(writes))


def _calls(s: Stmt) -> list[CallRegion]:
    return [x for x in walk((s,)) if isinstance(x, CallRegion)]


def _truth_test(test: str) -> tuple[str | None, bool]:
    """(name, negated) for a test ``_dy.truth(name)`` or ``not _dy.truth(name)``."""
    e = ast.parse(test, mode="eval").body
    negated = False
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
        e, negated = e.operand, True
    if (
        isinstance(e, ast.Call)
        and isinstance(e.func, ast.Attribute)
        and isinstance(e.func.value, ast.Name)
        and e.func.value.id == RUNTIME
        and e.func.attr == "truth"
        and len(e.args) == 1
        and not e.keywords
        and isinstance(e.args[0], ast.Name)
    ):
        return e.args[0].id, negated
    return None, False


def _tuple(names: tuple[str, ...], ctx: ast.expr_context) -> ast.Tuple:
    return ast.Tuple([ast.Name(n, ctx) for n in names], ctx)


def _def(
    name: str, params: tuple[str, ...], body: tuple[Code, ...], outs: tuple[str, ...], line: int
) -> Code:
    stmts: list[ast.stmt] = [s for c in body for s in to_ast(c)]
    ret = ast.Return(_tuple(outs, ast.Load()))
    args = ast.arguments(
        posonlyargs=[],
        args=[ast.arg(n) for n in params],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )
    fn = ast.FunctionDef(name, args, [*stmts, ret], [], None, **_TYPE_PARAMS)
    for node in (fn, ret, *ast.walk(args), *ast.walk(ret)):
        node.lineno = node.end_lineno = line  # type: ignore[attr-defined]
        node.col_offset = node.end_col_offset = 0  # type: ignore[attr-defined]
    return code_of(fn)


def _select_call(
    pred: str,
    then_fn: str,
    t_params: tuple[str, ...],
    else_fn: str,
    e_params: tuple[str, ...],
    outs: tuple[str, ...],
    line: int,
) -> Code:
    call = ast.Call(
        ast.Name(SELECT, ast.Load()),
        [
            ast.Name(pred, ast.Load()),
            ast.Name(then_fn, ast.Load()),
            _tuple(t_params, ast.Load()),
            ast.Name(else_fn, ast.Load()),
            _tuple(e_params, ast.Load()),
        ],
        [],
    )
    stmt: ast.stmt = (
        ast.Assign([_tuple(outs, ast.Store())], call) if outs else ast.Expr(call)  # type: ignore[call-arg]
    )
    for node in ast.walk(stmt):
        if isinstance(node, ast.expr | ast.stmt):
            node.lineno = node.end_lineno = line
            node.col_offset = node.end_col_offset = 0
    return code_of(stmt)
