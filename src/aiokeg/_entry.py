"""The ``aiokeg`` console script: says what to install when the ``cli`` extra is missing."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Run the command line, or explain in one line how to get it."""
    try:
        from .cli import main as cli
    except ImportError as exc:
        if exc.name not in ("click", "rich"):
            raise
        print(
            f"aiokeg: the command line needs {exc.name}, which is not installed: "
            'pip install "aiokeg[cli]"',
            file=sys.stderr,
        )
        sys.exit(1)
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
