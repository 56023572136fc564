"""JSON plumbing shared by the formats: reading files, typed column decoding, exact number writing."""

from __future__ import annotations

import array
import codecs
import gc
import mmap
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from .errors import KpmergeError, UsageError
from .gunzip import gunzip

Raw = msgspec.Raw
NULL = msgspec.Raw(b"null")

_AT = re.compile(r"^(.*?)(?: - at `\$(.*)`)?$", re.DOTALL)
_INDEX = re.compile(r"^\[(\d+)\](.*)$")


GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | Path) -> bytes | mmap.mmap:
    """The file's bytes (decompressed when it is gzip, by its magic bytes) without a UTF-8 byte order mark.

    Decompressed content of MAP_MIN_BYTES or more comes as a read-only memory map of a memory file, so
    that it is held once (see `gunzip`).

    Raises:
        UsageError: the path cannot be opened (missing, a folder, no permission): exit code 2.
        KpmergeError: the file is empty, a broken gzip file or one that expands beyond `gzip_limit()`:
            exit code 1.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            gzipped = f.read(2) == GZIP_MAGIC
            f.seek(0)
            data = gunzip(f, p, small=MAP_MIN_BYTES) if gzipped else f.read()
    except FileNotFoundError:
        raise UsageError("file not found", file=p) from None
    except IsADirectoryError:
        raise UsageError("is a folder, expected a JSON file", file=p) from None
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror or exc}", file=p) from None
    if content_start(data) == len(data):
        raise KpmergeError("file is empty, expected JSON", file=p)
    check_utf8(data, p)
    return data[3:] if data[:3] == b"\xef\xbb\xbf" else data


def load_json(path: str | Path) -> Any:
    """A small JSON file (a mapping, layout, metainfo or manifest; plain or gzip) as Python values.

    Raises:
        UsageError: the path cannot be opened (see `read_bytes`).
        KpmergeError: the file is empty, not UTF-8, not JSON or nested deeper than 1,024 levels.
    """
    data = read_bytes(path)
    try:
        return orjson.loads(data if isinstance(data, bytes) else memoryview(data))
    except orjson.JSONDecodeError as exc:
        message = str(exc).replace("depth limit exceeded", "nested deeper than 1,024 levels")
        raise KpmergeError(f"not valid JSON: {message}", file=path, json_path="$") from None


def content_start(data: bytes | mmap.mmap, pos: int = 0) -> int:
    """The offset of the first byte at or after `pos` that is not JSON white space (len(data) if none).

    Long runs of white space are skipped a block at a time, without copying the whole document.
    """
    n, step = len(data), 4096
    while pos < n:
        block = data[pos : pos + step]
        if not block.isspace():
            return pos + len(block) - len(block.lstrip(b" \t\r\n"))
        pos += len(block)
        step = min(step * 4, 1 << 22)
    return n


def check_utf8(data: bytes, file: str | Path | None = None) -> None:
    """Raise KpmergeError unless `data` is UTF-8 (pass-through fields are copied, never decoded)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    step = 1 << 22
    for start in range(0, len(data), step):
        chunk = data[start : start + step]
        if chunk.isascii() and not decoder.getstate()[0]:
            continue  # plain ASCII (most of any annotation file) is UTF-8: no need to decode it
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            at = start + exc.start
            raise KpmergeError(
                f"not valid JSON: expected UTF-8 text, got byte 0x{data[at]:02x} at byte {at}", file, "$"
            ) from None
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise KpmergeError(
            "not valid JSON: expected UTF-8 text, got a cut multi-byte character at the end", file, "$"
        ) from None


MAP_MIN_BYTES = 1 << 20


def read_mapped(path: str | Path) -> bytes | mmap.mmap:
    """The file's content like `read_bytes` (same errors); large files memory-mapped, not copied.

    A mapping is read-only and stays valid while anything (e.g. a msgspec.Raw) refers to it.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise UsageError("file not found", file=p) from None
    except OSError:
        size = 0
    if size < MAP_MIN_BYTES or not p.is_file():
        return read_bytes(p)
    try:
        with open(p, "rb") as f:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return read_bytes(p)
    if data[:2] == GZIP_MAGIC or data[:3] == b"\xef\xbb\xbf":
        data.close()
        return read_bytes(p)  # decompressed, or without its byte order mark
    if content_start(data) == len(data):
        raise KpmergeError("file is empty, expected JSON", file=p)
    check_utf8(data, p)
    return data


def first_char(data: bytes | mmap.mmap) -> str:
    """The first non-blank character of a JSON document (after a UTF-8 byte order mark), however much
    white space comes before it."""
    at = content_start(data, 3 if data[:3] == b"\xef\xbb\xbf" else 0)
    return chr(data[at]) if at < len(data) else ""


def decode(data: bytes, type_: Any, file: str | Path | None, base: str = "$") -> Any:
    """Decode JSON into `type_` with msgspec; errors become KpmergeError naming the JSON path."""
    try:
        return msgspec.json.decode(data, type=type_)
    except msgspec.DecodeError as exc:
        raise decode_error(exc, file, base) from None
    except UnicodeDecodeError:
        raise KpmergeError("not valid JSON: expected UTF-8 text, got other bytes", file, base) from None


def decode_error(exc: Exception, file: str | Path | None, base: str = "$") -> KpmergeError:
    """Turn msgspec's `Expected X, got Y - at `$.a[1]`` into a KpmergeError with that path."""
    text = str(exc)
    m = _AT.match(text)
    message, sub = (m.group(1), m.group(2) or "") if m else (text, "")
    message = message.replace("JSON is malformed: ", "not valid JSON: ")
    if message.startswith("Input data was truncated"):
        message = "not valid JSON: the file ends too early (truncated)"
    missing = re.match(r"^Object missing required field `(.*)`$", message)
    if missing:
        message, sub = "expected a value, got none (missing)", f"{sub}.{missing.group(1)}"
    if message.startswith("Number out of range"):
        message = "expected a finite number, got one out of range (e.g. 1e999)"
    message = message.replace("`", "")
    message = message[0].lower() + message[1:] if message else message
    return KpmergeError(message, file=file, json_path=base + sub)


