"""``python -m firstreply``: the same as the ``firstreply`` command."""

from firstreply.cli import main

main()
