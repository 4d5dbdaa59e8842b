"""The same spec gives the same bytes: across runs, hash seeds, locales and terminal widths;
plain output (piped, or NO_COLOR on a terminal) never contains escape codes."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

import pytest

from conftest import EXAMPLES, environ

# Branches, concat, fractional jumps (transposed convs), warnings and blocks between them.
SPECS = ["resnet18.yaml", "googlenet.yaml", "dcgan_generator.yaml", "dilated_context.yaml"]
FORMATS = ["json", "csv", "markdown", "table"]

# One subprocess renders every spec in every format, so each environment costs one start-up.
RENDER_ALL = """
import json, sys
from click.testing import CliRunner
from convcalc.cli import cli
out = {}
for spec in sys.argv[2:]:
    for fmt in sys.argv[1].split(","):
        result = CliRunner().invoke(cli, ["shapes", spec, "-f", fmt], catch_exceptions=False)
        out[spec + ":" + fmt] = [result.exit_code, result.stdout, result.stderr]
print(json.dumps(out))
"""


def render_all(env: dict[str, str], formats: list[str] = FORMATS) -> dict[str, list]:
    paths = [str(EXAMPLES / s) for s in SPECS]
    done = subprocess.run([sys.executable, "-c", RENDER_ALL, ",".join(formats), *paths],
                          env=environ(**env), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_outputs_are_byte_identical_across_environments():
    first = render_all({"PYTHONHASHSEED": "0", "COLUMNS": "30", "LC_ALL": "C"})
    second = render_all({"PYTHONHASHSEED": "4242", "COLUMNS": "500", "LC_ALL": "C.UTF-8",
                         "TZ": "Asia/Kolkata"})
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert value[0] == 0, (key, value[2])
        assert value == second[key], key


def test_plain_outputs_have_no_escape_codes_and_end_with_a_newline():
    for key, (_, out, _) in render_all({}).items():
        assert "\x1b" not in out, key
        assert out.endswith("\n"), key


def run_piped(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "convcalc", *args], env=environ(**env),
                          capture_output=True, text=True, check=True)
    return done.stdout


def test_piped_table_is_plain_and_independent_of_the_width():
    spec = str(EXAMPLES / "googlenet.yaml")
    narrow = run_piped(["shapes", spec], {"COLUMNS": "20"})
    wide = run_piped(["shapes", spec], {"COLUMNS": "400", "TERM": "xterm-256color"})
    assert "\x1b" not in narrow
    assert narrow == wide
    assert max(map(len, narrow.splitlines())) > 20  # rows are not wrapped to the terminal


def run_in_terminal(args: list[str], env: dict[str, str]) -> bytes:
    """Run convcalc with a pseudo-terminal as stdout (as a user at a terminal would)."""
    leader, follower = pty.openpty()
    environment = environ(TERM="xterm-256color", COLUMNS="120", **env)
    process = subprocess.Popen([sys.executable, "-m", "convcalc", *args], stdout=follower,
                               stderr=follower, env=environment)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=30)
    os.close(leader)
    return b"".join(chunks)


@pytest.mark.parametrize("args", [["shapes", str(EXAMPLES / "resnet18.yaml")], ["layers"],
                                  ["layers", "conv2d"]])
def test_no_color_on_a_terminal_has_no_escape_codes(args):
    coloured = run_in_terminal(args, {})
    assert b"\x1b[" in coloured, "the harness must see colour when it is allowed"
    plain = run_in_terminal(args, {"NO_COLOR": "1"})
    assert b"\x1b" not in plain, plain[:300]
