"""JSON plumbing shared by the formats: reading files, typed column decoding, bulk number parsing.

The writing side is `kpmerge.jsonwrite`; its names can be imported from here as well.
"""

from __future__ import annotations

import array
import codecs
import mmap
import re
import warnings
from collections.abc import Sequence
from itertools import compress
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from .errors import KpmergeError, UsageError
from .gunzip import gunzip
from .parallel import in_parts, shared_empty

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
        out = shared_empty((n, width), np.float64)
    rows = out

    def fill(lo: int, hi: int) -> bool:
        for start in range(lo, hi, ROWS_PER_CHUNK):
            part = raws[start : min(start + ROWS_PER_CHUNK, hi)]
            if not _float_chunk(part, width, rows[start : start + len(part)]):
                return False
        return True

    return out if in_parts(fill, n, [out], max(1, PARALLEL_MIN_NUMBERS // max(1, width))) else None


PARALLEL_MIN_NUMBERS = 2_000_000
"""Numbers per process from which `float_rows` parses with more than one (`parallel.in_parts`)."""


def _float_chunk(raws: Sequence[Raw | bytes], width: int, out: npt.NDArray[np.float64]) -> bool:
    """Parse rows into `out` (m, width); False when they are not all flat lists of `width` numbers."""
    m = len(raws)
    if width < 2:  # with a comma in every row, valid JSON rows hold no empty element
        return False
    lengths = np.fromiter(map(len, raws), dtype=np.int64, count=m)
    digit_rows = lengths == 2 * width + 1
    if digit_rows.any() and _digit_rows(raws, digit_rows, width, out):
        if digit_rows.all():
            return True
        rest = ~digit_rows
        values = np.empty((int(rest.sum()), width), dtype=np.float64)
        if not _number_rows(list(compress(raws, rest.tolist())), lengths[rest], width, values):
            return False
        out[rest] = values
        return True
    return _number_rows(raws, lengths, width, out)


def _digit_rows(
    raws: Sequence[Raw | bytes], picked: npt.NDArray[np.bool_], width: int, out: npt.NDArray[np.float64]
) -> bool:
    """Parse the `picked` rows (each `2 * width + 1` bytes long) into `out` when every one is a list of
    one-digit numbers (such as the all-zero rows of parts nobody labelled); else False, nothing written."""
    rows = np.frombuffer(b"".join(compress(raws, picked.tolist())), dtype=np.uint8).reshape(-1, 2 * width + 1)
    digits = rows[:, 1::2] - np.uint8(0x30)  # not a digit: above 9 (uint8 wraps around)
    if (rows[:, 0] != 0x5B).any() or (rows[:, -1] != 0x5D).any() or (rows[:, 2:-1:2] != 0x2C).any():
        return False
    if (digits > 9).any():
        return False
    out[picked] = digits
    return True


def _number_rows(
    raws: Sequence[Raw | bytes], lengths: npt.NDArray[np.int64], width: int, out: npt.NDArray[np.float64]
) -> bool:
    """`_float_chunk` of rows of any numbers, whose byte lengths are `lengths`."""
    m = len(raws)
    blob = b",".join(raws)
    # Each row is valid JSON (the decoder checked). Without strings or objects, a row that starts with
    # `[`, ends with `]` and holds no other bracket is a flat list of scalars; `width - 1` commas inside
    # make it `width` of them.
    if b'"' in blob or b"{" in blob:
        return False
    numbers = blob.translate(None, b"[]")
    if len(numbers) != len(blob) - 2 * m:  # brackets other than the two of each row
        return False
    buf = np.frombuffer(blob, dtype=np.uint8)
    starts = np.cumsum(lengths + 1) - lengths - 1
    if (lengths < 3).any() or (buf[starts] != 0x5B).any() or (buf[starts + lengths - 1] != 0x5D).any():
        return False
    commas = np.add.reduceat((buf == 0x2C).view(np.uint8), starts, dtype=np.int64)
    commas[:-1] -= 1  # the comma that joins each row to the next
    if (commas != width - 1).any():
        return False
    del buf, blob
    # Integers (the common case) and plain decimals parse in C without Python objects.
    if b"e" not in numbers and b"E" not in numbers:
        if b"." not in numbers:
            ints = _int_values(numbers, m * width)
            if ints is not None:
                out[...] = ints.reshape(m, width)
                return True
        elif _decimal_values(numbers, out):
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


_POWERS_OF_TEN = 10.0 ** np.arange(23)
"""The powers of ten that float64 holds exactly."""
_SPACES = (b" ", b"\n", b"\r", b"\t")
EXACT_LIMIT = 2**53
"""Integers up to this size are exact in float64."""


def _decimal_values(numbers: bytes, out: npt.NDArray[np.float64]) -> bool:
    """Parse comma-separated JSON numbers without exponent into `out`; False when one has more
    significant digits than float64 holds exactly, or is a negative zero (msgspec then decides).

    A number with digits `d` (point left out) and `f` digits after the point is `d / 10**f`: with `d`
    and `10**f` exact in float64, the division is correctly rounded, so the value is the one msgspec reads.
    """
    if any(space in numbers for space in _SPACES):
        numbers = numbers.translate(None, b"".join(_SPACES))
    buf = np.frombuffer(numbers, dtype=np.uint8)
    is_comma = buf == 0x2C
    count = out.size
    dots = np.flatnonzero(buf == 0x2E)
    number = np.cumsum(is_comma, dtype=np.int64)  # of each byte: the number it is in (or ends)
    at = number[dots]
    if (at[1:] == at[:-1]).any():  # two points in one number
        return False
    ends = np.append(np.flatnonzero(is_comma), len(buf))  # where each number ends
    fraction = np.zeros(count, dtype=np.intp)
    fraction[at] = ends[at] - dots - 1
    if int(fraction.max()) >= len(_POWERS_OF_TEN):
        return False
    ints = _int_values(numbers.translate(None, b"."), count)
    if ints is None or int(ints.max()) > EXACT_LIMIT or int(ints.min()) < -EXACT_LIMIT:
        return False
    minus = np.flatnonzero(buf == 0x2D)
    if minus.size and (ints[number[minus]] == 0).any():  # -0.0 is not 0.0
        return False
    np.divide(ints.reshape(out.shape), _POWERS_OF_TEN[fraction].reshape(out.shape), out=out)
    return True
