"""What the kpmerge commands tell people on stderr: progress bars and the summary of a run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .build import Merged
from .output import missing_sizes


class ProgressBars:
    """Draws the library's progress as tqdm bars on stderr (a bar shows once its step takes over 1 s)."""

    def __init__(self) -> None:
        self.step: str | None = None
        self.bar: Any = None
        self.bar_delay = 1.0

    def __call__(self, step: str, done: int, total: int) -> None:
        if step != self.step:
            self.close()
            from tqdm import tqdm

            # No monitor thread: kpmerge forks helper processes only while it runs a single thread.
            tqdm.monitor_interval = 0
            unit = {"read": "source", "write": "record"}.get(step, "step")
            self.bar = tqdm(
                total=total, desc=step, unit=unit, file=sys.stderr, disable=None, delay=self.bar_delay
            )
            self.step = step
        if done:
            self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = self.step = None


def summary(merged: Merged, out: Path) -> str:
    """A short table for people: per source, records read, written and not written by reason."""
    rows = [("source", "format", "layout", "images", "read", "written", "not written", "keypoints")]
    for s in merged.sources:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.not_written.items())) or "0"
        kp = f"{len(s.mapping.pairs)}/{len(merged.layout)}"
        rows.append(
            (
                s.name,
                str(s.meta.get("format", "")),
                s.layout,
                str(s.images_written),
                str(s.annotations_read),
                str(s.annotations_written),
                reasons,
                kp,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    head = (
        f"kpmerge {merged.mode}: {len(merged.dataset.instances)} annotations in layout {merged.layout.name} "
        f"({len(merged.layout)} keypoints) -> {out}"
    )
    notes = [f"note: {s.name}: {n}" for s in merged.sources for n in s.notes]
    notes += [
        f"note: {s.name}: {a} matched {b} by synonym" for s in merged.sources for a, b in s.mapping.aliases
    ]
    notes += [
        f"note: {s.name}: target keypoints left unmapped: "
        + ", ".join(merged.layout.keypoints[t] for t in s.mapping.unmapped)
        for s in merged.sources
        if s.mapping.unmapped
    ]
    sizes = missing_sizes(merged)
    if sizes is not None:
        notes.append(
            f"note: {sizes['images']} images have no width/height: {', '.join(sizes['cannot_load'])} cannot "
            f"load this output ({', '.join(sizes['can_load'])} can)"
        )
    return "\n".join([head, *lines, *notes])
