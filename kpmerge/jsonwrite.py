"""JSON writing shared by the formats: files in pieces made on demand, records' members copied as raw
bytes, exact number formatting, and JSON laid out for people."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import repeat
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

Raw = msgspec.Raw


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while many small objects are made (none of them cyclic)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Chunks:
    """A file's bytes as consecutive pieces, each made on demand by a function.

    Iterating makes them in order (see `output.write_folder`); `progress`, when given, is told the
    records each piece holds.
    """

    def __init__(
        self, pieces: Sequence[tuple[int, Callable[[], bytes]]], progress: Callable[[int], None] | None = None
    ) -> None:
        self.pieces = list(pieces)
        self.progress = progress

    def __len__(self) -> int:
        return len(self.pieces)

    def __iter__(self) -> Iterator[bytes]:
        with no_gc():
            for records, make in self.pieces:
                data = make()
                if self.progress is not None and records:
                    self.progress(records)
                yield data


def key_bytes(key: str, cache: dict[str, bytes]) -> bytes:
    """`"key":` as JSON bytes, memoised in `cache`."""
    out = cache.get(key)
    if out is None:
        out = cache[key] = orjson.dumps(key) + b":"
    return out


def members(
    record: dict[str, Raw], skip: frozenset[str], cache: dict[str, bytes], spaced: bool = True
) -> bytes:
    """The record's members other than `skip`, as `"k":v,...` bytes with the values untouched.

    `spaced=False` says the whole document has no layout white space (see `has_layout_space`), so the
    values need no compacting.
    """
    if not spaced:
        return b",".join([key_bytes(k, cache) + v for k, v in record.items() if k not in skip])
    return b",".join([key_bytes(k, cache) + compact(v) for k, v in record.items() if k not in skip])


def members_all(
    records: list[dict[str, Raw]], skip: frozenset[str], cache: dict[str, bytes], spaced: bool = True
) -> list[bytes]:
    """`members` of every record, column by column within each group of records with the same keys."""
    n = len(records)
    if n == 0:
        return []
    shapes = list(map(tuple, records))
    first = shapes[0]
    if shapes.count(first) == n:
        return _members_columns(records, first, skip, cache, spaced)
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, shape in enumerate(shapes):
        groups.setdefault(shape, []).append(i)
    if len(groups) > MAX_SHAPES:
        return [members(r, skip, cache, spaced) for r in records]
    out: list[bytes] = [b""] * n
    for shape, rows in groups.items():
        part = _members_columns([records[i] for i in rows], shape, skip, cache, spaced)
        for i, value in zip(rows, part, strict=True):
            out[i] = value
    return out


MAX_SHAPES = 64
"""Above this many different key sets, `members_all` goes record by record."""


def _members_columns(
    records: list[dict[str, Raw]],
    keys_in_order: tuple[str, ...],
    skip: frozenset[str],
    cache: dict[str, bytes],
    spaced: bool,
) -> list[bytes]:
    n = len(records)
    keys = [k for k in keys_in_order if k not in skip]
    if not keys:
        return [b""] * n
    columns: list[Any] = []
    for i, k in enumerate(keys):
        values = list(map(itemgetter(k), records))
        columns.append(repeat((b"," if i else b"") + key_bytes(k, cache), n))
        columns.append([compact(v) for v in values] if spaced else values)
    return list(map(b"".join, zip(*columns, strict=False)))  # key columns repeat without end


def has_layout_space(data: bytes) -> bool:
    """Whether a JSON document is indented, so that `compact` should take layout out of its values.

    JSON strings cannot hold a raw newline, so a newline followed by indentation is layout. A document
    without indented lines (one line, or one record per line as kpmerge writes) is taken as compact;
    values kept with layout in them would still be valid JSON, only less compact.
    """
    head = data[: 1 << 20]  # files are laid out one way throughout: the first megabyte tells
    return head.find(b"\n ") != -1 or head.find(b"\n\t") != -1


def compact(raw: Raw | bytes) -> bytes:
    """Raw JSON without layout white space (numbers and strings untouched)."""
    data = bytes(raw)
    if b"\n" in data or b"  " in data:
        return msgspec.json.format(data, indent=0)
    return data


def json_values(values: Sequence[Any]) -> list[bytes]:
    """Each value as JSON bytes; in bulk when all are ints or all are plain strings."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "i" and values.ndim == 1:  # signed ints
        if not len(values):
            return []
        blob = orjson.dumps(values.astype(np.int64, copy=False), option=orjson.OPT_SERIALIZE_NUMPY)
        return blob[1:-1].split(b",")
    seq = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if not seq:
        return []
    kinds = set(map(type, seq))
    if kinds == {int}:
        try:
            arr = np.array(seq, dtype=np.int64)
        except OverflowError:
            return [orjson.dumps(v) for v in seq]
        return orjson.dumps(arr, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    if kinds == {str}:
        blob = orjson.dumps(seq)
        if blob.count(b",") == len(seq) - 1:  # no string holds a comma: commas only separate
            return blob[1:-1].split(b",")
        if b"\\" not in blob:  # no escapes: no string holds a quote, so `","` only separates
            return [b'"' + v + b'"' for v in blob[2:-2].split(b'","')] if len(seq) > 1 else [blob[1:-1]]
    return [orjson.dumps(v) for v in seq]


def number_rows(values: npt.NDArray[np.float64]) -> list[bytes]:
    """Each row of a 2-D float array as JSON numbers without brackets; integral values as integers.

    NaN is written as null. One orjson call serialises the whole array.
    """
    n = values.shape[0]
    if n == 0:
        return []
    if values.shape[1] == 0:
        return [b""] * n
    ints = _as_ints(values)
    if ints is not None:
        return orjson.dumps(ints, option=orjson.OPT_SERIALIZE_NUMPY)[2:-2].split(b"],[")
    blob = orjson.dumps(np.ascontiguousarray(values, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
    blob = _integral(blob[2:-2])
    return blob.split(b"],[")


def _as_ints(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64] | None:
    """The values as int64 when every one is integral and orjson would write it as `<digits>.0`."""
    with np.errstate(invalid="ignore"):
        ints = values.astype(np.int64)
    if ints.size == 0 or not (ints == values).all():
        return None
    if max(-int(ints.min()), int(ints.max())) >= 10**16:
        return None
    if np.signbit(values).any() and np.signbit(values[ints == 0]).any():  # -0.0 is written `-0`
        return None
    return ints


def number_list(values: npt.NDArray[np.float64]) -> list[bytes]:
    """Each value of a 1-D float array as JSON (integral values as integers, NaN as null)."""
    if values.shape[0] == 0:
        return []
    blob = orjson.dumps(np.ascontiguousarray(values, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
    return _integral(blob[1:-1]).split(b",")


def _integral(blob: bytes) -> bytes:
    # orjson writes a float with an integral value as `2.0`; no other number it writes ends in `.0`.
    blob = blob.replace(b".0,", b",").replace(b".0]", b"]")
    if blob.endswith(b".0"):
        blob = blob[:-2]
    return blob


def dumps_pretty(obj: Any) -> bytes:
    """JSON for people to read: objects indented, lists without objects on one line, trailing newline."""
    return _pretty(obj, 0) + b"\n"


def _pretty(obj: Any, depth: int) -> bytes:
    pad = b"  " * (depth + 1)
    if isinstance(obj, dict) and obj:
        items = [pad + orjson.dumps(str(k)) + b": " + _pretty(v, depth + 1) for k, v in obj.items()]
        return b"{\n" + b",\n".join(items) + b"\n" + b"  " * depth + b"}"
    if isinstance(obj, list | tuple) and any(issubclass(t, dict) for t in set(map(type, obj))):
        items = [pad + _pretty(v, depth + 1) for v in obj]
        return b"[\n" + b",\n".join(items) + b"\n" + b"  " * depth + b"]"
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
