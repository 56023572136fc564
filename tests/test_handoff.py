"""Objects handed between processes through a memory file: equal after the trip, arrays mapped."""

from __future__ import annotations

import os

import numpy as np
import pytest

from kpmerge import handoff

pytestmark = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memory files are Linux-only")


def _trip(obj):
    fd = os.memfd_create("test")
    try:
        handoff.write_object(fd, obj)
        return handoff.read_object(fd)
    finally:
        os.close(fd)


def _objects(values, writeable=True):
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    arr.flags.writeable = writeable
    return arr


@pytest.mark.parametrize(
    "values",
    [
        ["a", "b/human1", "", "é ü 中", "\ud800 lone surrogate"],  # text, joined into one blob
        [b'"url":"x"', b"", b"\xff raw"],
        ["with\nnewline", "plain"],  # a newline inside: pickled one by one instead
        [b"a\nb", b"c"],
        [1, "mixed", None],
        ["only"],
        [""],
    ],
)
def test_object_columns_come_back_equal_with_their_flags(values):
    for writeable in (True, False):
        back = _trip({"col": _objects(values, writeable)})["col"]
        assert back.dtype == object and back.tolist() == values
        assert back.flags.writeable is writeable


def test_numeric_arrays_come_back_equal_and_mapped():
    kp = np.arange(2 * 14 * 3, dtype=np.float64).reshape(2, 14, 3)
    kp.flags.writeable = False
    back = _trip((kp, np.array([1, 2], dtype=np.int64), "name"))
    np.testing.assert_array_equal(back[0], kp)
    assert back[0].dtype == kp.dtype and not back[0].flags.writeable
    assert not back[0].flags.owndata  # a view of the mapped file, not a copy
    assert back[1].tolist() == [1, 2] and back[2] == "name"


def test_an_empty_file_is_an_error():
    fd = os.memfd_create("test")
    try:
        with pytest.raises(EOFError):
            handoff.read_object(fd)
    finally:
        os.close(fd)
