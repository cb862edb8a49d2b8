"""`python -m coopbench` is the `coopbench` command."""

from coopbench.cli import main

main()