def decode_column(
    raws: Sequence[Raw], type_: Any, file: str | Path | None, container: str, name: str
) -> list[Any]:
    """Decode one field of many records in one call; an error names `container[i].name`."""
    blob = b"[" + b",".join(raws) + b"]"
    try:
        return msgspec.json.decode(blob, type=list[type_])
    except msgspec.DecodeError as exc:
        text = str(exc)
        m = _AT.match(text)
        sub = m.group(2) if m and m.group(2) else ""
        im = _INDEX.match(sub)
        if im:
            head = f"$.{container}[{im.group(1)}]" if container else f"$[{im.group(1)}]"
            path = f"{head}.{name}{im.group(2)}"
            raise KpmergeError(decode_error(exc, file).message, file=file, json_path=path) from None
        raise decode_error(exc, file) from None
    except UnicodeDecodeError:
        raise KpmergeError("not valid JSON: expected UTF-8 text, got other bytes", file, "$") from None


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


ROWS_PER_CHUNK = 2048


def float_rows(
    raws: Sequence[Raw | bytes], width: int, out: npt.NDArray[np.float64] | None = None
) -> npt.NDArray[np.float64] | None:
    """Parse many JSON arrays of exactly `width` numbers into one (n, width) float64 array, in bulk.

    Returns None when any row is not a flat list of `width` numbers (the caller then takes its slow,
    error-reporting path). Values equal msgspec's decoding of each row as `list[float]`. With `out`, an
    (n, width) array (it may be a view with strided rows), the rows are parsed into it and it is returned.
    """
    n = len(raws)
    if out is None:
        out = np.empty((n, width), dtype=np.float64)
    for start in range(0, n, ROWS_PER_CHUNK):
        part = raws[start : start + ROWS_PER_CHUNK]
        if not _float_chunk(part, width, out[start : start + len(part)]):
            return None
    return out


def _float_chunk(raws: Sequence[Raw | bytes], width: int, out: npt.NDArray[np.float64]) -> bool:
    """Parse rows into `out` (m, width); False when they are not all flat lists of `width` numbers."""
    m = len(raws)
    if width < 2:  # with a comma in every row, valid JSON rows hold no empty element
        return False
    blob = b",".join(raws)
    # Each row is valid JSON (the decoder checked). Without strings or objects, a row that starts with
    # `[`, ends with `]` and holds no other bracket is a flat list of scalars; `width - 1` commas inside
    # make it `width` of them.
    if b'"' in blob or b"{" in blob or blob.count(b"[") != m or blob.count(b"]") != m:
        return False
    buf = np.frombuffer(blob, dtype=np.uint8)
    lengths = np.fromiter(map(len, raws), dtype=np.int64, count=m)
    starts = np.cumsum(lengths + 1) - lengths - 1
    if (lengths < 3).any() or (buf[starts] != 0x5B).any() or (buf[starts + lengths - 1] != 0x5D).any():
        return False
    commas = np.add.reduceat((buf == 0x2C).view(np.uint8), starts, dtype=np.int64)
    commas[:-1] -= 1  # the comma that joins each row to the next
    if (commas != width - 1).any():
        return False
    del buf
    numbers = blob.replace(b"[", b"").replace(b"]", b"")
    del blob
    # Integers (the common case) parse in C without Python objects.
    if b"." not in numbers and b"e" not in numbers and b"E" not in numbers:
        ints = _int_values(numbers, m * width)
        if ints is not None:
            out[...] = ints.reshape(m, width)
            return True
    try:
        values = msgspec.json.decode(b"[" + numbers + b"]", type=list[float])
    except msgspec.DecodeError:
        return False
    if len(values) != m * width:
        return False
    out[...] = np.frombuffer(array.array("d", values), dtype=np.float64).reshape(m, width)
    return True


INT_LIMIT = 10**17
"""Integers parsed by numpy stay below this (larger ones, or any that overflowed int64, go to msgspec)."""


def _int_values(numbers: bytes, count: int) -> npt.NDArray[np.int64] | None:
    """`count` comma-separated JSON integers, each of size below INT_LIMIT; else None."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            ints = np.fromstring(numbers, dtype=np.int64, sep=",")
        except (DeprecationWarning, ValueError):
            return None
    if ints.shape[0] != count or (count and (int(ints.max()) >= INT_LIMIT or int(ints.min()) <= -INT_LIMIT)):
        return None
    return ints


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
