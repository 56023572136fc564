"""`python -m kpmerge`."""

from .cli import main

main()
