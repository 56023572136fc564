"""kpmerge.formats.checks: each rule written once, reported to a sink that raises or records."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest

from kpmerge.errors import KpmergeError
from kpmerge.formats.checks import Sink, check_finite, check_range, check_unique, check_visibility, problem
from kpmerge.instances import Problem

IDS = ["a", "b", "c", "d", "e", "f", "g"]


def _where(j: int) -> str:
    return f"$.rows[{j}]"


@pytest.mark.parametrize(
    ("record", "mask", "expected", "raises"),
    [
        (False, [False, False], [], nullcontext()),
        (True, [False, False], [], nullcontext()),
        (False, [False, True], [], pytest.raises(KpmergeError, match=r"^f\.json: \$\.rows\[1\]: bad 1$")),
        (
            True,
            [False, True, True],
            [Problem("k", "error", 2, ("b", "c"), "rows that are bad")],
            nullcontext(),
        ),
        (
            True,
            [True] * 7,
            [Problem("k", "error", 7, ("a", "b", "c", "d", "e"), "rows that are bad")],
            nullcontext(),
        ),
    ],
)
def test_rule_raises_or_records(record, mask, expected, raises):
    sink = Sink("f.json", record=record)
    with raises:
        found = sink.rule("k", np.array(mask), IDS, "rows that are bad", lambda j: (f"bad {j}", _where(j)))
        assert found == any(mask)
    assert sink.problems == expected


@pytest.mark.parametrize("record", [False, True])
def test_values_that_leave_nothing_to_read_raise_with_both_sinks(record):
    sink = Sink("f.json", record=record)
    with pytest.raises(KpmergeError, match=r"\$\.rows\[1\]\.kp\[2\]: expected a finite number, got nan"):
        check_finite(np.array([[1.0, 2, 3], [1, 2, np.nan]]), sink, _where, "kp")
    with pytest.raises(KpmergeError, match=r"\$\.rows\[0\]\.area: expected a number >= 0, got -1"):
        check_range(np.array([-1.0, np.nan]), 0, True, sink, _where, "area")
    check_range(np.array([0.0, np.nan]), 0, True, sink, _where, "area")  # NaN is missing, not bad
    assert sink.problems == []


@pytest.mark.parametrize(
    ("ids", "record", "expected", "raises"),
    [
        ([1, 2, 3], False, [], nullcontext()),
        (
            [1, 2, 1, 2, 1],
            False,
            [],
            pytest.raises(KpmergeError, match=r"\$\.rows\[2\]: 1 again, first at 0$"),
        ),
        ([1, 2, 1, 2, 1], True, [Problem("dup", "error", 3, (1, 2), "seen before")], nullcontext()),
    ],
)
def test_check_unique(ids, record, expected, raises):
    sink = Sink("f.json", record=record)
    with raises:
        check_unique(
            ids, sink, "dup", "seen before", lambda j, first: (f"{ids[j]} again, first at {first}", _where(j))
        )
    assert sink.problems == expected


def test_check_visibility_names_the_first_bad_value_and_masks_all():
    vis = np.array([[0.0, 1, 2], [2, 7, 3]])
    sink = Sink("f.json", record=True)
    bad = check_visibility(vis, (0, 1, 2), sink, IDS, "bad v", lambda j, k: (f"{vis[j, k]:g}", _where(j)))
    assert bad.tolist() == [[False, False, False], [False, True, True]]
    assert sink.problems == [Problem("bad_visibility", "error", 1, ("b",), "bad v")]
    with pytest.raises(KpmergeError, match=r"\$\.rows\[1\]\[1\]: 7$"):
        check_visibility(vis, (0, 1, 2), Sink("f.json"), IDS, "", lambda j, k: ("7", f"{_where(j)}[{k}]"))


def test_problem_keeps_five_examples():
    assert problem("x", 9, list(range(9)), "m", "warning") == Problem("x", "warning", 9, (0, 1, 2, 3, 4), "m")
