"""Gzip inputs decompressed once into memory, and refused when they would expand beyond a limit."""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO

from .errors import KpmergeError, UsageError

GZIP_LIMIT_ENV = "KPMERGE_GZIP_LIMIT"
"""Environment variable: the most bytes a gzip input may expand to, e.g. `64G` (default: `gzip_limit`)."""

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def gzip_limit() -> int:
    """The most bytes a gzip input may expand to: `KPMERGE_GZIP_LIMIT` when set (bytes, or with a K, M, G
    or T suffix), else half the memory available now (see `available_memory`; 64 GiB where unknown).

    Raises:
        UsageError: for a KPMERGE_GZIP_LIMIT that is not a size.
    """
    text = os.environ.get(GZIP_LIMIT_ENV, "").strip()
    if text:
        m = re.fullmatch(r"(\d+)\s*([KMGT]?)i?B?", text, re.IGNORECASE)
        if not m:
            raise UsageError(f"{GZIP_LIMIT_ENV}: expected a size such as 8G or 500M, got {text!r}")
        return int(m.group(1)) * _UNITS[m.group(2).upper()]
    free = available_memory()
    return free // 2 if free is not None else 64 << 30


def available_memory() -> int | None:
    """Bytes of memory this process may still take, where Linux tells: the least of MemAvailable, the
    cgroup's memory.max minus memory.current, and the address-space limit minus the current size."""
    found = []
    with contextlib.suppress(OSError, ValueError):
        found.append(_kib_field(Path("/proc/meminfo"), "MemAvailable"))
    with contextlib.suppress(OSError, ValueError):
        cg = Path("/sys/fs/cgroup")
        found.append(int((cg / "memory.max").read_text()) - int((cg / "memory.current").read_text()))
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            found.append(soft - _kib_field(Path("/proc/self/status"), "VmSize"))
    return max(0, min(found)) if found else None


def _kib_field(path: Path, name: str) -> int:
    """Bytes of a `Name:  123 kB` line of a /proc file (ValueError when there is none)."""
    m = re.search(rf"^{name}:\s+(\d+) kB", path.read_text(), re.MULTILINE)
    if m is None:
        raise ValueError(name)
    return int(m.group(1)) * 1024


GUNZIP_BLOCK = 1 << 22
"""Most bytes decompressed in one step."""


def gunzip(
    f: BinaryIO, file: str | Path | None = None, limit: int | None = None, small: int = 1 << 20
) -> bytes | mmap.mmap:
    """The decompressed content of the gzip stream `f` (all its members), held once.

    Blocks are decompressed into a memory file (a temporary file where there are none), which is then
    mapped read-only; content below `small` bytes is returned as bytes. Peak memory is the decompressed
    size plus one block.

    Raises:
        KpmergeError: for a broken gzip stream, or one that expands beyond `limit` (default: `gzip_limit()`),
            found before more than `limit` bytes are held.
    """
    limit = gzip_limit() if limit is None else limit
    sink = _memory_file()
    try:
        total = 0
        unzip = zlib.decompressobj(31)
        pending = f.read(1 << 20)
        started = bool(pending)
        while pending:
            try:
                block = unzip.decompress(pending, GUNZIP_BLOCK)
            except zlib.error as exc:
                raise KpmergeError(f"not a valid gzip file: {exc}", file=file) from None
            total += len(block)
            if total > limit:
                raise KpmergeError(
                    f"expands to more than {limit:,} bytes, the most kpmerge decompresses "
                    f"(half the memory available; {GZIP_LIMIT_ENV}=SIZE, e.g. 64G, changes it)",
                    file=file,
                )
            sink.write(block)
            if unzip.unconsumed_tail:
                pending = unzip.unconsumed_tail
            elif unzip.eof:  # a member ended: another may follow
                pending = unzip.unused_data or f.read(1 << 20)
                unzip = zlib.decompressobj(31)
                started = bool(pending)
            else:
                pending = f.read(1 << 20)
        if started:
            raise KpmergeError(
                "not a valid gzip file: it ends before the end-of-stream marker (truncated)", file=file
            )
        sink.flush()
        if total < small:
            sink.seek(0)
            return sink.read()
        try:
            return mmap.mmap(sink.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise KpmergeError(
                f"cannot hold the decompressed {total:,} bytes in memory: {exc}", file=file
            ) from None
    finally:
        sink.close()


def _memory_file() -> BinaryIO:
    """A new empty file in memory (Linux), else a temporary file; gone once closed and unmapped."""
    if hasattr(os, "memfd_create"):
        with contextlib.suppress(OSError):
            return os.fdopen(os.memfd_create("kpmerge-gunzip", os.MFD_CLOEXEC), "w+b")
    return tempfile.TemporaryFile()
