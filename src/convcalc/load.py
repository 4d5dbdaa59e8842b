"""Loading a spec file: the library's way in, with the same located errors as the CLI.

`load_network(path)` reads a YAML or JSON spec (`-` is stdin), parses it and returns the
`Network`. Every problem is a `SpecError` (a `LimitError` for size limits) naming the file
and, where there is one, the line and column. Pass a `sources` dict to keep the text read,
by file name, for showing the offending line (`convcalc.render.error.format_error`).

Imports `errors`, `network` and `spec` only.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from convcalc.errors import Location, SpecError
from convcalc.network import Network
from convcalc.spec.parser import DEFAULT_MAX_LAYERS, Limits, Parser
from convcalc.spec.source import Source, compose


def read_source(path: str, stdin: BinaryIO | None = None) -> Source:
    """The text of a spec file ('-' is `stdin`, by default the process's), or a SpecError that names it."""
    if path == "-":
        data = (stdin or sys.stdin.buffer).read()
        name = "<stdin>"
    else:
        name = path
        p = Path(path)
        if p.is_dir():
            raise SpecError(f"{path} is a directory; give a spec file (.yaml, .yml or .json)")
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise SpecError(f"{path}: no such file") from None
        except OSError as err:
            raise SpecError(f"{path}: cannot read it ({err.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        utf16 = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise SpecError(
            f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start}{utf16};"
            " save the spec as UTF-8",
            where=Location(name, line, column),
        ) from None
    return Source(name, text)


def load_network(path: str, max_layers: int = DEFAULT_MAX_LAYERS,
                 sources: dict[str, Source] | None = None, overrides: Mapping[str, Any] | None = None) -> Network:
    """Read and parse one spec; its text goes into `sources` (when given) before parsing.

    `overrides` replace the values of the spec's `vars` by name (`--set NAME=VALUE`); a name
    that is not a var is a SpecError listing the ones there are.
    """
    source = read_source(path)
    if sources is not None:
        sources[source.name] = source
    return Parser(source, Limits(max_layers=max_layers), overrides).network(compose(source))
