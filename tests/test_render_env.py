"""The terminal is decided once (render.env.Terminal) and can be injected; the library loads
spec files with the CLI's located errors (convcalc.load)."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

from conftest import EXAMPLES
from convcalc.cli import cli
from convcalc.errors import SpecError
from convcalc.load import load_network
from convcalc.render.env import Terminal
from convcalc.render.error import format_error


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("environ, styled, colour", [
    ({}, True, True),
    ({"NO_COLOR": "1"}, False, False),
    ({"TERM": "dumb"}, True, False),
    ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, True),
])
def test_detect_reads_the_environment_once(environ, styled, colour):
    term = Terminal.detect({"COLUMNS": "93", **environ}, stdout=_Tty(), stderr=io.StringIO())
    assert (term.stdout_tty, term.stderr_tty, term.width) == (True, False, 93)
    assert (term.styled(), term.colour()) == (styled, colour)
    assert not Terminal.detect({}, stdout=io.StringIO(), stderr=io.StringIO()).styled()


def test_an_injected_terminal_decides_the_colour():
    spec = str(EXAMPLES / "lenet.yaml")
    plain = CliRunner().invoke(cli, ["shapes", spec], obj=Terminal())
    coloured = CliRunner().invoke(cli, ["shapes", spec], obj=Terminal(stdout_tty=True, width=120))
    assert plain.exit_code == coloured.exit_code == 0
    assert "\x1b[" not in plain.stdout
    assert "\x1b[" in coloured.stdout


def test_library_load_gives_located_errors(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text("input: 3x32x32\nlayers:\n  - conv2d: {out_channels: 8, kernel_size: 0}\n")
    sources: dict = {}
    with pytest.raises(SpecError) as info:
        load_network(str(path), sources=sources)
    assert info.value.where is not None and info.value.where.line == 3
    assert str(path) in sources
    assert format_error(info.value, sources).splitlines()[1].startswith("  3 | ")
