"""JSON plumbing shared by the formats: reading files, typed column decoding, exact number writing."""

from __future__ import annotations

import codecs
import gc
import gzip
import re
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from .errors import KpmergeError, UsageError

Raw = msgspec.Raw
NULL = msgspec.Raw(b"null")

_AT = re.compile(r"^(.*?)(?: - at `\$(.*)`)?$", re.DOTALL)
_INDEX = re.compile(r"^\[(\d+)\](.*)$")


GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes (decompressed when it is gzip, by its magic bytes) without a UTF-8 byte order mark.

    Raises:
        UsageError: the path cannot be opened (missing, a folder, no permission): exit code 2.
        KpmergeError: the file is empty or a broken gzip file: exit code 1.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise UsageError("file not found", file=p) from None
    except IsADirectoryError:
        raise UsageError("is a folder, expected a JSON file", file=p) from None
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror or exc}", file=p) from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise KpmergeError(f"not a valid gzip file: {exc}", file=p) from None
    if not data.strip():
        raise KpmergeError("file is empty, expected JSON", file=p)
    check_utf8(data, p)
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def check_utf8(data: bytes, file: str | Path | None = None) -> None:
    """Raise KpmergeError unless `data` is UTF-8 (pass-through fields are copied, never decoded)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    step = 1 << 24
    for start in range(0, len(data), step):
        try:
            decoder.decode(data[start : start + step], final=start + step >= len(data))
        except UnicodeDecodeError as exc:
            at = start + exc.start
            raise KpmergeError(
                f"not valid JSON: expected UTF-8 text, got byte 0x{data[at]:02x} at byte {at}", file, "$"
            ) from None


def first_char(data: bytes) -> str:
    """The first non-blank character of a JSON document (after a UTF-8 byte order mark)."""
    text = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return chr(text[0]) if text else ""


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


def key_bytes(key: str, cache: dict[str, bytes]) -> bytes:
    """`"key":` as JSON bytes, memoised in `cache`."""
    out = cache.get(key)
    if out is None:
        out = cache[key] = orjson.dumps(key) + b":"
    return out


def members(record: dict[str, Raw], skip: frozenset[str], cache: dict[str, bytes]) -> bytes:
    """The record's members other than `skip`, as `"k":v,...` bytes with the values untouched."""
    return b",".join([key_bytes(k, cache) + compact(v) for k, v in record.items() if k not in skip])


def compact(raw: Raw | bytes) -> bytes:
    """Raw JSON without layout white space (numbers and strings untouched)."""
    data = bytes(raw)
    if b"\n" in data or b"  " in data:
        return msgspec.json.format(data, indent=0)
    return data


def number_rows(values: npt.NDArray[np.float64]) -> list[bytes]:
    """Each row of a 2-D float array as JSON numbers without brackets; integral values as integers.

    NaN is written as null. One orjson call serialises the whole array.
    """
    n = values.shape[0]
    if n == 0:
        return []
    if values.shape[1] == 0:
        return [b""] * n
    blob = orjson.dumps(np.ascontiguousarray(values, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
    blob = _integral(blob[2:-2])
    return blob.split(b"],[")


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
    if isinstance(obj, list | tuple) and any(isinstance(v, dict) for v in obj):
        items = [pad + _pretty(v, depth + 1) for v in obj]
        return b"[\n" + b",\n".join(items) + b"\n" + b"  " * depth + b"]"
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
