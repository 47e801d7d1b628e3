"""``python -m aiokeg`` runs the command line (needs the ``cli`` extra)."""

from .cli import main

main()
