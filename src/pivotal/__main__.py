"""``python -m pivotal``: the command-line interface."""

from pivotal.cli import main

main()
