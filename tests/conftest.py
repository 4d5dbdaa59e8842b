"""Shared test helpers: paths, spec parsing, the CLI runner and the regenerate switches."""

from __future__ import annotations

import os
from pathlib import Path

# Records refuse assignment to their fields under the tests (see convcalc.records); set
# before convcalc is imported, and inherited by the commands tests run as subprocesses.
os.environ["CONVCALC_CHECK_RECORDS"] = "1"

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from convcalc.analysis import Report, analyze  # noqa: E402
from convcalc.cli import cli  # noqa: E402
from convcalc.spec.parser import parse_text  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden", action="store_true",
        help="Rewrite tests/golden/ from the current output instead of comparing (then review the"
        " git diff). CONVCALC_UPDATE_EXPECTED=1 does the same, as it does for tests/bad_specs/.")


@pytest.fixture
def regen_golden(request: pytest.FixtureRequest) -> bool:
    """True when the golden files are to be rewritten rather than compared."""
    return bool(request.config.getoption("--regen-golden") or os.environ.get("CONVCALC_UPDATE_EXPECTED"))


def report_of(text: str, **options: object) -> Report:
    """Analyse spec text (as a file named spec.yaml)."""
    return analyze(parse_text(text, "spec.yaml"), **options)  # type: ignore[arg-type]


# The variables that change how output is laid out or coloured (rich reads them). Each in-process
# run removes them (None removes a variable for the run, in CliRunner's env) and each subprocess
# starts without them (`environ`), so no test depends on the terminal or shell it is run from;
# a test that wants one sets it explicitly.
TERMINAL_ENV: dict[str, str | None] = dict.fromkeys(
    ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
     "JUPYTER_COLUMNS", "JUPYTER_LINES"))


def environ(**variables: str) -> dict[str, str]:
    """This process's environment without TERMINAL_ENV's variables, plus `variables`."""
    return {**{k: v for k, v in os.environ.items() if k not in TERMINAL_ENV}, **variables}


@pytest.fixture
def run():
    """Invoke the CLI in-process; returns click's Result (stdout and stderr separate)."""
    runner = CliRunner(env=TERMINAL_ENV)

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke
