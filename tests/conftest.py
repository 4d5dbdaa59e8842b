"""Shared test helpers: paths, spec parsing and the CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from convcalc.analysis import Report, analyze
from convcalc.cli import cli
from convcalc.spec.parser import parse_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def report_of(text: str, **options: object) -> Report:
    """Analyse spec text (as a file named spec.yaml)."""
    return analyze(parse_text(text, "spec.yaml"), **options)  # type: ignore[arg-type]


@pytest.fixture
def run():
    """Invoke the CLI in-process; returns click's Result (stdout and stderr separate)."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke
