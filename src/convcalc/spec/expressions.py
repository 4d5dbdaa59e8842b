"""`$` expressions in specs: block arguments and simple integer arithmetic.

`$planes` is the value of `planes`; `$planes * 4`, `$c // 2 + 1`, `$stride != 1 or
$cin != $planes` and `max($a, 8)` compute. Evaluated by walking Python's syntax tree with
a whitelist of operators (no names but the arguments, no attributes, no calls but
`FUNCTIONS`), so a spec cannot run code.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
from collections.abc import Mapping
from typing import Any

from convcalc.errors import SpecError

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def make_divisible(v: Any, divisor: Any, min_value: Any = None) -> int:
    """torchvision's `_make_divisible`: the nearest multiple of `divisor`, at least
    `min_value` (default `divisor`), never more than 10 % below `v`."""
    for name, value in (("v", v), ("divisor", divisor)):
        if not _number(value):
            raise TypeError(f"make_divisible's {name} must be a number (got {value!r})")
    if min_value is None:
        min_value = divisor
    if not _number(min_value):
        raise TypeError(f"make_divisible's min_value must be a number (got {min_value!r})")
    if divisor <= 0:
        raise ValueError(f"make_divisible's divisor must be positive (got {divisor})")
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _one_number(name: str, convert: Any) -> Any:
    def call(value: Any) -> Any:
        if not _number(value):
            raise TypeError(f"{name}() takes a number (got {value!r})")
        return convert(value)
    return call


_FUNCTIONS: dict[str, Any] = {
    "min": min,
    "max": max,
    # Python's round: half to even, an int without ndigits (round(2.5) == 2).
    "round": lambda v, ndigits=None: _one_number("round", lambda x: round(x, ndigits)
                                                 if ndigits is not None else round(x))(v),
    "ceil": _one_number("ceil", math.ceil),
    "floor": _one_number("floor", math.floor),
    "int": _one_number("int", int),  # truncates toward zero, as Python's int()
    "abs": _one_number("abs", abs),
    "make_divisible": make_divisible,
}
# How many positional arguments each function takes (min, max: any number from 1).
_ARITY = {"round": (1, 2), "ceil": (1, 1), "floor": (1, 1), "int": (1, 1), "abs": (1, 1),
          "make_divisible": (2, 3)}


_REFERENCE = re.compile(r"\$[A-Za-z_(]")
_CALL = re.compile(r"^\s*(?:" + "|".join(_FUNCTIONS) + r")\s*\(")
_NAME_REFERENCE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")


def is_expression(value: Any) -> bool:
    """A string that mentions `$name` or `$(...)` (`$planes * 4`, `not $deep`,
    `$(c + g) // 2`), or starts with a call of one of `FUNCTIONS` (`max(8, 4)`,
    `make_divisible(24 * 0.75, 8)`), is an expression."""
    return isinstance(value, str) and (_REFERENCE.search(value) is not None or _CALL.match(value) is not None)


_PLACEHOLDER = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\()")


def interpolate(text: str, scope: Mapping[str, Any]) -> str:
    """`text` with each `$name` and `$(expression)` in it replaced by its value, as text.

    For names (`block$(stage)-$i` gives `block2-0`): a reference ends at the first character
    that cannot continue a name, so `$stage-0` is `$stage` then `-0`.
    """
    out: list[str] = []
    end = 0
    while (found := _PLACEHOLDER.search(text, end)) is not None:
        out.append(text[end:found.start()])
        if found.group(1) is not None:
            end = found.end()
        else:
            depth, end = 0, found.end() - 1
            while end < len(text):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
                if depth == 0:
                    break
            if depth:
                raise SpecError(f"{text!r} opens '$(' without closing it")
        value = evaluate(text[found.start():end], scope)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise SpecError(f"{text!r}: {text[found.start():end]} is {value!r}, not an int or a text")
        out.append(str(value))
    out.append(text[end:])
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _parse(source: str) -> ast.Expression:
    """The syntax tree of an expression; a block's expressions are read once, not per call."""
    return ast.parse(source, mode="eval")


def template_parts(text: str) -> list[tuple[bool, str]]:
    """A name like `denselayer$(i + 1)` or `stage$n` split into literal text and expressions:
    `[(False, "denselayer"), (True, "$(i + 1)")]`, for the exporter (`interpolate` evaluates
    them). An unclosed `$(` stays literal text."""
    parts: list[tuple[bool, str]] = []
    literal, pos = "", 0
    while pos < len(text):
        match = _REFERENCE.match(text, pos)
        if match is None:
            literal += text[pos]
            pos += 1
            continue
        if text[pos + 1] == "(":
            depth, end = 0, pos + 1
            while end < len(text):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
                end += 1
            if end == len(text):  # unbalanced: leave it to the evaluator's message
                literal += text[pos:]
                break
            end += 1
        else:
            end = _NAME_REFERENCE.match(text, pos).end()  # type: ignore[union-attr]
        if literal:
            parts.append((False, literal))
            literal = ""
        parts.append((True, text[pos:end]))
        pos = end
    if literal:
        parts.append((False, literal))
    return parts


