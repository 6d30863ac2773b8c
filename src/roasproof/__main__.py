"""``python -m roasproof``: the same command line as the ``roasproof`` console script."""

from roasproof.cli import main

main(prog_name="roasproof")
