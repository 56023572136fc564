"""The one error type of kpmerge, and its exit codes."""

from __future__ import annotations

from os import PathLike


class KpmergeError(Exception):
    """Bad input data: a file kpmerge cannot read or that breaks a rule (exit code 1)."""

    exit_code = 1

    def __init__(self, message: str, file: str | PathLike[str] | None = None, json_path: str | None = None):
        self.message = message
        self.file = None if file is None else str(file)
        self.json_path = json_path
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.json_path) if p]
        return ": ".join([*parts, self.message])


class UsageError(KpmergeError):
    """Bad usage: options, recipes, layouts, mappings or output paths that cannot work (exit code 2)."""

    exit_code = 2
