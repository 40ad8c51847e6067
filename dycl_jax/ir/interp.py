"""A block interpreter for the program IR.

``Interpreter(program, namespace).run(scope)`` executes the host control flow of ``program``
statement by statement over ``scope`` (a dict of the function's locals, parameters bound):
simple statements and tests are compiled once from the IR's text, region calls look their
runner up in ``namespace`` by name, and ``If``/``While``/``For``/``Try``/``With``/``Return``/
``Break``/``Continue`` are interpreted structurally. It computes exactly what the compiled host
function computes (a test checks this on every zoo model); it exists because a structured
interpreter can stop at any statement and continue from there with a different scope — what
running the host program for a *group* of inputs needs when a branch splits the group.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Callable
from typing import Any

from dycl_jax.ir.code import to_ast
from dycl_jax.ir.program import (
    Block,
    Break,
    CallRegion,
    Code,
    Continue,
    For,
    If,
    Program,
    Return,
    Simple,
    Stmt,
    Try,
    While,
    With,
)

# Control signals a block passes outward.
_BREAK = ("break", None)
_CONTINUE = ("continue", None)
Signal = tuple[str, Any] | None


class Interpreter:
    """Runs one program's host control flow over a dict scope."""

    def __init__(self, program: Program, namespace: dict[str, Any]) -> None:
        self.program = program
        self.namespace = namespace
        self._code: dict[Code, Any] = {}
        self._expr: dict[str, Any] = {}
        self._assign: dict[str, Any] = {}

    # ---- compiled pieces (cached) -----------------------------------------------------------

    def _exec_code(self, code: Code) -> Any:
        c = self._code.get(code)
        if c is None:
            module = ast.Module(to_ast(code), [])
            c = self._code[code] = compile(module, self.program.filename, "exec")
        return c

    def _eval(self, text: str, scope: dict[str, Any]) -> Any:
        c = self._expr.get(text)
        if c is None:
            c = self._expr[text] = compile(text, self.program.filename, "eval")
        return eval(c, scope)

    def _bind(self, target: str, value: Any, scope: dict[str, Any]) -> None:
        c = self._assign.get(target)
        if c is None:
            c = self._assign[target] = compile(
                f"{target} = _dycl_value_", self.program.filename, "exec"
            )
        scope["_dycl_value_"] = value
        exec(c, scope)
        del scope["_dycl_value_"]

    # ---- running -----------------------------------------------------------------------------

    def new_scope(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """A scope for one call: the program's namespace, its UNDEFINED presets, ``arguments``."""
        scope = dict(self.namespace)
        if self.program.undefined:
            undefined = self.namespace["_dy"].UNDEFINED
            scope.update(dict.fromkeys(self.program.undefined, undefined))
        scope.update(arguments)
        return scope

    def run(self, scope: dict[str, Any]) -> Any:
        """Run the whole body; the returned value (None when the body falls off its end)."""
        signal = self.block(self.program.body, scope)
        if signal is not None and signal[0] == "return":
            return signal[1]
        return None

    def block(self, block: Block, scope: dict[str, Any]) -> Signal:
        for s in block:
            signal = self.stmt(s, scope)
            if signal is not None:
                return signal
        return None

    def stmt(self, s: Stmt, scope: dict[str, Any]) -> Signal:
        return _HANDLERS[type(s)](self, s, scope)

    def _simple(self, s: Simple, scope: dict[str, Any]) -> Signal:
        exec(self._exec_code(s.code), scope)
        return None

    def _call(self, s: CallRegion, scope: dict[str, Any]) -> Signal:
        outs = self.namespace[s.region](*(scope[a] for a in s.args))
        for name, value in zip(s.outs, outs, strict=True):
            scope[name] = value
        return None

    def _return(self, s: Return, scope: dict[str, Any]) -> Signal:
        return ("return", None if s.value is None else self._eval(s.value, scope))

    def _break(self, s: Break, scope: dict[str, Any]) -> Signal:
        return _BREAK

    def _continue(self, s: Continue, scope: dict[str, Any]) -> Signal:
        return _CONTINUE

    def _if(self, s: If, scope: dict[str, Any]) -> Signal:
        return self.block(s.body if self._eval(s.test, scope) else s.orelse, scope)

    def _loop_body(self, body: Block, scope: dict[str, Any]) -> tuple[bool, Signal]:
        """(stop the loop, signal to pass out)."""
        signal = self.block(body, scope)
        if signal is None or signal is _CONTINUE:
            return False, None
        if signal is _BREAK:
            return True, None
        return True, signal

    def _while(self, s: While, scope: dict[str, Any]) -> Signal:
        while self._eval(s.test, scope):
            stop, signal = self._loop_body(s.body, scope)
            if stop:
                return signal
        return self.block(s.orelse, scope)

    def _for(self, s: For, scope: dict[str, Any]) -> Signal:
        for value in self._eval(s.iter, scope):
            self._bind(s.target, value, scope)
            stop, signal = self._loop_body(s.body, scope)
            if stop:
                return signal
        return self.block(s.orelse, scope)

    def _with(self, s: With, scope: dict[str, Any]) -> Signal:
        head = ast.parse(f"with {s.items}:\n    pass").body[0]
        assert isinstance(head, ast.With)
        with contextlib.ExitStack() as stack:
            for item in head.items:
                value = stack.enter_context(self._eval(ast.unparse(item.context_expr), scope))
                if item.optional_vars is not None:
                    self._bind(ast.unparse(item.optional_vars), value, scope)
            return self.block(s.body, scope)

    def _try(self, s: Try, scope: dict[str, Any]) -> Signal:
        try:
            signal = self.block(s.body, scope)
        except Exception as e:
            for h in s.handlers:
                if h.type is None or isinstance(e, self._eval(h.type, scope)):
                    if h.name:
                        scope[h.name] = e
                    try:
                        return self.block(h.body, scope)
                    finally:
                        if h.name:
                            scope.pop(h.name, None)
            raise
        else:
            if signal is None:
                signal = self.block(s.orelse, scope)
            return signal
        finally:
            final = self.block(s.finalbody, scope)
            if final is not None:
                return final  # noqa: B012 - a signal from `finally` wins, as in Python


_HANDLERS: dict[type, Callable[[Interpreter, Any, dict[str, Any]], Signal]] = {
    Simple: Interpreter._simple,
    CallRegion: Interpreter._call,
    Return: Interpreter._return,
    Break: Interpreter._break,
    Continue: Interpreter._continue,
    If: Interpreter._if,
    While: Interpreter._while,
    For: Interpreter._for,
    With: Interpreter._with,
    Try: Interpreter._try,
}
