"""Safe YAML/JSON loading that keeps every value's position.

The spec is composed into PyYAML's node tree (never constructed into Python objects, so
no tag can run code) and the parser reads the nodes, which carry their line and column.
Aliases are allowed but their expansion is bounded before anything is walked, so a
"billion laughs" file is refused at once; recursive aliases are refused too.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import yaml

from convcalc.errors import LimitError, Location, SpecError
from convcalc.records import record

try:  # libyaml's composer is many times faster; PyYAML without it still works
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class _Loader(_BaseLoader):
    """Safe loading with tag resolution memoised: specs repeat the same few scalars, and
    resolving each one through PyYAML's regexes was a third of the time on big specs. The
    composer calls `self.resolve` for every node; a cache in C answers the repeats."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.resolve = functools.cache(super().resolve)  # type: ignore[method-assign]

    # The composer calls these around every node for path resolvers (`yaml.add_path_resolver`),
    # which this loader never has: as PyYAML's own do then, they do nothing, without asking.
    def descend_resolver(self, current_node: Node | None, current_index: object) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

Node = yaml.Node
MAX_NODES = 5_000_000  # expanded YAML nodes, counting every alias use
MAX_NESTING = 50  # lists and mappings inside one value (Python's recursion stays far away)
# Floats YAML 1.2 and JSON accept that YAML 1.1 reads as text: an exponent without a dot.
EXPONENT_FLOAT = r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"
_EXPONENT_FLOAT = re.compile(EXPONENT_FLOAT)
_NUMBER_START = frozenset("+-.0123456789")  # how an EXPONENT_FLOAT begins (names do not)
MAX_DIGITS = 100  # characters of one number (Python refuses to read ints past 4,300 digits)

STR, INT, FLOAT, BOOL, NULL, SEQ, MAP = (
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")
)
MERGE = "tag:yaml.org,2002:merge"
YAML_TAG = "tag:yaml.org,2002:"
TIMESTAMP, VALUE = YAML_TAG + "timestamp", YAML_TAG + "value"
SAFE_TAGS = frozenset((STR, INT, FLOAT, BOOL, NULL, SEQ, MAP, MERGE, TIMESTAMP, VALUE))
_constructor = yaml.constructor.SafeConstructor()
_SCALARS = {
    INT: _constructor.construct_yaml_int,
    FLOAT: _constructor.construct_yaml_float,
    BOOL: _constructor.construct_yaml_bool,
    NULL: _constructor.construct_yaml_null,
}


@record
class Source:
    """The text of one spec and its name, for positions and carets."""

    name: str
    text: str

    def where(self, node: Node | None) -> Location | None:
        mark = getattr(node, "start_mark", None)
        if mark is None:
            return None
        end = getattr(node, "end_mark", None)
        end_column = end.column + 1 if end is not None and end.line == mark.line else None
        return Location(self.name, mark.line + 1, mark.column + 1, end_column)

    def line(self, number: int) -> str | None:
        lines = self.text.splitlines()
        return lines[number - 1] if 1 <= number <= len(lines) else None


def compose(source: Source) -> Node:
    """Parse the text into a node tree, or raise SpecError with the position."""
    loader = _Loader(source.text)  # what yaml.compose does, keeping the loader for its position
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        if _too_deep(err):  # libyaml's own bound (PyYAML 6.0.4 on): convcalc's limit, not a syntax error
            raise _nesting_limit(source, err.problem_mark or err.context_mark) from None
        if source.name.endswith(".json"):
            node = _from_json(source)
        else:
            raise _yaml_error(source, err) from None
    except RecursionError:  # PyYAML's pure-Python parser recurses once per nesting level
        get_mark = getattr(loader, "get_mark", None)  # the pure-Python reader's position
        raise _nesting_limit(source, get_mark() if get_mark else None) from None
    except yaml.YAMLError as err:  # errors without a mark (rare: reader errors)
        raise SpecError(f"not valid YAML: {err}", where=Location(source.name, 1, 1)) from None
    finally:
        loader.dispose()
    if node is None:
        raise SpecError("the spec is empty; it needs at least 'input' and 'layers'",
                        where=Location(source.name, 1, 1))
    if "&" in source.text:  # without an anchor there is no alias, so nothing can expand
        check_size(node, source)
    if "!" in source.text:  # without a '!' no node carries an explicit tag
        check_tags(node, source)
    return node


