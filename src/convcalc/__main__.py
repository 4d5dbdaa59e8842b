"""`python -m convcalc` runs the command-line interface."""

from convcalc.cli import main

main()
