"""The parser of Go's text/template: items from the lexer into a tree of nodes (nodes.py).

Follows Go's grammar: actions with pipelines and variable declarations/assignments, ``if``/``else if``,
``with``/``else with``, ``range`` (with ``$i, $v :=``, ``else``, ``break``, ``continue``), ``define``,
``template`` and ``block``. A function must be known when the template is parsed, as in Go. Quoted literals
are read by literals.py.
"""

from __future__ import annotations

from collections.abc import Container

from strongroom.agent.template.errors import TemplateSyntaxError
from strongroom.agent.template.lexer import Item, Lexer, T
from strongroom.agent.template.literals import unquote
from strongroom.agent.template.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
)

_OPERAND_START = {T.BOOL, T.CHAR_CONSTANT, T.DOT, T.FIELD, T.IDENTIFIER, T.NUMBER, T.NIL, T.RAW_STRING,
                  T.STRING, T.VARIABLE, T.LEFT_PAREN}


class _End(Node):
    __slots__ = ("kind",)

    def __init__(self, pos: int, line: int, kind: str) -> None:
        super().__init__(pos, line)
        self.kind = kind  # "end", "else", "else if", "else with"


class Parser:
    def __init__(self, name: str, text: str, funcs: Container[str], left: str = "{{", right: str = "}}") -> None:
        self.name = name
        self.text = text
        self.funcs = funcs
        self.items = Lexer(name, text, left, right).lex()
        self.i = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.templates: dict[str, ListNode] = {}

    # -- token helpers -------------------------------------------------------------------------------
    def _error(self, msg: str, line: int | None = None) -> TemplateSyntaxError:
        if line is None:
            line = self.items[max(self.i - 1, 0)].line
        return TemplateSyntaxError(f"template: {self.name}:{line}: {msg}", line)

    def next(self) -> Item:
        it = self.items[self.i]
        if self.i < len(self.items) - 1:
            self.i += 1
        return it

    def backup(self) -> None:
        self.i -= 1

    def peek(self) -> Item:
        return self.items[self.i]

    def next_non_space(self) -> Item:
        it = self.next()
        while it.typ is T.SPACE:
            it = self.next()
        return it

    def peek_non_space(self) -> Item:
        j = self.i
        while self.items[j].typ is T.SPACE:
            j += 1
        return self.items[j]

    def expect(self, typ: T, context: str) -> Item:
        it = self.next_non_space()
        if it.typ is not typ:
            self._unexpected(it, context)
        return it

    def _unexpected(self, it: Item, context: str) -> None:
        if it.typ is T.ERROR:
            raise self._error(it.val, it.line)
        raise self._error(f"unexpected {it} in {context}", it.line)

    # -- grammar ------------------------------------------------------------------------------------
    def parse(self) -> ListNode:
        root = ListNode(0, 1)
        while self.peek().typ is not T.EOF:
            if self.peek().typ is T.LEFT_DELIM:
                save = self.i
                self.next()
                if self.next_non_space().typ is T.DEFINE:
                    self._parse_definition()
                    continue
                self.i = save
            n = self._text_or_action()
            if isinstance(n, _End):
                raise self._error(f"unexpected {{{{{n.kind}}}}}", n.line)
            if n is not None:
                root.nodes.append(n)
        return root

    def _parse_definition(self) -> None:
        name_item = self.next_non_space()
        if name_item.typ not in (T.STRING, T.RAW_STRING):
            self._unexpected(name_item, "define clause")
        name = unquote(name_item.val)
        self.expect(T.RIGHT_DELIM, "define clause")
        saved_vars = self.vars
        self.vars = ["$"]
        body, end = self._item_list()
        self.vars = saved_vars
        if end.kind != "end":
            raise self._error("unexpected {{else}} in define clause", end.line)
        self.templates[name] = body

    def _item_list(self) -> tuple[ListNode, _End]:
        lst = ListNode(self.peek_non_space().pos, self.peek_non_space().line)
        while self.peek_non_space().typ is not T.EOF:
            n = self._text_or_action()
            if isinstance(n, _End):
                return lst, n
            if n is not None:
                lst.nodes.append(n)
        raise self._error("unexpected EOF", self.peek_non_space().line)

    def _text_or_action(self) -> Node | None:
        it = self.next_non_space()
        if it.typ is T.TEXT:
            return TextNode(it.pos, it.line, it.val)
        if it.typ is T.LEFT_DELIM:
            return self._action()
        if it.typ is T.COMMENT:
            return None
        self._unexpected(it, "input")
        return None

    def _action(self) -> Node:
        it = self.next_non_space()
        typ = it.typ
        if typ is T.BLOCK:
            return self._block_control(it)
        if typ is T.BREAK:
            return self._break_control(it, "break")
        if typ is T.CONTINUE:
            return self._break_control(it, "continue")
        if typ is T.ELSE:
            return self._else_control(it)
        if typ is T.END:
            self.expect(T.RIGHT_DELIM, "end")
            return _End(it.pos, it.line, "end")
        if typ in (T.IF, T.WITH, T.RANGE):
            return self._control(it)
        if typ is T.TEMPLATE:
            return self._template_control(it)
        self.backup()
        tok = self.peek()
        pipe = self._pipeline("command", T.RIGHT_DELIM)
        return ActionNode(tok.pos, tok.line, pipe)

    def _break_control(self, it: Item, name: str) -> Node:
        tok = self.next_non_space()
        if tok.typ is not T.RIGHT_DELIM:
            self._unexpected(tok, f"{{{{{name}}}}}")
        if self.range_depth == 0:
            raise self._error(f"{{{{{name}}}}} outside {{{{range}}}}", it.line)
        return BreakNode(it.pos, it.line) if name == "break" else ContinueNode(it.pos, it.line)

    def _else_control(self, it: Item) -> Node:
        peek = self.peek_non_space()
        if peek.typ is T.IF:
            return _End(it.pos, it.line, "else if")
        if peek.typ is T.WITH:
            return _End(it.pos, it.line, "else with")
        tok = self.next_non_space()
        if tok.typ is not T.RIGHT_DELIM:
            self._unexpected(tok, "else")
        return _End(it.pos, it.line, "else")

    def _control(self, it: Item) -> BranchNode:
        kind = it.val
        saved = len(self.vars)
        try:
            if kind == "range":
                self.range_depth += 1
            pipe = self._pipeline(kind, T.RIGHT_DELIM)
            body, end = self._item_list()
            if kind == "range":
                self.range_depth -= 1
            else_list: ListNode | None = None
            if end.kind in ("else if", "else with"):
                want = end.kind.split()[1]
                if want != kind:
                    raise self._error(f"unexpected {{{{{end.kind}}}}} in {kind}", end.line)
                # {{else if x}} ... {{end}} is {{else}}{{if x}} ... {{end}}{{end}}: the inner one takes the end.
                inner_item = self.next_non_space()
                else_list = ListNode(end.pos, end.line, [self._control(inner_item)])
            elif end.kind == "else":
                else_list, end2 = self._item_list()
                if end2.kind != "end":
                    raise self._error("expected end; found {{else}}", end2.line)
            return BranchNode(it.pos, it.line, kind, pipe, body, else_list)
        finally:
            del self.vars[saved:]

    def _template_control(self, it: Item) -> TemplateNode:
        tok = self.next_non_space()
        if tok.typ not in (T.STRING, T.RAW_STRING):
            self._unexpected(tok, "template clause")
        name = unquote(tok.val)
        pipe: PipeNode | None = None
        if self.next_non_space().typ is not T.RIGHT_DELIM:
            self.backup()
            pipe = self._pipeline("template clause", T.RIGHT_DELIM)
        return TemplateNode(it.pos, it.line, name, pipe)

    def _block_control(self, it: Item) -> TemplateNode:
        tok = self.next_non_space()
        if tok.typ not in (T.STRING, T.RAW_STRING):
            self._unexpected(tok, "block clause")
        name = unquote(tok.val)
        pipe = self._pipeline("block clause", T.RIGHT_DELIM)
        saved_vars = self.vars
        self.vars = ["$"]
        body, end = self._item_list()
        self.vars = saved_vars
        if end.kind != "end":
            raise self._error("unexpected {{else}} in block clause", end.line)
        self.templates[name] = body
        return TemplateNode(it.pos, it.line, name, pipe)

    def _pipeline(self, context: str, end: T) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos, tok.line)
        # declarations / assignments
        if tok.typ is T.VARIABLE:
            save = self.i
            v = self.next_non_space()
            nxt = self.next_non_space()
            if nxt.typ in (T.DECLARE, T.ASSIGN):
                pipe.is_assign = nxt.typ is T.ASSIGN
                pipe.decl.append(self._new_variable(v, declare=not pipe.is_assign))
            elif nxt.typ is T.CHAR and nxt.val == ",":
                if context != "range":
                    raise self._error(f"too many declarations in {context}", nxt.line)
                v2 = self.next_non_space()
                if v2.typ is not T.VARIABLE:
                    raise self._error(f"missing variable in {context}", v2.line)
                op = self.next_non_space()
                if op.typ not in (T.DECLARE, T.ASSIGN):
                    raise self._error(f"missing := in {context}", op.line)
                pipe.is_assign = op.typ is T.ASSIGN
                pipe.decl.append(self._new_variable(v, declare=not pipe.is_assign))
                pipe.decl.append(self._new_variable(v2, declare=not pipe.is_assign))
            else:
                self.i = save
        while True:
            tok = self.next_non_space()
            if tok.typ is end:
                if not pipe.cmds:
                    raise self._error(f"missing value for {context}", tok.line)
                for i, c in enumerate(pipe.cmds[1:], start=1):
                    first = c.args[0]
                    if isinstance(first, (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                        raise self._error(f"non executable command in pipeline stage {i + 1}", c.line)
                return pipe
            if tok.typ in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self._command())
            else:
                self._unexpected(tok, context)

    def _new_variable(self, it: Item, declare: bool) -> VariableNode:
        if declare:
            self.vars.append(it.val)
        elif it.val not in self.vars:
            raise self._error(f"undefined variable {it.val!r}".replace("'", '"'), it.line)
        return VariableNode(it.pos, it.line, [it.val])

    def _command(self) -> CommandNode:
        tok = self.peek_non_space()
        cmd = CommandNode(tok.pos, tok.line)
        while True:
            self.peek_non_space()
            op = self._operand()
            if op is not None:
                cmd.args.append(op)
            tok = self.next()
            if tok.typ is T.SPACE:
                continue
            if tok.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif tok.typ is not T.PIPE:
                self._unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self._error("empty command", cmd.line)
        return cmd

    def _operand(self) -> Node | None:
        node = self._term()
        if node is None:
            return None
        if self.peek().typ is T.FIELD:
            # Go positions the whole chain at its first trailing field
            first = self.peek()
            fields: list[str] = []
            while self.peek().typ is T.FIELD:
                fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(first.pos, first.line, node.idents + fields)
            if isinstance(node, VariableNode):
                return VariableNode(first.pos, first.line, node.idents + fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                raise self._error(f"unexpected . after term {str(node)!r}".replace("'", '"'), node.line)
            return ChainNode(first.pos, first.line, node, fields)
        return node

    def _term(self) -> Node | None:
        tok = self.next_non_space()
        typ = tok.typ
        if typ is T.IDENTIFIER:
            if tok.val not in self.funcs:
                raise self._error(f'function "{tok.val}" not defined', tok.line)
            return IdentifierNode(tok.pos, tok.line, tok.val)
        if typ is T.DOT:
            return DotNode(tok.pos, tok.line)
        if typ is T.NIL:
            return NilNode(tok.pos, tok.line)
        if typ is T.VARIABLE:
            name = tok.val.split(".")[0]
            if name not in self.vars:
                raise self._error(f'undefined variable "{name}"', tok.line)
            return VariableNode(tok.pos, tok.line, tok.val.split("."))
        if typ is T.FIELD:
            return FieldNode(tok.pos, tok.line, [tok.val[1:]])
        if typ is T.BOOL:
            return BoolNode(tok.pos, tok.line, tok.val == "true")
        if typ in (T.NUMBER, T.CHAR_CONSTANT):
            return self._number(tok)
        if typ is T.LEFT_PAREN:
            pipe = self._pipeline("parenthesized pipeline", T.RIGHT_PAREN)
            return pipe
        if typ in (T.STRING, T.RAW_STRING):
            try:
                return StringNode(tok.pos, tok.line, tok.val, unquote(tok.val))
            except ValueError as e:
                raise self._error(str(e), tok.line) from None
        self.backup()
        return None

    def _number(self, tok: Item) -> NumberNode:
        n = NumberNode(tok.pos, tok.line, tok.val)
        text = tok.val
        if tok.typ is T.CHAR_CONSTANT:
            try:
                ch = unquote(text)
            except ValueError as e:
                raise self._error(str(e), tok.line) from None
            if len(ch) != 1:
                raise self._error(f"malformed character constant: {text}", tok.line)
            n.is_int = n.is_float = n.is_char = True
            n.int_value = ord(ch)
            n.float_value = float(n.int_value)
            return n
        if text.endswith("i"):
            raise self._error(f"complex numbers are not supported: {text}", tok.line)
        clean = text.replace("_", "")
        digits = clean.lstrip("+-")
        if len(digits) > 1 and digits[0] == "0" and digits.isdigit():  # Go's 017 is octal
            clean = clean[:len(clean) - len(digits)] + "0o" + digits[1:]
        try:
            n.int_value = int(clean, 0)
            n.is_int = True
            n.float_value = float(n.int_value)
            n.is_float = True
            return n
        except ValueError:
            pass
        try:
            f = float.fromhex(clean) if clean.lower().lstrip("+-").startswith("0x") else float(clean)
        except ValueError:
            raise self._error(f"illegal number syntax: {text!r}".replace("'", '"'), tok.line) from None
        n.is_float = True
        n.float_value = f
        if f == int(f) and abs(f) < 2**63:
            n.is_int = True
            n.int_value = int(f)
        return n
