"""Writing Python source: spec expressions as Python, literals, identifiers and line wrapping.

Shared by exporters that write Python (PyTorch today). `translate` turns a raw spec value
(`$planes * 4`, `[1, $k]`, `true`) into Python source, asking a resolver what each name
is (a parameter, a loop variable, a module constant); `Group` is a call or a list that
`wrap` breaks over lines, one argument a line, when it does not fit.

Imports `spec` only.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from convcalc.spec.expressions import is_expression, template_parts

LINE_LIMIT = 88  # ruff's and black's default

Resolve = Callable[[str], str]
# The functions of spec expressions (spec.expressions): Python's own, math's, and
# make_divisible, which an exported file defines (HELPERS).
PASSED = frozenset(("min", "max", "round", "int", "abs", "ceil", "floor", "make_divisible"))
HELPERS = frozenset(("make_divisible",))


class Untranslatable(ValueError):
    """A spec value with no Python counterpart (read by the exporter as its error)."""


def literal(value: Any) -> str:
    """A plain value as Python source: strings in double quotes, tuples and lists as written."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if hasattr(value, "text"):  # convcalc.layers.Code
        return str(value.text)
    raise Untranslatable(f"cannot write {value!r} as Python")


class _Names(ast.NodeTransformer):
    def __init__(self, resolve: Resolve, uses: set[str]) -> None:
        self.resolve = resolve
        self.uses = uses

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in ("true", "True"):
            return ast.Constant(True)
        if node.id in ("false", "False"):
            return ast.Constant(False)
        if node.id in PASSED:
            if node.id in HELPERS:
                self.uses.add(node.id)
            return node
        return ast.parse(self.resolve(node.id), mode="eval").body

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in ("ceil", "floor"):
            self.uses.add("math")
            node.func = ast.Attribute(ast.Name("math", ast.Load()), node.func.id, ast.Load())
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Div):  # convcalc's `/`: an int when it divides exactly
            self.uses.add("exact_div")
            return ast.Call(ast.Name("exact_div", ast.Load()), [node.left, node.right], [])
        return node


def expression(text: str, resolve: Resolve, uses: set[str] | None = None) -> str:
    """One `$...` expression as Python, names replaced by what `resolve` says they are."""
    flag = uses if uses is not None else set()
    try:
        tree = ast.parse(text.replace("$", "").strip(), mode="eval")
    except SyntaxError:
        raise Untranslatable(f"cannot read the expression {text!r}") from None
    return ast.unparse(_Names(resolve, flag).visit(tree).body)


def translate(raw: Any, resolve: Resolve, uses: set[str] | None = None) -> str:
    """A raw spec value (an expression, a list, a literal) as Python source."""
    if isinstance(raw, str) and is_expression(raw):
        return expression(raw, resolve, uses)
    if isinstance(raw, list):
        return "[" + ", ".join(translate(v, resolve, uses) for v in raw) + "]"
    return literal(raw)


def name_source(raw: Any, resolve: Resolve, uses: set[str] | None = None) -> str:
    """A layer's `name` as a Python string expression: "conv1", f"denselayer{i + 1}", str(...)."""
    if not (isinstance(raw, str) and is_expression(raw)):
        return literal(str(raw))
    if raw.lstrip().startswith("$"):
        return f"str({expression(raw, resolve, uses)})"
    pieces = []
    for is_expr, piece in template_parts(raw):
        pieces.append("{" + expression(piece, resolve, uses) + "}" if is_expr
                      else piece.replace("{", "{{").replace("}", "}}"))
    return 'f"' + "".join(pieces) + '"'


def substitute(code: str, values: dict[str, str]) -> str:
    """`code` with the names in `values` replaced by those expressions (parenthesised as needed)."""

    class Swap(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in values:
                return ast.parse(values[node.id], mode="eval").body
            return node

    return ast.unparse(Swap().visit(ast.parse(code, mode="eval")).body)


def names_in(code: str) -> set[str]:
    """The plain names a Python expression reads (`block.out_channels` reads `block`)."""
    return {n.id for n in ast.walk(ast.parse(code, mode="eval")) if isinstance(n, ast.Name)}


PY_RESERVED = frozenset(("self", "in_channels", "nn", "torch", "F", "Tensor", "Fork", "Add", "Concat",
                         "super", "range", "min", "max", "str", "dict", "int", "float", "list", "print",
                         "exact_div", "math", "round", "abs", "make_divisible", "Any", "Mapping", "Sequence",
                         "Network", "True", "False", "None", "Mul", "Narrow", "Tensor"))


def identifier(name: str, taken: set[str]) -> str:
    """`name` as a Python identifier in lower case (PEP 8's for arguments and variables)
    not in `taken` (a keyword or a taken name gets `_`)."""
    out = name.lower() if name.isidentifier() else "v_" + re.sub(r"\W", "_", name.lower())
    while keyword.iskeyword(out) or out in PY_RESERVED or out in taken:
        out += "_"
    return out


def class_name(name: str, taken: set[str]) -> str:
    """`conv_bn_relu6` -> `ConvBnRelu6`, unique among `taken`."""
    out = "".join(part[:1].upper() + part[1:] for part in re.split(r"_+", name) if part) or "Block"
    if out[0].isdigit():
        out = "Block" + out
    while out in taken or out in PY_RESERVED:
        out += "Block"
    return out


def constant_name(name: str, taken: set[str]) -> str:
    out = re.sub(r"\W", "_", name).upper()
    if not out.isidentifier():
        out = "V_" + out
    while out in taken or keyword.iskeyword(out):
        out += "_"
    return out


@dataclass
class Group:
    """A call (`nn.Conv2d(...)`) or a list, whose items `wrap` may put one a line."""

    opener: str  # "nn.Conv2d(" or "["
    items: list[Any]  # str or Group, each already source ("kernel_size=3" for keywords)
    closer: str  # ")" or "]"

    def flat(self) -> str:
        return self.opener + ", ".join(flat(i) for i in self.items) + self.closer


def flat(expr: Any) -> str:
    return expr.flat() if isinstance(expr, Group) else str(expr)


def call(func: str, *args: Any, **kwargs: Any) -> Group:
    items = list(args) + [keyword_item(k, v) for k, v in kwargs.items()]
    return Group(func + "(", items, ")")


def keyword_item(key: str, value: Any) -> Any:
    if isinstance(value, Group):
        return Group(f"{key}={value.opener}", value.items, value.closer)
    return f"{key}={value}"


def wrap(expr: Any, indent: str, prefix: str = "", suffix: str = "") -> list[str]:
    """`prefix + expr + suffix` on one line if it fits, else the group's items one a line."""
    one = indent + prefix + flat(expr) + suffix
    if len(one) <= LINE_LIMIT or not isinstance(expr, Group) or not expr.items:
        return [one]
    inner = indent + "    " + ", ".join(flat(item) for item in expr.items)
    if len(inner) <= LINE_LIMIT:  # black's first choice: the arguments on one line of their own
        return [indent + prefix + expr.opener, inner, indent + expr.closer + suffix]
    lines = [indent + prefix + expr.opener]
    for item in expr.items:
        lines += wrap(item, indent + "    ", "", ",")
    lines.append(indent + expr.closer + suffix)
    return lines
