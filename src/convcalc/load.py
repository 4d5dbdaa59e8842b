"""Loading a spec file: the library's way in, with the same located errors as the CLI.

`load_network(path)` reads a YAML or JSON spec (`-` is stdin), parses it and returns the
`Network`. Every problem is a `SpecError` (a `LimitError` for size limits) naming the file
and, where there is one, the line and column. Pass a `sources` dict to keep the text read,
by file name, for showing the offending line (`convcalc.render.error.format_error`).
`overrides` (var name -> value) and `input_shape` try other values without editing the file.
`read_revision(path, rev)` reads the file as committed at a git revision (`git show`), for
`convcalc diff --rev`.

Imports `errors`, `network` and `spec` only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from convcalc.errors import Location, SpecError
from convcalc.network import Network
from convcalc.spec.parser import DEFAULT_MAX_LAYERS, Limits, parse_spec
from convcalc.spec.source import Source, compose

if TYPE_CHECKING:
    import subprocess


def read_source(path: str, stdin: BinaryIO | None = None) -> Source:
    """The text of a spec file ('-' is `stdin`, by default the process's), or a SpecError that names it."""
    if path == "-":
        data = (stdin or sys.stdin.buffer).read()
        name = "<stdin>"
    else:
        name = path
        if os.path.isdir(path):
            raise SpecError(f"{path} is a directory; give a spec file (.yaml, .yml or .json)")
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            raise SpecError(f"{path}: no such file") from None
        except OSError as err:
            raise SpecError(f"{path}: cannot read it ({err.strerror})") from None
    return decode(name, data)


def decode(name: str, data: bytes) -> Source:
    """The bytes of a spec as UTF-8 text (a BOM is dropped), or a SpecError at the bad byte."""
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


def read_revision(path: str, rev: str) -> Source:
    """The spec at `path` as committed at git revision `rev`, named `REV:path` in messages.

    Runs `git show REV:./NAME` in the file's directory, so `path` is relative to the current
    directory as usual; the file need not exist in the work tree.
    """
    if path == "-":
        raise SpecError("--rev reads a committed file; give the spec's path, not '-'")
    import shutil
    import subprocess
    from pathlib import Path

    git = shutil.which("git")
    if git is None:
        raise SpecError("--rev needs git (it reads the old spec with git show), and git is not on PATH")
    where = Path(path).parent
    if not where.is_dir():
        raise SpecError(f"{path}: no such directory {str(where)!r}")

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([git, "-C", str(where), *args], capture_output=True, check=False)

    if run("rev-parse", "--is-inside-work-tree").returncode != 0:
        raise SpecError(f"{path} is not in a git repository (--rev reads the old spec with git show)")
    if rev.startswith("-") or run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode != 0:
        raise SpecError(f"unknown revision '{rev}' in the git repository of {path}")
    shown = run("show", f"{rev}:./{Path(path).name}")
    if shown.returncode != 0:
        raise SpecError(f"{path} does not exist at revision '{rev}'")
    return decode(f"{rev}:{path}", shown.stdout)


def parse_source(source: Source, max_layers: int = DEFAULT_MAX_LAYERS,
                 sources: dict[str, Source] | None = None, overrides: Mapping[str, Any] | None = None,
                 input_shape: tuple[int, ...] | str | None = None, keep: list[object] | None = None) -> Network:
    """Parse spec text already read; it goes into `sources` (when given) before parsing.

    `overrides` replace `vars` by name and `input_shape` the spec's `input`
    (`convcalc.spec.parser.parse_spec`, as `--set NAME=VALUE` and `--input`). `keep`, when
    given, gets the composed YAML tree, which parsing would otherwise free (the CLI keeps it
    to the end of the process, see `convcalc.cli.main`).
    """
    if sources is not None:
        sources[source.name] = source
    root = None
    if keep is not None:
        root = compose(source)
        keep.append(root)
    return parse_spec(source, Limits(max_layers=max_layers), overrides, input_shape, root=root)


def load_network(path: str, max_layers: int = DEFAULT_MAX_LAYERS,
                 sources: dict[str, Source] | None = None, overrides: Mapping[str, Any] | None = None,
                 input_shape: tuple[int, ...] | str | None = None, keep: list[object] | None = None) -> Network:
    """Read and parse one spec (see `parse_source`)."""
    return parse_source(read_source(path), max_layers, sources, overrides, input_shape, keep)