def references(text: str) -> set[str]:
    """The names the expressions in `text` use (empty when it is no expression or unreadable)."""
    names: set[str] = set()
    for is_expr, piece in template_parts(text):
        if not is_expr:
            continue
        try:
            tree = ast.parse(piece.replace("$", "").strip(), mode="eval")
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return names


def evaluate(text: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate `$...` text against `scope`; raise SpecError with a plain message."""
    source = text.replace("$", "")
    if len(source) > MAX_LENGTH:
        raise SpecError(f"the expression {text[:30]!r}... is longer than {MAX_LENGTH} characters;"
                        " split it into vars")
    try:
        tree = _parse(source.strip())
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise SpecError(f"cannot read the expression {text!r}") from None
    try:
        return _eval(tree.body, scope, text)
    except SpecError:
        raise
    except RecursionError:
        raise SpecError(f"{text!r} nests too deeply") from None
    except (ArithmeticError, TypeError, ValueError) as err:  # 0 ** -1, 'a' < 1, float overflow
        raise SpecError(f"cannot evaluate {text!r}: {err}") from None


def _eval(node: ast.AST, scope: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("true", "false", "True", "False"):
            return node.id in ("true", "True")
        if node.id not in scope:
            known = ", ".join(sorted(scope)) or "none"
            raise SpecError(f"{text!r} uses '{node.id}', which is not defined here (defined: {known})")
        return scope[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, scope, text), _eval(node.right, scope, text)
        if isinstance(node.op, ast.Div):
            if right == 0:
                raise SpecError(f"{text!r} divides by zero")
            return left // right if left % right == 0 else left / right
        op = _BINARY.get(type(node.op))
        if op is None:
            raise SpecError(f"{text!r} uses an operator that is not allowed")
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
            raise SpecError(f"{text!r} divides by zero")
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1 << 32):
            raise SpecError(f"{text!r} is too large a power")
        return _arith(op, left, right, text)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, scope, text)
        if isinstance(node.op, ast.Not):
            return not value
        if isinstance(node.op, ast.USub):
            return _arith(operator.neg, value, None, text)
        if isinstance(node.op, ast.UAdd):
            return value
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, scope, text) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, scope, text)
        for op_node, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, scope, text)
            op = _COMPARE.get(type(op_node))
            if op is None or not op(left, right):
                if op is None:
                    raise SpecError(f"{text!r} uses a comparison that is not allowed")
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, scope, text) else node.orelse, scope, text)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        return _call(node, scope, text)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, scope, text) for e in node.elts]
    raise SpecError(f"{text!r} is not an expression convcalc understands"
                    f" (use +, -, *, /, //, %, comparisons, and/or/not, {', '.join(_FUNCTIONS)})")


def _call(node: ast.Call, scope: Mapping[str, Any], text: str) -> Any:
    name = node.func.id  # type: ignore[attr-defined]
    args = [_eval(a, scope, text) for a in node.args]
    keywords = {}
    for kw in node.keywords:
        if name != "make_divisible" or kw.arg != "min_value":
            raise SpecError(f"{text!r}: {name}() takes no argument named {kw.arg!r}")
        keywords[kw.arg] = _eval(kw.value, scope, text)
    low, high = _ARITY.get(name, (1, 1 << 16))
    count = len(args) + len(keywords)
    if not low <= count <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise SpecError(f"{text!r}: {name}() takes {wanted} arguments (got {count})")
    result = _FUNCTIONS[name](*args, **keywords)
    if isinstance(result, int) and result.bit_length() > MAX_BITS:
        raise SpecError(f"{text!r} is too large (more than {MAX_BITS} bits)")
    return result


def _arith(op: Any, left: Any, right: Any, text: str) -> Any:
    numbers = (left,) if right is None else (left, right)
    if not all(isinstance(v, (int, float)) for v in numbers):
        raise SpecError(f"{text!r} does arithmetic on something that is not a number")
    result = op(left) if right is None else op(left, right)
    # Bounding every result keeps chains like `v2: $v1 * $v1` from growing without end.
    if isinstance(result, int) and result.bit_length() > MAX_BITS:
        raise SpecError(f"{text!r} is too large (more than {MAX_BITS} bits)")
    return result


MAX_LENGTH = 1000  # characters of one expression
MAX_BITS = 4096  # of any intermediate integer
