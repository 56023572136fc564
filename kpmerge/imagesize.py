"""Image width and height from file headers (JPEG, PNG, GIF, BMP), without decoding pixels."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import KpmergeError


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header.

    Raises:
        KpmergeError: when the file is missing or its header is not one of JPEG, PNG, GIF or BMP.
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            head = f.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return w, h
            if head[:6] in (b"GIF87a", b"GIF89a"):
                w, h = struct.unpack("<HH", head[6:10])
                return w, h
            if head.startswith(b"BM") and len(head) >= 26:
                w, h = struct.unpack("<ii", head[18:26])
                return w, abs(h)
            if head.startswith(b"\xff\xd8"):
                f.seek(2)
                return _jpeg_size(f, p)
    except FileNotFoundError:
        raise KpmergeError("image not found (needed for its width and height)", file=p) from None
    except OSError as exc:
        raise KpmergeError(f"cannot read image: {exc.strerror or exc}", file=p) from None
    raise KpmergeError("not a JPEG, PNG, GIF or BMP image: cannot read its size", file=p)


def _jpeg_size(f, p: Path) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    # Walk the markers up to a start-of-frame (SOF0..SOF15 but DHT, JPG and DAC), which holds the size.
    while True:
        byte = f.read(1)
        while byte and byte != b"\xff":
            byte = f.read(1)
        while byte == b"\xff":
            byte = f.read(1)
        if not byte:
            break
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        length_bytes = f.read(2)
        if len(length_bytes) < 2:
            break
        (length,) = struct.unpack(">H", length_bytes)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            data = f.read(5)
            if len(data) < 5:
                break
            h, w = struct.unpack(">HH", data[1:5])
            return w, h
        f.seek(length - 2, 1)
    raise KpmergeError("JPEG without a readable frame header: cannot read its size", file=p)


def folder_sizes(
    folder: str | Path | None, file_names: Sequence[str], kind: str
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Widths, heights (float64) and notes for images `file_names` of `folder`, for a file format whose
    records hold no sizes (`kind`, e.g. "MPII files"): without a folder NaN, and a note that says so.
    """
    n = len(file_names)
    if folder is None:
        note = f"{kind} hold no image sizes: width and height left out (give an image folder to read them)"
        return np.full(n, np.nan), np.full(n, np.nan), (note,) if n else ()
    sizes = [image_size(Path(folder) / name) for name in file_names]
    return (
        np.array([w for w, _ in sizes], dtype=np.float64).reshape(n),
        np.array([h for _, h in sizes], dtype=np.float64).reshape(n),
        (),
    )
