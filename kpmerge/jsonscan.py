"""Scans of raw JSON text for what the decoder does not report: where a document nests too deep for it,
and keys given twice in the top-level object (the decoder keeps the last)."""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from .errors import KpmergeError
from .jsonio import content_start

Raw = msgspec.Raw

NESTING_SHOWN = 512
"""JSON the decoder cannot follow (about 1,000 levels deep) is refused at the first place nested deeper
than this many levels."""

_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"\s*:?|[\[\]{},]')
"""A string (a key when a colon follows), a bracket or a comma."""


def nesting_error(data: bytes | mmap.mmap, file: str | Path | None = None) -> KpmergeError | None:
    """The error to report for a document the decoder found nested too deep (RecursionError): it names
    the first place nested more than NESTING_SHOWN levels deep. None when there is no such place."""
    stack: list[list[Any]] = []  # per open container: its bracket and the key or index being read
    for m in _TOKEN.finditer(data):
        token = m.group()
        c = token[:1]
        if c == b'"':
            if token.endswith(b":") and stack:
                stack[-1][1] = _key(token)
        elif c in (b"[", b"{"):
            stack.append([c, 0 if c == b"[" else ""])
            if len(stack) > NESTING_SHOWN:
                steps = [f"[{i}]" if b == b"[" else f".{i}" for b, i in stack[:-1]]
                path = "$" + "".join(steps[:6]) + ("..." if len(steps) > 6 else "")
                message = f"expected JSON nested at most {NESTING_SHOWN} levels deep, got deeper nesting"
                return KpmergeError(message, file, path)
        elif c in (b"]", b"}"):
            if stack:
                stack.pop()
        elif stack and stack[-1][0] == b"[":  # a comma between array elements
            stack[-1][1] += 1
    return None


@contextmanager
def nesting_checked(data: bytes | mmap.mmap, file: str | Path | None = None) -> Iterator[None]:
    """Turn a RecursionError of the decoder (JSON nested too deep) into a KpmergeError naming the place."""
    try:
        yield
    except RecursionError:
        error = nesting_error(data, file)
        if error is None:
            raise
        raise error from None


def _key(token: bytes) -> str:
    """The text of a `"key" :` token."""
    return msgspec.json.decode(token[: token.rindex(b'"') + 1], type=str)


def check_unique_keys(
    data: bytes | mmap.mmap, inside: Sequence[Sequence[Raw]], file: str | Path | None = None
) -> None:
    """KpmergeError when the top-level object of `data` has a key twice (decoders keep only the last).

    Only the text outside the given parts is read: each part is raw values decoded from `data` that lie
    at one depth inside a top-level value (e.g. members of the first and of the last record of an
    array), and everything between its first and its last value is skipped. So a file of many records
    costs about as little as its few top-level keys.
    """
    base = np.frombuffer(data, dtype=np.uint8).ctypes.data if len(data) else 0
    skips = []
    for raws in inside:
        spans = [(a - base, a - base + n) for a, n in map(_address, raws) if 0 <= a - base <= len(data) - n]
        if spans:
            skips.append((min(a for a, _ in spans), max(b for _, b in spans)))
    seen: set[str] = set()
    depth, pos = 0, content_start(data)  # white space before the document can be long: skipped fast
    for start, stop in [*sorted(skips), (len(data), len(data))]:
        for m in _TOKEN.finditer(data, pos, max(pos, start)):
            token = m.group()
            c = token[:1]
            if c == b'"':
                if depth == 1 and token.endswith(b":"):
                    key = _key(token)
                    if key in seen:
                        raise KpmergeError(
                            f"expected each key once in the top-level object, got {key!r} twice "
                            "(JSON readers keep only the last)",
                            file,
                            f"$.{key}",
                        )
                    seen.add(key)
            elif c in (b"[", b"{"):
                depth += 1
            elif c in (b"]", b"}"):
                depth -= 1
        pos = max(pos, stop)


def _address(raw: Raw) -> tuple[int, int]:
    """Where a raw value's bytes are in memory, and how many there are."""
    view = np.frombuffer(raw, dtype=np.uint8)
    return (view.ctypes.data if len(view) else -1), len(view)
