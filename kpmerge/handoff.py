"""The forked writer helper's memory file (the read helpers are in kpmerge.parallel)."""

from __future__ import annotations

import mmap
import os
import sys

from .parallel import can_fork

__all__ = ["can_fork", "fork_with_memory_file", "helpers_pay"]


def helpers_pay() -> bool:
    """Whether helper processes are used unless a caller says otherwise: on Linux (forking is not safe
    with the system libraries of macOS), with a spare core."""
    return sys.platform.startswith("linux") and (os.cpu_count() or 1) > 1


def fork_with_memory_file(name: str, content: bytes = b"") -> tuple[int, int, mmap.mmap | None] | None:
    """A memory file holding `content` and mapped (when not empty), then a forked helper process that
    shares both: `(pid, fd, mapping)`, with pid 0 in the helper. None when any of them cannot be made
    (no memory for a fork, say)."""
    try:
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
    except OSError:
        return None
    try:
        mapping = None
        if content:
            os.pwrite(fd, content, 0)
            mapping = mmap.mmap(fd, len(content))
        return os.fork(), fd, mapping
    except OSError:
        os.close(fd)
        return None
