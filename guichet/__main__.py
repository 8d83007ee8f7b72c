"""``python -m guichet``: the command line (the staff console starts re-indexings this way)."""

from guichet.cli import main

main()
