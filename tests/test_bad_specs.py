"""Every malformed input in tests/bad_specs/ gets one clear message, pinned in full.

A case is a stem with its files in tests/bad_specs/:
- `NNN_name.yaml` (or `.json`): the spec, run as `convcalc shapes NNN_name.yaml`;
- `NNN_name.args` (optional): the command line instead, `{spec}` standing for the spec file;
- `NNN_name.expected`: the whole stderr, then a line `exit: N`.

Cases run from inside tests/bad_specs/ so the messages show short, stable file names.
After a deliberate message change, regenerate with `CONVCALC_UPDATE_EXPECTED=1 pytest
tests/test_bad_specs.py` and review every diff: each message must name the place
(file:line:col and the layer path), what was wrong and what would be right.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import TERMINAL_ENV
from convcalc.cli import cli

BAD = Path(__file__).resolve().parent / "bad_specs"
CASES = sorted(p.stem for p in BAD.glob("*.expected"))
UPDATE = bool(os.environ.get("CONVCALC_UPDATE_EXPECTED"))


def command(stem: str) -> list[str]:
    specs = [p.name for p in BAD.glob(f"{stem}.*") if p.suffix in (".yaml", ".json")]
    spec = specs[0] if specs else ""
    args_file = BAD / f"{stem}.args"
    line = args_file.read_text().strip() if args_file.exists() else "shapes {spec}"
    return [word.replace("{spec}", spec) for word in shlex.split(line)]


def observed(result) -> str:
    return f"{result.stderr}exit: {result.exit_code}\n"


@pytest.fixture
def run():
    """The CLI as users call it (prog name `convcalc`, so usage errors read as they will)."""
    runner = CliRunner(env=TERMINAL_ENV)

    def invoke(*args: str):
        return runner.invoke(cli, list(args), prog_name="convcalc", catch_exceptions=False)

    return invoke


@pytest.fixture
def in_corpus(monkeypatch):
    monkeypatch.chdir(BAD)


def test_corpus_is_large_and_complete():
    assert len(CASES) >= 60
    inputs = {p.stem for p in BAD.iterdir() if p.suffix in (".yaml", ".json", ".args")}
    assert inputs == set(CASES), "every input needs an .expected file and the reverse"


@pytest.mark.parametrize("stem", CASES)
def test_bad_input_gives_its_pinned_message(stem, run, in_corpus):
    result = run(*command(stem))
    text = observed(result)
    if UPDATE:
        (BAD / f"{stem}.expected").write_text(text)
    assert "Traceback" not in result.output + result.stderr
    assert result.stdout == "", "an error prints nothing on stdout"
    assert result.exit_code == 2
    assert text == (BAD / f"{stem}.expected").read_text()


@pytest.mark.parametrize("stem", [s for s in CASES if (BAD / f"{s}.yaml").exists()
                                  or (BAD / f"{s}.json").exists()])
def test_spec_errors_are_located(stem, run, in_corpus):
    """A spec error names the spec file, and a line and column whenever one is known."""
    first = observed(run(*command(stem))).splitlines()[0]
    if first.startswith("error:") and "Usage" not in first:
        assert first.startswith(f"error: {command(stem)[1]}"), first


def test_traceback_option_reraises(run, in_corpus):
    """--traceback is for debugging convcalc: the error escapes instead of one message."""
    from convcalc.errors import SpecError

    with pytest.raises(SpecError):
        run("--traceback", "shapes", "038_zero_kernel.yaml")
