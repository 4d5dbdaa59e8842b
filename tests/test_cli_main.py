"""The console entry point (`convcalc.cli.main`) as a user runs it, in a fresh interpreter.

It ends the process with `os._exit` once the output is written (see `main`), so these check
what that must not change: the output and the exit status are the command's, as CliRunner
sees them; exit handlers still run; a command that cannot write its output says so, without a
traceback, and exits with status 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT, TERMINAL_ENV, environ
from convcalc.cli import cli


def console(*args: str, stdout: int | None = subprocess.PIPE, script: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
    """`convcalc ARGS` through `main`, from the repository root (or `script` run before it)."""
    code = (script or "") + "\nimport sys\nsys.argv[0] = 'convcalc'\nfrom convcalc.cli import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, env=environ(PYTHONPATH=str(ROOT / "src")))


@pytest.mark.parametrize(("args", "status"), [
    (("shapes", "examples/resnet50.yaml", "--format", "json"), 0),
    (("shapes", "examples/unet.yaml", "--depth", "2"), 0),
    (("check", "examples/resnet50.yaml", "--max-params", "1000"), 1),
    (("shapes", "tests/bad_specs/001_yaml_syntax.yaml"), 2),
    (("shapes", "no-such-spec.yaml"), 2),
    (("shapes", "examples/resnet50.yaml", "--depth", "-1"), 2),  # a usage error, from click
    (("--version",), 0),
], ids=["json", "table", "check-fails", "bad-spec", "no-file", "usage", "version"])
def test_the_output_and_status_are_the_commands(args, status):
    done = console(*args)
    expected = CliRunner(env=TERMINAL_ENV).invoke(cli, list(args), prog_name="convcalc")
    assert (done.returncode, expected.exit_code) == (status, status)
    assert done.stdout == expected.stdout
    assert done.stderr == expected.stderr
    assert "Traceback" not in done.stderr


def test_exit_handlers_still_run_and_what_they_print_is_written(tmp_path):
    marker = tmp_path / "ran"
    script = (f"import atexit, pathlib\natexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
              "atexit.register(print, 'handler done')")
    done = console("shapes", "examples/lenet.yaml", script=script)
    assert done.returncode == 0 and done.stdout.startswith("lenet")
    assert done.stdout.endswith("\nhandler done\n")
    assert marker.read_text() == "yes"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
@pytest.mark.parametrize("args", [
    ("shapes", "examples/resnet50.yaml", "--format", "json"),  # written while the command runs
    ("--version",),  # still in the buffer when the command ends
], ids=["while-running", "at-exit"])
def test_an_output_that_cannot_be_written_is_said_so_with_status_1(args):
    with Path("/dev/full").open("w") as full:
        done = console(*args, stdout=full.fileno())
    assert done.returncode == 1
    assert done.stderr == "convcalc: cannot write the output: No space left on device\n"


def test_loading_with_keep_gives_the_same_network_and_hands_over_the_yaml_tree():
    import yaml

    from convcalc.analysis import analyze
    from convcalc.load import load_network

    kept: list[object] = []
    network = load_network(str(ROOT / "examples" / "resnet18.yaml"), keep=kept)
    assert len(kept) == 1 and isinstance(kept[0], yaml.MappingNode)  # the composed spec
    assert analyze(network) == analyze(load_network(str(ROOT / "examples" / "resnet18.yaml")))
