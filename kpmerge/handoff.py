"""Forked helper processes and the memory files they share; objects handed back through them, fast.

numpy arrays travel out of band (pickle protocol 5), each written raw and aligned, and are mapped by
the reader, not copied. Object arrays of text (ids, file names, raw JSON members) travel as one joined
blob each, also out of band, which is several times faster than pickling every string.
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import sys
import threading
from typing import Any

import numpy as np

ALIGN = 64


def helpers_pay() -> bool:
    """Whether helper processes are used unless a caller says otherwise: on Linux (forking is not safe
    with the system libraries of macOS), with a spare core."""
    return sys.platform.startswith("linux") and (os.cpu_count() or 1) > 1


def can_fork() -> bool:
    """Whether a helper process may be forked now: fork and memory files exist, and one thread runs
    (forking a threaded process is unsafe)."""
    return hasattr(os, "fork") and hasattr(os, "memfd_create") and threading.active_count() == 1


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


def write_object(fd: int, obj: Any) -> None:
    """Write `obj` into the (empty) file `fd` for `read_object`."""
    buffers: list[pickle.PickleBuffer] = []
    head = io.BytesIO()
    _Pickler(head, protocol=5, buffer_callback=buffers.append).dump(obj)
    raws = [b.raw() for b in buffers]
    table = np.zeros(2 * len(raws) + 2, dtype=np.int64)
    table[:2] = len(raws), head.tell()
    offset = _aligned(table.nbytes + head.tell())
    for i, raw in enumerate(raws):
        table[2 + 2 * i : 4 + 2 * i] = offset, raw.nbytes
        offset = _aligned(offset + raw.nbytes)
    with os.fdopen(fd, "wb", closefd=False) as f:
        f.write(table.tobytes())
        f.write(head.getbuffer())
        for (start, _), raw in zip(table[2:].reshape(-1, 2).tolist(), raws, strict=True):
            f.seek(start)
            f.write(raw)


def read_object(fd: int) -> Any:
    """The object `write_object` left in `fd`; its numpy arrays are backed by a mapping of the file."""
    size = os.fstat(fd).st_size
    if size < 16:
        raise EOFError("nothing was written")
    data = memoryview(mmap.mmap(fd, size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)))
    count, head_size = np.frombuffer(data, dtype=np.int64, count=2).tolist()
    table = np.frombuffer(data, dtype=np.int64, count=2 * count, offset=16).reshape(-1, 2).tolist()
    start = 16 + 16 * count
    return pickle.loads(data[start : start + head_size], buffers=[data[a : a + n] for a, n in table])


def _aligned(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is np.ndarray and obj.dtype == object and obj.ndim == 1:
            return _object_column(obj)
        return NotImplemented


def _object_column(arr: np.ndarray) -> tuple[Any, tuple[Any, ...]]:
    """How to rebuild a 1-D object array, read-only if it was: from one joined blob when it holds only
    str (or only bytes) without newlines, else from a list."""
    values = arr.tolist()
    writeable = bool(arr.flags.writeable)
    try:  # str.join takes only str: no need to look at every type first
        blob, kind = "\n".join(values).encode("utf-8", "surrogatepass"), "str"
    except TypeError:
        if set(map(type, values)) != {bytes}:
            return _rebuild_objects, (values, writeable)
        blob, kind = b"\n".join(values), "bytes"
    if blob.count(b"\n") != len(values) - 1:
        return _rebuild_objects, (values, writeable)
    return _rebuild_text_column, (pickle.PickleBuffer(blob), kind, writeable)  # the blob out of band


def _rebuild_text_column(blob: Any, kind: str, writeable: bool) -> np.ndarray:
    if kind == "str":
        return _rebuild_objects(str(blob, "utf-8", "surrogatepass").split("\n"), writeable)
    return _rebuild_objects(bytes(blob).split(b"\n"), writeable)


def _rebuild_objects(values: list[Any], writeable: bool) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    arr.flags.writeable = writeable
    return arr
