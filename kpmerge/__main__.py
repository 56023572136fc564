"""`python -m kpmerge` and the `kpmerge` command: an interrupt while kpmerge is still loading its modules
ends the command like any other interrupt (one line, no traceback)."""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the `kpmerge` command: kpmerge.cli (and numpy, click, ...) is loaded here."""
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("Error: interrupted by SIGINT; nothing was written\n")
        raise SystemExit(130) from None
    cli_main()


if __name__ == "__main__":
    main()
