"""Executing a parsed Go template: Go's text/template statements over the values of values.py.

Text and actions (printed as Go prints them), ``if``/``with`` by Go's truth, ``range`` over lists, maps (in
sorted key order) and integers with ``break``/``continue``, and ``template`` calls. Expressions (pipelines,
fields, variables, function calls) and the execution state are evaluator.py's.
"""

from __future__ import annotations

from typing import Any

from strongroom.agent.template.evaluator import Evaluator
from strongroom.agent.template.gofmt import fmt_value
from strongroom.agent.template.gofunc import GoFunc
from strongroom.agent.template.nodes import (
    ActionNode,
    BranchNode,
    BreakNode,
    ContinueNode,
    ListNode,
    Node,
    TemplateNode,
    TextNode,
)
from strongroom.agent.template.values import MISSING, GoStrings, GoStruct, TypedNil, truth


MAX_DEPTH = 200  # nested {{template}} calls; Go allows 100000, Python's stack far fewer


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class State(Evaluator):
    """Executes statements (the nodes of a template's tree), evaluating their pipelines."""

    # -- walking ------------------------------------------------------------------------------------
    def walk(self, dot: Any, node: Node) -> None:
        self.at(node)
        if isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, ActionNode):
            assert node.pipe is not None
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, val)
        elif isinstance(node, BranchNode):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break()
        elif isinstance(node, ContinueNode):
            raise _Continue()
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        else:
            raise self.error(f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: BranchNode) -> None:
        mark = len(self.vars)
        try:
            assert node.pipe is not None and node.list is not None
            val = self.eval_pipeline(dot, node.pipe)
            if truth(val):
                if node.kind == "with":
                    saved, self.dot_iface = self.dot_iface, False
                    try:
                        self.walk(val, node.list)
                    finally:
                        self.dot_iface = saved
                else:
                    self.walk(dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: BranchNode) -> None:
        self.at(node)
        outer = len(self.vars)
        assert node.pipe is not None and node.list is not None
        pipe = node.pipe
        body = node.list
        try:
            val = self.eval_pipeline(dot, pipe)
            mark = len(self.vars)

            iface = isinstance(val, dict) or (isinstance(val, list) and not isinstance(val, GoStrings))

            def one(index: Any, elem: Any) -> None:
                if pipe.decl:
                    if pipe.is_assign:
                        if len(pipe.decl) > 1:
                            self.set_var(pipe.decl[0].idents[0], index)
                        else:
                            self.set_var(pipe.decl[0].idents[0], elem, iface)
                    else:
                        self.vars[-1][1:] = [elem, iface]
                if len(pipe.decl) > 1:
                    if pipe.is_assign:
                        self.set_var(pipe.decl[1].idents[0], elem, iface)
                    else:
                        self.vars[-2][1:] = [index, False]
                saved = self.dot_iface
                self.dot_iface = iface
                try:
                    self.walk(elem, body)
                except _Continue:
                    pass
                finally:
                    self.dot_iface = saved
                    self.pop(mark)

            try:
                if isinstance(val, list):
                    if val:
                        for i, e in enumerate(val):
                            one(i, e)
                        return
                elif isinstance(val, dict):
                    if val:
                        for k in sorted(val, key=_map_key):
                            one(k, val[k])
                        return
                elif isinstance(val, int) and not isinstance(val, bool):
                    if len(pipe.decl) > 1:
                        raise self.error("can't use int to iterate over more than one variable")
                    if val > 0:
                        for i in range(val):
                            one(i, i)
                        return
                elif val is MISSING or val is None or isinstance(val, TypedNil):
                    pass
                else:
                    raise self.error(f"range can't iterate over {fmt_value(val)}")
            except _Break:
                return
            if node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            self.pop(outer)

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        self.at(node)
        tmpl = self.templates.get(node.name)
        if tmpl is None:
            raise self.error(f'template "{node.name}" not defined')
        if self.depth >= MAX_DEPTH:
            raise self.error("exceeded maximum template depth (100000)")
        new_dot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else MISSING
        saved_vars, saved_iface = self.vars, self.dot_iface
        self.vars = [["$", new_dot, False]]
        self.dot_iface = False
        self.depth += 1
        try:
            self.walk(new_dot, tmpl)
        finally:
            self.depth -= 1
            self.vars, self.dot_iface = saved_vars, saved_iface

    def print_value(self, node: Node, val: Any) -> None:
        self.at(node)
        if val is MISSING or val is None:
            self.out.append("<no value>")
        elif isinstance(val, GoStruct) and val.pointer:
            self.out.append(fmt_value(val, "v", 1))  # a pointer is printed as what it points to
        elif isinstance(val, str):
            self.out.append(val)
        else:
            self.out.append(fmt_value(val))


def _map_key(k: Any) -> Any:
    if isinstance(k, (int, float)) and not isinstance(k, bool):
        return (0, k, "")
    return (1, 0, str(k))


def execute(name: str, text: str, root: ListNode, templates: dict[str, ListNode], funcs: dict[str, GoFunc],
            data: Any = MISSING, missingkey: str = "zero") -> str:
    """Runs a parsed template; returns the output or raises TemplateExecError (or a function's error)."""
    out: list[str] = []
    state = State(name, text, funcs, templates, missingkey, out)
    state.vars.append(["$", data, False])
    try:
        state.walk(data, root)
    except RecursionError:
        raise state.error("exceeded maximum template depth") from None
    return "".join(out)
