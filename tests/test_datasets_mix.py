"""Files shaped like seven datasets' merged into coco and halpe26 with `auto` mappings (aliases, flips)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kpmerge.job import Job, SourceSpec, build_job
from kpmerge.layouts import builtin_layout
from kpmerge.synth_styles import synth_style
from tests.conftest import fixture, needs_fixtures
from tests.synthfiles import load, mpii_file, style_file, write_json

SOURCES = {
    "coco": ("coco", 4, 14),
    "aic": ("aic", 3, 9),
    "crowdpose": ("crowdpose", 2, 5),
    "mpii": ("mpii", 5, 5),
    "jhmdb": ("jhmdb", 3, 3),
    "halpe": ("halpe", 4, 14),
    "posetrack18": ("posetrack18", 3, 14),
}
"""name: (detected layout, images, annotations): the sizes of MMPose's test files of each dataset."""
MMPOSE_FILES = {
    "coco": "coco/test_coco.json",
    "aic": "aic/test_aic.json",
    "crowdpose": "crowdpose/test_crowdpose.json",
    "mpii": "mpii/test_mpii.json",
    "jhmdb": "jhmdb/test_jhmdb_sub1.json",
    "halpe": "halpe/test_halpe.json",
    "posetrack18": "posetrack18/test_posetrack18_val.json",
}

_HALPE_EXTRA = 136 - 26
# target -> source -> (pairs matched through the alias table, source keypoints dropped or their count)
EXPECTED = {
    "coco": {
        "coco": ([], []),
        "aic": ([], ["head_top", "neck"]),
        "crowdpose": ([], ["top_head", "neck"]),
        "mpii": ([], ["pelvis", "thorax", "upper_neck", "head_top"]),
        "jhmdb": ([], ["neck", "belly", "head"]),
        "halpe": ([], 136 - 17),
        "posetrack18": ([], ["head_bottom", "head_top"]),
    },
    "halpe26": {
        "coco": ([], []),
        "aic": ([["head_top", "head"]], []),
        "crowdpose": ([["top_head", "head"]], []),
        "mpii": ([["head_top", "head"], ["upper_neck", "neck"]], ["pelvis", "thorax"]),
        "jhmdb": ([], ["belly"]),
        "halpe": ([], _HALPE_EXTRA),
        "posetrack18": ([["head_top", "head"]], ["head_bottom"]),
    },
}


def _halpe_over_coco(coco: dict) -> dict:
    """A Halpe-style document of the same people as `coco`: its first 17 keypoints are COCO's."""
    halpe = synth_style("halpe", images=len(coco["images"]), people=len(coco["annotations"]))
    for h, c in zip(halpe["annotations"], coco["annotations"], strict=True):
        h["keypoints"][: 17 * 3] = c["keypoints"]
        h["num_keypoints"] = sum(1 for v in h["keypoints"][2::3] if v > 0)
    return halpe


def _synth_specs(folder: Path) -> tuple[SourceSpec, ...]:
    """One file per dataset, of the sizes in SOURCES (MPII with the image folder that gives sizes)."""
    specs = []
    coco = synth_style("coco", images=4, people=14)
    for name, (_layout, images, anns) in SOURCES.items():
        image_dir = None
        if name == "mpii":
            path, image_dir = mpii_file(folder, images=images, people=anns)
        elif name == "coco":
            path = write_json(folder / "coco.json", coco)
        elif name == "halpe":
            path = write_json(folder / "halpe.json", _halpe_over_coco(coco))
        else:
            path = style_file(folder, name, images=images, people=anns)
        specs.append(SourceSpec(path=path, name=name, image_dir=image_dir))
    return tuple(specs)


def _job(target: str, specs: tuple[SourceSpec, ...], allow_missing_sizes: bool = False) -> Job:
    return Job("merge", specs, Path("unused"), target=target, allow_missing_sizes=allow_missing_sizes)


def _check_mix(merged, target: str) -> None:
    assert merged.layout.name == target
    assert [s.name for s in merged.sources] == list(SOURCES)
    for report in merged.sources:
        layout, images, anns = SOURCES[report.name]
        aliases, dropped = EXPECTED[target][report.name]
        m = report.mapping
        assert report.layout == layout
        assert (report.images_written, report.annotations_read, report.annotations_written) == (
            images,
            anns,
            anns,
        )
        assert [list(a) for a in m.aliases] == aliases
        got_dropped = [m.source.keypoints[i] for i in m.dropped]
        assert (len(got_dropped) if isinstance(dropped, int) else got_dropped) == dropped
        # every other pair is the same name on both sides
        alias_set = {tuple(a) for a in aliases}
        for s, t in m.name_pairs():
            assert s == t or (s, t) in alias_set
        assert len(m.pairs) == len(m.source) - len(got_dropped)
        # flips are consistent: the mirror of every pair is a pair
        sflip, tflip = m.source.flip_indices, m.target.flip_indices
        single = {term[0]: t for term, t in m.pairs}
        for s, t in single.items():
            assert single[sflip[s]] == tflip[t]
    assert len(merged.dataset.instances) == sum(a for *_x, a in SOURCES.values())


