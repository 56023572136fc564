"""metainfo.json and metainfo.py: a layout's names, flips, links, weights and sigmas, and per source the
keypoints it defines (metainfo.py is an MMPose `dataset_info` file)."""

from __future__ import annotations

from typing import Any

from .build import Merged
from .layouts import Layout


def layout_metainfo(layout: Layout) -> dict[str, Any]:
    """A layout's metainfo: names, flip indices and pairs, links, weights, sigmas, body halves."""
    return {
        "dataset_name": layout.name,
        "num_keypoints": len(layout),
        "keypoints": list(layout.keypoints),
        "flip_indices": layout.flip_indices,
        "flip_pairs": layout.flip_pairs,
        "skeleton": layout.skeleton_ids,
        "skeleton_names": [list(link) for link in layout.skeleton],
        "joint_weights": list(layout.joint_weights),
        "sigmas": list(layout.sigmas),
        "upper_body_ids": layout.upper_body_ids,
        "lower_body_ids": layout.lower_body_ids,
        "layout": layout.to_dict(),
    }


def metainfo(merged: Merged) -> dict[str, Any]:
    """metainfo.json: the target layout plus, per source, defined keypoints and evaluation indices."""
    out = layout_metainfo(merged.layout)
    out["sources"] = [
        {
            "name": s.name,
            "layout": s.layout,
            "defined_keypoints": s.mapping.defined,
            "eval_indices": s.eval_indices,
            "mapping": s.mapping.index_pairs(),
        }
        for s in merged.sources
    ]
    return out


def metainfo_py(merged: Merged) -> str:
    """metainfo.py: an MMPose `dataset_info` file (load with `metainfo=dict(from_file=...)`)."""
    lay = merged.layout
    names = ", ".join(s.name for s in merged.sources)
    lines = [
        f"# MMPose dataset_info written by kpmerge {merged.mode} of {names}.",
        "# Load it with metainfo=dict(from_file='.../metainfo.py').",
        "dataset_info = dict(",
        f"    dataset_name={lay.name!r},",
        f"    paper_info={_paper(lay)!r},",
        "    keypoint_info={",
    ]
    for i, name in enumerate(lay.keypoints):
        color = list(lay.colors[i]) if lay.colors else [255, 128, 0]
        lines.append(
            f"        {i}: dict(name={name!r}, id={i}, color={color!r}, type={lay.types[i]!r}, "
            f"swap={lay.swaps[i]!r}),"
        )
    lines.append("    },")
    lines.append("    skeleton_info={")
    for i, (a, b) in enumerate(lay.skeleton):
        color = list(lay.skeleton_colors[i]) if lay.skeleton_colors else [0, 255, 0]
        lines.append(f"        {i}: dict(link=({a!r}, {b!r}), id={i}, color={color!r}),")
    lines.append("    },")
    lines.append(f"    joint_weights={list(lay.joint_weights)!r},")
    lines.append(f"    sigmas={list(lay.sigmas)!r},")
    lines.append(")")
    lines.append("")
    lines.append("# Target keypoints each source defines (1 = annotated by that dataset, for loss masks).")
    lines.append("source_keypoints = {")
    lines += [f"    {s.name!r}: {s.mapping.defined!r}," for s in merged.sources]
    lines.append("}")
    lines.append(
        "# Positions of each source's own keypoints in this layout (MMPose output_keypoint_indices)."
    )
    lines.append("eval_indices = {")
    lines += [f"    {s.name!r}: {s.eval_indices!r}," for s in merged.sources]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _paper(layout: Layout) -> Any:
    papers = list(layout.paper_info)
    return papers[0] if len(papers) == 1 else papers
