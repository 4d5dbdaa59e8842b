"""Print a pip constraints file that pins every declared dependency to its lower bound.

The runtime dependencies and the `test` extras in pyproject.toml each declare `name>=X`;
this turns each into `name==X`, so that CI can run the suite with the oldest releases
convcalc claims to support (`.ci/run`, its lowest-versions step):

    python3 scripts/lowest_constraints.py > lowest.txt
    python3 -m pip install -c lowest.txt -e '.[test]'

A dependency without a `>=` bound is an error: a claim that cannot be tested is no claim.
Standard library only (tomllib: Python 3.11 or newer), so it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib  # standard library from Python 3.11; ruff targets 3.10, so it sorts it apart

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
EXTRAS = ("test",)

# name, optional [extras], the version specifiers, an optional `; marker`
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")


def lowest(requirement: str) -> str:
    """`PyYAML>=6.0.1` -> `PyYAML==6.0.1`; the marker, if any, is kept."""
    match = REQUIREMENT.match(requirement)
    if match is None:
        raise ValueError(f"cannot read the requirement {requirement!r}")
    name, _extras, specifiers, marker = match.groups()
    bounds = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip().startswith(">=")]
    if len(bounds) != 1:
        raise ValueError(f"{requirement!r} must declare exactly one lower bound (name>=X)")
    return f"{name}=={bounds[0]}" + (f" {marker}" if marker else "")


def constraints(pyproject: Path = PYPROJECT) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in EXTRAS:
        requirements += project.get("optional-dependencies", {}).get(extra, [])
    return [lowest(r) for r in requirements]


def main() -> int:
    try:
        lines = constraints()
    except ValueError as err:
        print(f"lowest_constraints: {err}", file=sys.stderr)
        return 1
    print("# The lower bound of every dependency in pyproject.toml; made by scripts/lowest_constraints.py")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