@pytest.mark.parametrize("target", ["coco", "halpe26"])
def test_mix_all_datasets(tmp_path, target):
    _check_mix(build_job(_job(target, _synth_specs(tmp_path))), target)


@needs_fixtures
def test_mix_mmpose_files():
    specs = tuple(SourceSpec(path=fixture(rel), name=name) for name, rel in MMPOSE_FILES.items())
    for target in ("coco", "halpe26"):
        _check_mix(build_job(_job(target, specs, allow_missing_sizes=True)), target)  # MPII: no sizes


def test_mix_values_land_on_names(tmp_path):
    specs = _synth_specs(tmp_path)
    merged = build_job(_job("halpe26", specs))
    lay = merged.layout
    kp = merged.dataset.instances.keypoints
    ranges = {s.name: slice(*s.annotation_range) for s in merged.sources}
    path = {s.name: s.path for s in specs}
    # MPII upper_neck (8) and head_top (9), 1-based in the file, are halpe26 neck and head, 0-based
    for row, rec in zip(kp[ranges["mpii"]], load(path["mpii"]), strict=True):
        for j, name in ((8, "neck"), (9, "head")):
            (x, y), vis = rec["joints"][j], rec["joints_vis"][j]
            assert row[lay.index(name)].tolist() == ([x - 1, y - 1, 2] if vis else [0, 0, 0])
    # JHMDB is 1-based too; every keypoint but belly has a place in halpe26
    jhmdb = builtin_layout("jhmdb")
    for row, ann in zip(kp[ranges["jhmdb"]], load(path["jhmdb"])["annotations"], strict=True):
        src = np.array(ann["keypoints"]).reshape(-1, 3)
        for j, name in enumerate(jhmdb.keypoints):
            x, y, v = src[j]
            if name != "belly":
                assert row[lay.index(name)].tolist() == ([x - 1, y - 1, v] if v else [0, 0, 0])
    for row, ann in zip(kp[ranges["halpe"]], load(path["halpe"])["annotations"], strict=True):
        assert row.reshape(-1).tolist() == ann["keypoints"][: 26 * 3]
    assert np.count_nonzero(kp[ranges["mpii"], :, 2]) > 0 and np.count_nonzero(kp[ranges["jhmdb"], :, 2]) > 0


def test_halpe_body_equals_coco_in_coco_target(tmp_path):
    merged = build_job(_job("coco", _synth_specs(tmp_path)))
    kp = merged.dataset.instances.keypoints
    ranges = {s.name: slice(*s.annotation_range) for s in merged.sources}
    assert np.array_equal(kp[ranges["halpe"]], kp[ranges["coco"]])


def test_extra_fields_pass_through_unchanged(tmp_path):
    """PoseTrack18's track_id, bbox_head, scores and frame fields, CrowdPose's crowdIndex, AIC's url, JHMDB's
    video fields: every member kpmerge does not interpret is written as it was read."""
    from kpmerge.job import run_job

    names = ["posetrack18", "crowdpose", "aic", "jhmdb", "ochuman"]
    paths = {n: style_file(tmp_path / "in", n, people=5) for n in names}
    out = tmp_path / "out"
    run_job(Job("combine", tuple(SourceSpec(path=p, name=n) for n, p in paths.items()), out))
    doc = load(out / "annotations.json")
    own = {"id", "image_id", "category_id", "keypoints", "bbox", "area", "iscrowd", "num_keypoints"}
    for name, path in paths.items():
        src = load(path)
        images = [i for i in doc["images"] if i["source"] == name]
        anns = [a for a in doc["annotations"] if a["source"] == name]
        assert [i["source_id"] for i in images] == [i["id"] for i in src["images"]]
        for got, want in zip(images, src["images"], strict=True):
            extra = {k: v for k, v in want.items() if k not in ("id", "file_name", "width", "height")}
            assert {k: got[k] for k in extra} == extra, name
            assert (got["width"], got["height"]) == (want["width"], want["height"])
        for got, want in zip(anns, src["annotations"], strict=True):
            extra = {k: v for k, v in want.items() if k not in own}
            assert {k: got[k] for k in extra} == extra, name
    tracks = [a for a in doc["annotations"] if a["source"] == "posetrack18"]
    assert [a["track_id"] for a in tracks] == list(range(5)) and all("bbox_head" in a for a in tracks)
    assert all("crowdIndex" in i for i in doc["images"] if i["source"] == "crowdpose")