def _too_deep(err: yaml.MarkedYAMLError) -> bool:
    """libyaml refuses nesting past its own depth (1,000 levels, flow or block)."""
    return "maximum nesting depth" in (err.problem or "")


def _nesting_limit(source: Source, mark: yaml.Mark | None) -> LimitError:
    """One message for nesting that the parser itself gives up on, whichever parser it is."""
    where = Location(source.name, mark.line + 1, mark.column + 1) if mark else Location(source.name, 1, 1)
    return LimitError(f"lists and mappings nest too deeply for the YAML parser (at most {MAX_NESTING}"
                      " levels are useful)", where=where)


def check_tags(root: Node, source: Source) -> None:
    """Refuse every tag but YAML's plain types before anything reads the nodes, so
    `!!python/object` and friends are named as such wherever they sit."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in SAFE_TAGS:
            raise SpecError(f"the YAML tag {tag_text(node.tag)!r} is not allowed in a spec (it could"
                            " construct objects); write a plain value", where=source.where(node))
        stack.extend(_children(node))


def tag_text(tag: str) -> str:
    """A tag as written: `!!python/name:os.system`, not the expanded URI."""
    return "!!" + tag[len(YAML_TAG):] if tag.startswith(YAML_TAG) else tag


def _yaml_error(source: Source, err: yaml.MarkedYAMLError) -> SpecError:
    mark = err.problem_mark or err.context_mark
    problem = err.problem or err.context or "invalid YAML"
    where = Location(source.name, mark.line + 1, mark.column + 1) if mark else None
    text = f"not valid YAML: {problem}"
    line = source.line(mark.line + 1) if mark else None
    start = err.context_mark
    # The common mistakes get convcalc's own words: libyaml and PyYAML's pure-Python
    # parser phrase them differently, and neither says what to do.
    if "\t" in (line or "") or "'\\t'" in problem:
        text = "not valid YAML: a tab here; YAML does not allow tabs for indentation, use spaces"
    elif "undefined alias" in problem:
        name = re.match(r"\*([^\s,\]}]*)", (line or "")[mark.column:]) if mark else None
        alias = f" '*{name.group(1)}'" if name else ""
        text = f"not valid YAML: the alias{alias} has no anchor; an alias *name must come after its anchor &name"
    elif err.context and start is not None and not (line or "").strip():
        # The error is only noticed at the end of the file: point at what was left open.
        where = Location(source.name, start.line + 1, start.column + 1)
        what, closer = ("flow mapping", "a closing '}'") if "mapping" in err.context else (
            "flow sequence", "a closing ']'")
        if "quoted" in err.context:
            what, closer = "quoted string", "the closing quote"
        text = f"not valid YAML: the {what} that starts here is never closed; is {closer} missing?"
    elif err.context and err.problem:
        at = f" (started at line {start.line + 1}, column {start.column + 1})" if start else ""
        text = f"not valid YAML: {err.problem} {err.context}{at}"
    return SpecError(text, where=where)


def _from_json(source: Source) -> Node:
    """JSON that PyYAML rejects (tabs, some escapes): parse it, positions are lost."""
    import json

    try:
        data = json.loads(source.text)
        return yaml.SafeDumper(None).represent_data(data)  # type: ignore[arg-type]
    except RecursionError:  # both recurse once per nesting level
        raise _nesting_limit(source, None) from None
    except json.JSONDecodeError as err:
        raise SpecError(f"not valid JSON: {err.msg}", where=Location(source.name, err.lineno, err.colno)) from None


def check_size(root: Node, source: Source) -> None:
    """Refuse alias cycles and expansions past MAX_NODES, in time linear in the file."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_NODES:
                raise LimitError(
                    f"the spec expands to more than {MAX_NODES:,} YAML values (aliases used"
                    " inside aliases?); refusing to expand it",
                    where=source.where(node),
                )
            continue
        if key in sizes:
            continue
        if key in active:
            raise SpecError("an alias refers to a node that contains it (a recursive alias)",
                            where=source.where(node))
        active.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in active:
                raise SpecError("an alias refers to a node that contains it (a recursive alias)",
                                where=source.where(child))
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: Node) -> list[Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def scalar(node: Node, source: Source) -> Any:
    """A scalar node's value, typed as YAML 1.1 resolves it (safe tags only)."""
    if not isinstance(node, yaml.ScalarNode):
        raise SpecError("expected a single value here, not a list or mapping", where=source.where(node))
    tag = node.tag
    if tag in (STR, TIMESTAMP, VALUE):  # a date-like name or '=' stays text
        value = node.value
        if tag == STR and not node.style and value[:1] in _NUMBER_START and _EXPONENT_FLOAT.match(value):
            # YAML 1.1 wants a dot in a float (`1.0e-6`); `1e-6` written plainly is a number.
            return float(value)
        return value
    if node.tag in (INT, FLOAT) and len(node.value) > MAX_DIGITS:
        raise SpecError(f"the number {node.value[:20]}... has more than {MAX_DIGITS} characters;"
                        " no size or argument needs that many", where=source.where(node))
    value = node.value
    if node.tag == INT and value.isdigit() and (value[0] != "0" or len(value) == 1):
        # The common case, without PyYAML's regexes (a leading 0 is YAML 1.1 octal).
        return int(value)
    convert = _SCALARS.get(node.tag)
    if convert is None:
        raise SpecError(f"the YAML tag {tag_text(node.tag)!r} is not allowed in a spec; write a plain value",
                        where=source.where(node))
    return convert(node)


def mapping_items(node: Node, source: Source) -> list[tuple[str, Node, Node]]:
    """(key, key node, value node) of a mapping, with merge keys applied and duplicate
    keys refused (PyYAML would keep the last silently)."""
    if not isinstance(node, yaml.MappingNode):
        raise SpecError("expected a mapping (key: value)", where=source.where(node))
    cached = getattr(node, "_convcalc_items", None)
    if cached is not None:  # a block's body is read again at every call: checked once
        return cached
    items: list[tuple[str, Node, Node]] = []
    seen: dict[str, Node] = {}
    merged: list[tuple[str, Node, Node]] = []
    if node.flow_style:
        _check_split_calls(node, source)
    for key_node, value_node in node.value:
        if key_node.tag == MERGE:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for src in sources:
                merged.extend(mapping_items(src, source))
            continue
        key = scalar(key_node, source)
        if not isinstance(key, str):
            raise SpecError(f"keys must be names, got {key!r}", where=source.where(key_node))
        if key in seen:
            first = source.where(seen[key])
            also = f" (first at line {first.line})" if first else ""
            raise SpecError(f"duplicate key '{key}'{also}", where=source.where(key_node))
        seen[key] = key_node
        items.append((key, key_node, value_node))
    for key, key_node, value_node in merged:
        if key not in seen:
            seen[key] = key_node
            items.append((key, key_node, value_node))
    node._convcalc_items = items  # type: ignore[attr-defined]  # callers only read it
    return items


def _open_parens(node: Node) -> int:
    if not isinstance(node, yaml.ScalarNode) or node.style:  # '' (libyaml) or None: plain
        return 0
    return node.value.count("(") - node.value.count(")")


def _check_split_calls(node: yaml.MappingNode, source: Source) -> None:
    """`{out_channels: max(8, 4)}`: YAML splits the call at its comma into a value `max(8`
    and a key `4)`. Say so, and how to write it, rather than `unknown argument '4)'`."""
    pairs = node.value
    for i, (_, value_node) in enumerate(pairs):
        if not isinstance(value_node, yaml.ScalarNode) or "(" not in value_node.value:
            continue  # most values, at once
        depth = _open_parens(value_node)
        if depth <= 0:
            continue
        end = value_node.end_mark
        for key_node, next_value in pairs[i + 1:]:
            depth += _open_parens(key_node)
            end = key_node.end_mark
            if next_value.start_mark.index != next_value.end_mark.index:  # `4)` has no value
                break
            if depth <= 0:
                break
        text = " ".join(source.text[value_node.start_mark.index:end.index].split())
        raise SpecError(f"YAML split the expression at its comma: {value_node.value!r} is only its start;"
                        f" quote the whole expression: \"{text}\"", where=source.where(value_node))


def to_python(node: Node, source: Source, depth: int = 0) -> Any:
    """Plain Python data (lists, dicts, scalars) from a node, still refusing unsafe tags."""
    if depth > MAX_NESTING:
        raise LimitError(f"lists and mappings nest deeper than {MAX_NESTING} levels in this value",
                         where=source.where(node))
    if isinstance(node, yaml.SequenceNode):
        return [to_python(n, source, depth + 1) for n in node.value]
    if isinstance(node, yaml.MappingNode):
        return {k: to_python(v, source, depth + 1) for k, _, v in mapping_items(node, source)}
    return scalar(node, source)
