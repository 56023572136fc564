"""`kpmerge inspect`'s report as aligned text tables for people."""

from __future__ import annotations

from collections.abc import Sequence

from .inspect_report import KeypointCounts, Report
from .leftright import table as left_right_table


def _table(rows: list[list[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(r: list[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(rows[0]), "  ".join("-" * w for w in widths), *(line(r) for r in rows[1:])]


def _pct(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "-"


def _keypoint_rows(counts: Sequence[KeypointCounts], total: int) -> list[str]:
    rows = [["keypoint", "labelled", "%", "visible", "%", "occluded", "%", "unlabelled", "%"]]
    for k in counts:
        rows.append(
            [k.name]
            + [
                cell
                for c in (k.labelled, k.visible, k.occluded, k.unlabelled)
                for cell in (str(c), _pct(c, total))
            ]
        )
    return _table(rows, right=range(1, 9))


def format_report(report: Report) -> str:
    """The report as aligned text tables for people."""
    out: list[str] = []
    for f in report.files:
        lay = (
            f"{f.layout} ({len(f.keypoints)} keypoints)"
            if f.layout
            else f"unknown ({len(f.keypoints)} keypoints)"
        )
        out.append(f"== {f.path}")
        out.append(f"format {f.format}, layout {lay}")
        out.append(
            f"images {f.images}, annotations {f.annotations}, trainable {f.trainable}, crowd {f.crowd}"
        )
        out.append("")
        out += _keypoint_rows(f.keypoints, f.annotations)
        if f.sources:
            out.append("")
            out.append("per source: labelled rate ('n/d': the source does not define the keypoint)")
            rows = [["keypoint", *(s.name for s in f.sources)]]
            rows.append(["annotations", *(str(s.annotations) for s in f.sources)])
            rows.append(["trainable", *(str(s.trainable) for s in f.sources)])
            for i, name in enumerate(f.keypoint_names):
                cells = []
                for s in f.sources:
                    k = s.keypoints[i]
                    cells.append("n/d" if k.defined is False else _pct(k.labelled, s.annotations))
                rows.append([name, *cells])
            out += _table(rows, right=range(1, len(f.sources) + 1))
        columns = [(s.name, s.left_right) for s in f.sources] if f.sources else [("share", f.left_right)]
        sides = left_right_table(columns)
        if len(sides) > 1:
            out.append("")
            out.append("left/right: share of front-facing people with x(left) > x(right), and of same-side")
            out.append("links shorter than the link to the other side (correct data: well above 50%)")
            out += _table(sides, right=range(1, len(columns) + 1))
        out.append("")
        if f.problems:
            rows = [["severity", "kind", "count", "examples", "what"]]
            for p in f.problems:
                examples = ", ".join(str(e) for e in p.examples) + (
                    ", ..." if p.count > len(p.examples) else ""
                )
                rows.append([p.severity, p.kind, str(p.count), examples, p.message])
            out += _table(rows, right=[2])
        else:
            out.append("no problems")
        out += [f"note: {n}" for n in f.notes]
        out.append("")
    if report.overlap is not None:
        ov = report.overlap
        labels = [f"[{i + 1}]" for i in range(len(ov.labels))]
        out.append("== keypoint names across inputs")
        out += [f"{label} {path}" for label, path in zip(labels, ov.labels, strict=True)]
        rows = [["keypoint", *labels]]
        rows += [[n, *("x" if p else "." for p in row)] for n, row in zip(ov.names, ov.present, strict=True)]
        out += _table(rows)
        out.append(f"shared by all: {len(ov.shared)}")
        for label, i in zip(labels, range(len(labels)), strict=True):
            only = ov.unique(i)
            out.append(f"only in {label}: {', '.join(only) if only else '-'}")
        out.append("")
        for m, label in zip(report.mappings, labels[1:], strict=True):
            head = f"auto mapping {label} -> [1]: "
            if m.error:
                out.append(head + f"not possible: {m.error}")
                continue
            out.append(head + f"{len(m.pairs)} pairs")
            if m.aliases:
                out.append("  by synonym: " + ", ".join(f"{a} -> {b}" for a, b in m.aliases))
            out.append("  dropped: " + (", ".join(m.dropped) or "-"))
            out.append("  unmapped in [1]: " + (", ".join(m.unmapped) or "-"))
        out.append("")
    errors, warnings = report.count("error"), report.count("warning")
    out.append(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
    return "\n".join(out)
