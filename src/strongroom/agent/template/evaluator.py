"""Evaluating Go template expressions: the state of one execution (output, variables and their scopes,
the missingkey option) and Go's text/template rules for pipelines (the previous command's value as the last
argument), field access on maps, structs and nil, variables, constants and function calls with Go's argument
checking. Errors carry Go's ``template: NAME:LINE:COL: executing "NAME" at <NODE>: ...`` context.
executor.py walks the statements (if, with, range, template) on top of this.
"""

from __future__ import annotations

from typing import Any

from strongroom.agent.template.errors import TemplateError, TemplateExecError
from strongroom.agent.template.gofunc import FuncError, GoFunc
from strongroom.agent.template.nodes import (
    BoolNode,
    ChainNode,
    CommandNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    VariableNode,
)
from strongroom.agent.template.values import MISSING, GoStrings, GoStruct, JSONNumber, TypedNil, go_type, truth


class _NoFinal:
    __slots__ = ()


NO_FINAL: Any = _NoFinal()


_TYPE_NAMES = {"string": "string", "int": "int", "bool": "bool", "[]string": "[]string", "any": "interface {}",
               "[]any": "[]interface {}"}


class Evaluator:
    """One execution's state and the evaluation of expressions (a pipeline, a command, an argument)."""

    def __init__(self, name: str, text: str, funcs: dict[str, GoFunc], templates: dict[str, ListNode],
                 missingkey: str, out: list[str]) -> None:
        self.name = name
        self.text = text
        self.funcs = funcs
        self.templates = templates
        self.missingkey = missingkey
        self.out = out
        self.vars: list[list[Any]] = []
        self.node: Node | None = None
        self.depth = 0
        # Whether dot came out of a map or a []interface{} (Go's static type is then interface {}: it shows in
        # "can't evaluate field X in type interface {}"). Variables carry the same flag as their third item.
        self.dot_iface = False

    # -- errors -------------------------------------------------------------------------------------
    def at(self, node: Node) -> None:
        self.node = node

    def error(self, msg: str) -> TemplateExecError:
        node = self.node
        if node is None:
            return TemplateExecError(f"template: {self.name}: {msg}")
        before = self.text[:node.pos]
        line = before.count("\n") + 1
        col = node.pos - (before.rfind("\n") + 1) if "\n" in before else node.pos
        context = str(node)
        return TemplateExecError(
            f'template: {self.name}:{line}:{col}: executing "{self.name}" at <{context}>: {msg}', line)

    # -- variables ----------------------------------------------------------------------------------
    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value, False])

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any, iface: bool = False) -> None:
        for v in reversed(self.vars):
            if v[0] == name:
                v[1] = value
                v[2] = iface
                return
        raise self.error(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        return self.var_entry(name)[1]

    def var_entry(self, name: str) -> list[Any]:
        for entry in reversed(self.vars):
            if entry[0] == name:
                found: list[Any] = entry
                return found
        raise self.error(f"undefined variable: {name}")

    # -- evaluation ---------------------------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        self.at(pipe)
        value: Any = NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:  # a nil interface{}: Go digs into it and finds an invalid value
                value = MISSING
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.idents[0], value)
            else:
                self.push(var.idents[0], value)
        return value

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not NO_FINAL:
            raise self.error(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.at(first)
            return self.eval_field_chain(dot, dot, first, first.idents, cmd.args, final, self.dot_iface)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.error("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        raise self.error(f"can't evaluate command {first}")

    def ideal_constant(self, n: NumberNode) -> Any:
        self.at(n)
        text = n.text
        hexint = text.lower().lstrip("+-").startswith("0x") and "p" not in text.lower()
        if n.is_float and not hexint and not n.is_char and any(c in text for c in ".eEpP"):
            return n.float_value
        if n.is_int:
            if not -(2**63) <= n.int_value < 2**63:
                raise self.error(f"{text} overflows int")
            return n.int_value
        return n.float_value

    def eval_chain(self, dot: Any, chain: ChainNode, args: list[Node], final: Any) -> Any:
        self.at(chain)
        if isinstance(chain.node, NilNode):
            raise self.error(f"indirection through explicit nil in {chain}")
        assert chain.node is not None
        pipe = self.eval_arg(dot, "value", chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.fields, args, final)

    def eval_variable(self, dot: Any, var: VariableNode, args: list[Node], final: Any) -> Any:
        self.at(var)
        _, value, iface = self.var_entry(var.idents[0])
        if len(var.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.idents[1:], args, final, iface)

    def eval_field_chain(self, dot: Any, receiver: Any, node: Node, idents: list[str], args: list[Node],
                         final: Any, iface: bool = False) -> Any:
        for ident in idents[:-1]:
            from_map = isinstance(receiver, dict)
            receiver = self.eval_field(ident, [], NO_FINAL, receiver, iface)
            iface = from_map
        return self.eval_field(idents[-1], args, final, receiver, iface)

    def eval_field(self, name: str, args: list[Node], final: Any, receiver: Any, iface: bool = False) -> Any:
        if receiver is MISSING:
            if self.missingkey == "error":
                raise self.error(f'nil data; no entry for key "{name}"')
            return MISSING
        if receiver is None:
            raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        has_args = len(args) > 1 or final is not NO_FINAL
        if isinstance(receiver, dict):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if self.missingkey == "error":
                raise self.error(f'map has no entry for key "{name}"')
            if self.missingkey == "zero":
                return None
            return MISSING
        if isinstance(receiver, TypedNil):
            raise self.error(f"nil pointer evaluating {receiver.go_type}.{name}")
        if isinstance(receiver, GoStruct):
            fields = type(receiver).__dataclass_fields__
            if name in fields:
                if has_args:
                    raise self.error(f"{name} has arguments but cannot be invoked as function")
                v = getattr(receiver, name)
                if v is None:
                    t = str(fields[name].type)
                    if "dict" in t:
                        return {}
                    if "GoStrings" in t:
                        return GoStrings()
                    return TypedNil("*dependency." + t.split("|")[0].strip())
                return v
        if isinstance(receiver, JSONNumber) and name in ("String", "Int64", "Float64"):
            if len(args) > 1 or final is not NO_FINAL:
                raise self.error(f"wrong number of args for {name}: want 0 got {len(args) - 1}")
            return self._json_number_method(receiver, name)
        raise self.error(f"can't evaluate field {name} in type {'interface {}' if iface else go_type(receiver)}")

    def _json_number_method(self, n: JSONNumber, name: str) -> Any:
        if name == "String":
            return str(n)
        try:
            if name == "Int64":
                return int(n)
            return float(n)
        except ValueError:
            kind = "ParseInt" if name == "Int64" else "ParseFloat"
            raise self.error(f'error calling {name}: strconv.{kind}: parsing "{n}": invalid syntax') from None

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Node, args: list[Node], final: Any) -> Any:
        self.at(node)
        fn = self.funcs.get(node.name)
        if fn is None:
            raise self.error(f'"{node.name}" is not a defined function')
        return self.eval_call(dot, fn, cmd, node.name, args, final)

    def eval_call(self, dot: Any, fn: GoFunc, node: Node, name: str, args: list[Node], final: Any) -> Any:
        args = args[1:]
        num_in = len(args) + (0 if final is NO_FINAL else 1)
        num_fixed = len(args)
        if fn.variadic is not None:
            num_fixed = len(fn.params)
            if num_in < num_fixed:
                raise self.error(f"wrong number of args for {name}: want at least {len(fn.params)} got {len(args)}")
        elif num_in != len(fn.params):
            raise self.error(f"wrong number of args for {name}: want {len(fn.params)} got {num_in}")
        if fn.short_circuit:
            v: Any = MISSING
            want = name == "or"
            for a in args:
                v = self.eval_arg(dot, "value", a)
                if truth(v) == want:
                    return v
            if final is not NO_FINAL:
                v = final
            return v
        argv: list[Any] = []
        i = 0
        while i < num_fixed and i < len(args):
            argv.append(self.eval_arg(dot, fn.params[i], args[i]))
            i += 1
        if fn.variadic is not None:
            while i < len(args):
                argv.append(self.eval_arg(dot, fn.variadic, args[i]))
                i += 1
        if final is not NO_FINAL:
            if fn.variadic is not None and num_in - 1 >= num_fixed:
                t = fn.variadic
            else:
                t = fn.params[num_in - 1]
            argv.append(self.validate_type(final, t))
        try:
            result = fn.fn(*argv)
        except FuncError as e:
            self.at(node)
            raise self.error(f"error calling {name}: {e}") from None
        except TemplateError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as e:
            self.at(node)
            raise self.error(f"error calling {name}: {e}") from None
        return result

    def validate_type(self, value: Any, typ: str) -> Any:
        if typ == "value":
            return value
        if value is MISSING:
            if typ == "any":
                return None
            if typ == "[]string":
                return GoStrings()
            if typ == "[]any":
                return []
            raise self.error(f"invalid value; expected {_TYPE_NAMES[typ]}")
        if typ == "any":
            return value
        ok = False
        if typ == "string":
            ok = isinstance(value, str) and not isinstance(value, JSONNumber)
        elif typ == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif typ == "bool":
            ok = isinstance(value, bool)
        elif typ == "[]string":
            ok = isinstance(value, GoStrings)
        elif typ == "[]any":
            ok = isinstance(value, list) and not isinstance(value, GoStrings)
        if not ok:
            got = "interface {}" if value is None else go_type(value)
            raise self.error(f"wrong type for value; expected {_TYPE_NAMES[typ]}; got {got}")
        return value

    def eval_arg(self, dot: Any, typ: str, n: Node) -> Any:
        self.at(n)
        if isinstance(n, DotNode):
            return self.validate_type(dot, typ)
        if isinstance(n, NilNode):
            if typ in ("any", "value", "[]string"):
                return None if typ != "[]string" else GoStrings()
            raise self.error(f"cannot assign nil to {_TYPE_NAMES.get(typ, typ)}")
        if isinstance(n, FieldNode):
            return self.validate_type(self.eval_field_chain(dot, dot, n, n.idents, [n], NO_FINAL, self.dot_iface),
                                      typ)
        if isinstance(n, VariableNode):
            return self.validate_type(self.eval_variable(dot, n, [], NO_FINAL), typ)
        if isinstance(n, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), typ)
        if isinstance(n, IdentifierNode):
            fn = self.funcs.get(n.name)
            if fn is None:
                raise self.error(f'"{n.name}" is not a defined function')
            return self.validate_type(self.eval_call(dot, fn, n, n.name, [n], NO_FINAL), typ)
        if isinstance(n, ChainNode):
            return self.validate_type(self.eval_chain(dot, n, [], NO_FINAL), typ)
        if typ == "bool":
            if isinstance(n, BoolNode):
                return n.value
            raise self.error(f"expected bool; found {n}")
        if typ == "int":
            if isinstance(n, NumberNode) and n.is_int:
                return n.int_value
            raise self.error(f"expected integer; found {n}")
        if typ == "string":
            if isinstance(n, StringNode):
                return n.text
            raise self.error(f"expected string; found {n}")
        if typ in ("any", "value"):
            if isinstance(n, BoolNode):
                return n.value
            if isinstance(n, NumberNode):
                return self.ideal_constant(n)
            if isinstance(n, StringNode):
                return n.text
        raise self.error(f"can't handle {n} for arg of type {_TYPE_NAMES.get(typ, typ)}")
