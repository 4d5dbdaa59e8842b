"""`convcalc schema`: the JSON Schema of the spec format, for editors and validators."""

from __future__ import annotations

import json

import click

from convcalc.cli import cli


@cli.command()
@click.option("--compact", is_flag=True, help="One line instead of indented JSON.")
def schema(compact: bool) -> None:
    """Print the JSON Schema (draft-07) of the spec format.

    Every layer type is listed with its arguments, their types, defaults and descriptions,
    with the structural items (residual, parallel, sequential, blocks, name/repeat/when) and
    `$` expressions. Point an editor's YAML language server at the saved file for completion
    and validation (see docs/schema.md).

    \b
    Example:
      convcalc schema > convcalc.schema.json
    """
    from convcalc.schema import spec_schema

    data = spec_schema()
    click.echo(json.dumps(data, separators=(",", ":")) if compact else json.dumps(data, indent=2))
