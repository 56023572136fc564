"""The one validator of the readers: each rule is checked once and reported to a `Sink`.

A sink either raises (merge, combine: `KpmergeError` naming the file and the JSON path of the first
offending value) or records (`kpmerge inspect`: one `Problem` per rule broken, with a count and the
first few ids). A reader takes one pass over its file with either sink; there is no second, lenient
reader. Rules that leave nothing to read (a value that is not a finite number, a wrong type) raise
with both sinks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from ..errors import KpmergeError
from ..instances import Problem

EXAMPLES = 5
"""How many example ids a recorded problem keeps."""

Where = Callable[[int], str]
"""The JSON path of row j (e.g. `$.annotations[12]`)."""


def problem(
    kind: str, count: int, examples: Sequence[Hashable], message: str, severity: str = "error"
) -> Problem:
    """A Problem record: `count` records have it, `examples` are the ids of the first few."""
    return Problem(kind, severity, int(count), tuple(examples[:EXAMPLES]), message)


def mask_problem(
    kind: str, mask: npt.NDArray[np.bool_], ids: Sequence[Hashable], message: str, severity: str = "error"
) -> Problem:
    """A Problem for the rows where `mask` is true (ids of the first few as examples)."""
    rows = np.flatnonzero(mask)[:EXAMPLES].tolist()
    return problem(kind, int(np.count_nonzero(mask)), [ids[j] for j in rows], message, severity)


class Sink:
    """Where a reader's checks report: raise at the first problem, or record every kind.

    Args:
        file: The file read, for messages.
        record: Record problems in `problems` instead of raising (lenient reading, for inspect).
    """

    def __init__(self, file: str | Path | None = None, record: bool = False) -> None:
        self.file = file
        self.record = record
        self.problems: list[Problem] = []

    def fail(self, message: str, json_path: str | None = None) -> NoReturn:
        """Raise for a problem that leaves nothing to read, whatever the sink records."""
        raise KpmergeError(message, self.file, json_path)

    def rule(
        self,
        kind: str,
        mask: npt.NDArray[np.bool_],
        ids: Sequence[Hashable],
        message: str,
        error: Callable[[int], tuple[str, str]],
    ) -> bool:
        """Report the rows where `mask` is true as one problem; whether there were any.

        Args:
            kind: The problem's short name (e.g. `bad_visibility`).
            mask: (N,) true for rows that break the rule.
            ids: (N,) the rows' ids, for the recorded examples.
            message: The recorded problem's sentence.
            error: For the first such row j, the raised error's message and JSON path.
        """
        if not mask.any():
            return False
        if not self.record:
            self.fail(*error(int(np.argmax(mask))))
        self.problems.append(mask_problem(kind, mask, ids, message))
        return True


def check_finite(values: npt.NDArray[np.float64], sink: Sink, where: Where, name: str) -> None:
    """Raise for the first value of (N, M) `values` that is not a finite number (at `where(j).name[c]`)."""
    bad = ~np.isfinite(values)
    if bad.any():
        j, c = (int(x) for x in np.argwhere(bad)[0])
        member = f".{name}" if name else ""
        sink.fail(f"expected a finite number, got {values[j, c]}", f"{where(j)}{member}[{c}]")


def check_range(
    values: npt.NDArray[np.float64], low: float, inclusive: bool, sink: Sink, where: Where, name: str
) -> None:
    """Raise for the first value below `low` (or equal, unless `inclusive`); NaN (missing) passes."""
    bad = values < low if inclusive else values <= low
    if bad.any():
        j = int(np.argmax(bad))
        op = ">=" if inclusive else ">"
        sink.fail(f"expected a number {op} {low:g}, got {values[j]:g}", f"{where(j)}.{name}")


def check_visibility(
    vis: npt.NDArray[np.float64],
    allowed: tuple[float, ...],
    sink: Sink,
    ids: Sequence[Hashable],
    message: str,
    error: Callable[[int, int], tuple[str, str]],
) -> npt.NDArray[np.bool_]:
    """Report rows of (N, K) `vis` holding a value not in `allowed`; the (N, K) mask of those values.

    `error(j, k)` gives the raised message and path for the first bad value (row j, keypoint k).
    """
    bad = np.ones(vis.shape, dtype=bool)
    for value in allowed:
        bad &= vis != value
    rows = bad.any(axis=1)

    def first(j: int) -> tuple[str, str]:
        return error(j, int(np.argmax(bad[j])))

    sink.rule("bad_visibility", rows, ids, message, first)
    return bad


def check_unique(
    ids: Sequence[Hashable], sink: Sink, kind: str, message: str, error: Callable[[int, int], tuple[str, str]]
) -> None:
    """Report ids that appeared before; `error(j, first)` names row j and the row that had it first."""
    if len(set(ids)) == len(ids):
        return
    if sink.record:
        counts = Counter(ids)
        dupes = [v for v, c in counts.items() if c > 1]
        sink.problems.append(problem(kind, len(ids) - len(counts), dupes, message))
        return
    seen: dict[Hashable, int] = {}
    for j, v in enumerate(ids):
        if v in seen:
            sink.fail(*error(j, seen[v]))
        seen[v] = j
