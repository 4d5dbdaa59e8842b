"""The README and --help describe what the code does."""

from __future__ import annotations

import re

import click
import pytest

from conftest import ROOT, report_of
from convcalc.cli import cli
from convcalc.layers import MERGE_TYPES, REGISTRY

README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", cli.list_commands(click.Context(cli)))
def test_every_command_has_help_and_is_in_the_readme(name, run):
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert command.help and len(command.help.strip()) > 40, name
    assert f"convcalc {name}" in README, f"README does not mention `convcalc {name}`"
    result = run(name, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_every_layer_type_is_in_the_readme_table():
    table = README[README.index("## Layer types"):]
    listed = set(re.findall(r"`([a-z0-9]+)`", table))
    missing = set(REGISTRY.names()) - listed
    assert not missing, f"layer types missing from the README: {sorted(missing)}"
    assert set(MERGE_TYPES) <= listed


def test_readme_quick_start_spec_parses_as_documented():
    first_spec = README.split("```yaml", 1)[1].split("```", 1)[0]
    report = report_of(first_spec)
    assert report.output_shape == (10,)


def test_version_and_top_level_help(run):
    from convcalc import __version__

    assert run("--version").stdout.strip() == f"convcalc, version {__version__}"
    top = run("--help").stdout
    assert "Exit status: 0 ok, 1 a check failed (or the output could not be written), 2 bad input." in top


def test_every_registered_command_is_in_the_lazy_table():
    import importlib
    import pkgutil

    import convcalc.cli as package
    from convcalc.cli import COMMAND_MODULES

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"convcalc.cli.{module.name}")
    assert set(cli.commands) == set(COMMAND_MODULES)


def test_the_lazy_table_summarises_each_command_as_its_help_does():
    """`convcalc --help` lists the commands from the table without importing them: the table's
    summary must be the first paragraph of each command's help."""
    from convcalc.cli import COMMANDS

    for name, (_, summary) in COMMANDS.items():
        command = cli.get_command(click.Context(cli), name)
        assert command is not None and command.help is not None
        first = " ".join(command.help.split("\n\n")[0].split())
        assert summary == first, name


def test_top_level_help_lists_the_commands_as_click_would():
    """The lazily built list of commands is the one click builds from the commands themselves."""
    from convcalc.cli import ConvcalcGroup

    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        cli.get_command(ctx, name)
    for width in (60, 80, 120):
        ours, clicks = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
        cli.format_commands(ctx, ours)
        super(ConvcalcGroup, cli).format_commands(ctx, clicks)
        assert ours.getvalue() == clicks.getvalue()
