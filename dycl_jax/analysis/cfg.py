"""Control-flow graph (CFG) of one Python function body, at statement granularity.

Terms:
  * **node**: one simple statement (``x = f(y)``, ``return x``, ``break``, a nested ``def``/
    ``class``, which only binds its name), or the *header* of a compound statement: an ``if``'s
    test, a ``while``'s test, a ``for``'s iteration step (reads the iterable, binds the target),
    a ``with``'s items, a ``try``'s entry, an ``except`` clause (binds its ``as`` name), a
    ``match``'s subject or one ``case``'s pattern. Nested function, lambda and class bodies are
    never entered; comprehensions are expressions. The synthetic **entry** and **exit** nodes have
    ``ast_node is None``; every ``return`` and ``raise`` leads to exit.
  * **edge** ``a -> b``: control may pass from the end of ``a`` to the start of ``b``. Loops have
    back edges to their header; the header's other successor is the ``else`` clause (or what
    follows the loop), taken when the loop ends without ``break``.
  * **binds_into**: a ``for`` header binds its target, and a ``case`` its captures, only on the
    edge into the body (``binds_into``); on the exit edge nothing is bound. Analyses honour this
    so that ``for i in []: ...`` does not count ``i`` as assigned.
  * **follow set** of a statement: the nodes that control reaches when the whole statement
    (with its nested bodies) completes normally, i.e. the point "just after" it.

Approximations (each keeps liveness and definite assignment sound, at some loss of precision):
  * Implicit exceptions are modelled only inside ``try`` bodies: the ``try`` entry node and every
    node in the body (at any depth) has an edge to each handler. Outside a ``try`` an exception
    leaves the function, which no analysis observes.
  * Exceptions escaping a ``try`` (no catch-all ``except:``/``except BaseException``, or raised in
    an ``else`` or handler) go to its ``finally``, else to the enclosing ``try``, else to exit.
  * A ``finally`` body is built once and *merged*: every way out of the ``try`` (normal
    completion, escaping exception, ``return``/``break``/``continue``) enters it, and its end leads
    to every destination any of those paths had. Paths therefore mix: after
    ``try: x = 1`` / ``finally: pass`` the code that follows is also reachable with ``x`` unset.
  * A ``with`` never suppresses exceptions.
  * ``while <truthy constant>:`` has no exit edge from its test (so code after ``while True:``
    is reached only by ``break``); no other constant folding.

Consumes an ``ast.FunctionDef`` (or a list of statements); produces a :class:`Graph`.

Example::

    fn = ast.parse("def f(x):\\n  if x:\\n    x = 1\\n  return x").body[0]
    g = build(fn)
    g.node_of[fn.body[0]].kind  # NodeKind.IF
"""

from __future__ import annotations

import ast
import dataclasses
import enum
from collections.abc import Iterable, Sequence

from dycl_jax.errors import InternalError


class NodeKind(enum.Enum):
    ENTRY = "entry"
    EXIT = "exit"
    STMT = "stmt"  # a simple statement (incl. nested def/class: a binding)
    IF = "if"  # an if's test
    WHILE = "while"  # a while's test (loop header)
    FOR = "for"  # a for's iteration step (loop header)
    WITH = "with"  # a with's items
    TRY = "try"  # entry into a try
    HANDLER = "handler"  # an except clause
    MATCH = "match"  # a match's subject
    CASE = "case"  # one case's pattern and guard


class Node:
    """A CFG node. Hashed and compared by identity; ``index`` is its position in ``Graph.nodes``."""

    __slots__ = ("ast_node", "binds_into", "index", "kind", "next", "prev")

    def __init__(self, ast_node: ast.AST | None, kind: NodeKind, index: int) -> None:
        self.ast_node = ast_node
        self.kind = kind
        self.index = index
        self.prev: set[Node] = set()
        self.next: set[Node] = set()
        # FOR / CASE only: the body's first node, the one successor where bindings take effect.
        self.binds_into: Node | None = None

    def __repr__(self) -> str:
        if self.ast_node is None:
            return f"<Node {self.kind.value}>"
        text = ast.unparse(self.ast_node).splitlines()[0]
        return f"<Node {self.kind.value} line {getattr(self.ast_node, 'lineno', '?')}: {text}>"


@dataclasses.dataclass(frozen=True, eq=False)
class Graph:
    """The CFG of one function. ``nodes`` is in source order: entry first, exit last."""

    name: str
    entry: Node
    exit: Node
    nodes: list[Node]
    # Each statement, except clause and match case -> its node (a compound one: its header).
    node_of: dict[ast.AST, Node]
    # Each statement, except clause and match case -> its follow set (see the module docstring).
    follow: dict[ast.AST, frozenset[Node]]
    # Each statement, except clause and match case -> [start, stop) of its nodes in ``nodes``.
    spans: dict[ast.AST, tuple[int, int]]

    def nodes_in(self, stmt: ast.AST) -> list[Node]:
        """The nodes of ``stmt`` and everything nested in it, in source order."""
        lo, hi = self.spans[stmt]
        return self.nodes[lo:hi]


def _link(srcs: Iterable[Node], dst: Node) -> None:
    for src in srcs:
        src.next.add(dst)
        dst.prev.add(src)


@dataclasses.dataclass(eq=False)
class _LoopFrame:
    header: Node
    breaks: set[Node] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(eq=False)
class _TryFrame:
    has_finally: bool
    in_body: bool = True
    # Nodes from which an exception may reach the handlers (the entry and the whole body).
    body_raisers: set[Node] = dataclasses.field(default_factory=set)
    # Nodes in else / handlers: their exceptions escape this try.
    escaping: set[Node] = dataclasses.field(default_factory=set)
    # return / break / continue nodes routed through the finally, and which kinds they were.
    to_finally: set[Node] = dataclasses.field(default_factory=set)
    pending: set[str] = dataclasses.field(default_factory=set)


class _Builder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[Node] = []
        self.node_of: dict[ast.AST, Node] = {}
        self.ends: dict[ast.AST, frozenset[Node]] = {}
        self.spans: dict[ast.AST, tuple[int, int]] = {}
        self.frames: list[_LoopFrame | _TryFrame] = []
        self.entry = self._new(None, NodeKind.ENTRY, ())
        self.exit = Node(None, NodeKind.EXIT, -1)

    def graph(self, body: Sequence[ast.stmt]) -> Graph:
        _link(self._block(body, {self.entry}), self.exit)
        self.exit.index = len(self.nodes)
        self.nodes.append(self.exit)
        follow = {}
        for stmt, ends in self.ends.items():
            lo, hi = self.spans[stmt]
            follow[stmt] = frozenset(n for e in ends for n in e.next if not lo <= n.index < hi)
        return Graph(self.name, self.entry, self.exit, self.nodes, self.node_of, follow, self.spans)

    # -- helpers ---------------------------------------------------------------------------------

    def _innermost_try(self) -> _TryFrame | None:
        for frame in reversed(self.frames):
            if isinstance(frame, _TryFrame):
                return frame
        return None

    def _new(self, ast_node: ast.AST | None, kind: NodeKind, preds: Iterable[Node]) -> Node:
        node = Node(ast_node, kind, len(self.nodes))
        self.nodes.append(node)
        if ast_node is not None:
            self.node_of[ast_node] = node
        _link(preds, node)
        frame = self._innermost_try()
        if frame is not None:
            (frame.body_raisers if frame.in_body else frame.escaping).add(node)
        return node

    def _jump(self, kind: str, srcs: set[Node]) -> None:
        """Route ``return`` / ``break`` / ``continue`` from ``srcs``, through any finally."""
        for frame in reversed(self.frames):
            if isinstance(frame, _TryFrame):
                if frame.has_finally:
                    frame.to_finally |= srcs
                    frame.pending.add(kind)
                    return
            elif kind == "break":
                frame.breaks |= srcs
                return
            elif kind == "continue":
                _link(srcs, frame.header)
                return
        if kind != "return":
            raise InternalError(f"'{kind}' outside a loop in {self.name}", stage="cfg")
        _link(srcs, self.exit)

    def _propagate(self, srcs: set[Node]) -> None:
        """Exceptions from ``srcs`` escape to the enclosing try, or leave the function."""
        frame = self._innermost_try()
        if frame is None:
            _link(srcs, self.exit)
        else:
            (frame.body_raisers if frame.in_body else frame.escaping).update(srcs)

    def _record(self, ast_node: ast.AST, start: int, ends: set[Node]) -> None:
        self.spans[ast_node] = (start, len(self.nodes))
        self.ends[ast_node] = frozenset(ends)

    # -- statements ------------------------------------------------------------------------------

    def _block(self, stmts: Sequence[ast.stmt], preds: set[Node]) -> set[Node]:
        """Build ``stmts`` entered from ``preds``; returns the nodes that fall through."""
        for stmt in stmts:
            start = len(self.nodes)
            preds = self._stmt(stmt, preds)
            self._record(stmt, start, preds)
        return preds

    def _stmt(self, s: ast.stmt, preds: set[Node]) -> set[Node]:
        if isinstance(s, ast.If):
            test = self._new(s, NodeKind.IF, preds)
            return self._block(s.body, {test}) | self._block(s.orelse, {test})
        if isinstance(s, ast.While | ast.For | ast.AsyncFor):
            return self._loop(s, preds)
        if isinstance(s, ast.With | ast.AsyncWith):
            return self._block(s.body, {self._new(s, NodeKind.WITH, preds)})
        if isinstance(s, ast.Try | ast.TryStar):
            return self._try(s, preds)
        if isinstance(s, ast.Match):
            return self._match(s, preds)
        node = self._new(s, NodeKind.STMT, preds)
        if isinstance(s, ast.Return):
            self._jump("return", {node})
        elif isinstance(s, ast.Break):
            self._jump("break", {node})
        elif isinstance(s, ast.Continue):
            self._jump("continue", {node})
        elif isinstance(s, ast.Raise):
            if self._innermost_try() is None:  # inside a try it is already a raiser
                _link((node,), self.exit)
        else:
            return {node}
        return set()

    def _loop(self, s: ast.While | ast.For | ast.AsyncFor, preds: set[Node]) -> set[Node]:
        is_for = not isinstance(s, ast.While)
        header = self._new(s, NodeKind.FOR if is_for else NodeKind.WHILE, preds)
        frame = _LoopFrame(header)
        self.frames.append(frame)
        first = len(self.nodes)
        _link(self._block(s.body, {header}), header)
        self.frames.pop()
        if is_for:
            header.binds_into = self.nodes[first]
        endless = isinstance(s, ast.While) and _truthy_constant(s.test)
        return self._block(s.orelse, set() if endless else {header}) | frame.breaks

    def _try(self, s: ast.Try | ast.TryStar, preds: set[Node]) -> set[Node]:
        entry = self._new(s, NodeKind.TRY, preds)
        frame = _TryFrame(has_finally=bool(s.finalbody), body_raisers={entry})
        self.frames.append(frame)
        ends = self._block(s.body, {entry})
        frame.in_body = False
        ends = self._block(s.orelse, ends)
        raisers = frozenset(frame.body_raisers)
        catch_all = False
        for handler in s.handlers:
            start = len(self.nodes)
            hnode = self._new(handler, NodeKind.HANDLER, raisers)
            handler_ends = self._block(handler.body, {hnode})
            self._record(handler, start, handler_ends)
            ends = ends | handler_ends
            catch_all |= handler.type is None or (
                isinstance(handler.type, ast.Name) and handler.type.id == "BaseException"
            )
        self.frames.pop()
        escaping = frame.escaping | (set() if catch_all else frame.body_raisers)
        if not s.finalbody:
            self._propagate(escaping)
            return ends
        fin_ends = self._block(s.finalbody, ends | frame.to_finally | escaping)
        for kind in ("return", "break", "continue"):
            if kind in frame.pending:
                self._jump(kind, fin_ends)
        if escaping:
            self._propagate(fin_ends)
        return fin_ends if ends else set()

    def _match(self, s: ast.Match, preds: set[Node]) -> set[Node]:
        fail = {self._new(s, NodeKind.MATCH, preds)}
        ends: set[Node] = set()
        for case in s.cases:
            start = len(self.nodes)
            cnode = self._new(case, NodeKind.CASE, fail)
            first = len(self.nodes)
            case_ends = self._block(case.body, {cnode})
            cnode.binds_into = self.nodes[first]
            self._record(case, start, case_ends)
            ends |= case_ends
            irrefutable = (
                isinstance(case.pattern, ast.MatchAs)
                and case.pattern.pattern is None
                and case.guard is None
            )
            fail = set() if irrefutable else {cnode}
        return ends | fail


def _truthy_constant(test: ast.expr) -> bool:
    return isinstance(test, ast.Constant) and bool(test.value)


def build(fn: ast.FunctionDef | ast.AsyncFunctionDef | Sequence[ast.stmt]) -> Graph:
    """The CFG of ``fn``'s body (or of a list of statements, named ``<block>``)."""
    if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
        return _Builder(fn.name).graph(fn.body)
    return _Builder("<block>").graph(fn)
