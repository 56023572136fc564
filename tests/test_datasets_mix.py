"""All seven fixture datasets merged into coco and into halpe26 with `auto` mappings (aliases, flips)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kpmerge.job import Job, SourceSpec, build_job
from tests.conftest import fixture, needs_fixtures

SOURCES = {
    "coco": ("coco/test_coco.json", "coco", 4, 14),
    "aic": ("aic/test_aic.json", "aic", 3, 9),
    "crowdpose": ("crowdpose/test_crowdpose.json", "crowdpose", 2, 5),
    "mpii": ("mpii/test_mpii.json", "mpii", 5, 5),
    "jhmdb": ("jhmdb/test_jhmdb_sub1.json", "jhmdb", 3, 3),
    "halpe": ("halpe/test_halpe.json", "halpe", 4, 14),
    "posetrack18": ("posetrack18/test_posetrack18_val.json", "posetrack18", 3, 14),
}
"""name: (file, detected layout, images, annotations)."""

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


def _job(target: str) -> Job:
    specs = tuple(SourceSpec(path=fixture(rel), name=name) for name, (rel, *_rest) in SOURCES.items())
    return Job("merge", specs, fixture("unused"), target=target, allow_missing_sizes=True)  # MPII: no sizes


@needs_fixtures
@pytest.mark.parametrize("target", ["coco", "halpe26"])
def test_mix_all_fixtures(target):
    merged = build_job(_job(target))
    assert merged.layout.name == target
    assert [s.name for s in merged.sources] == list(SOURCES)
    for report in merged.sources:
        _rel, layout, images, anns = SOURCES[report.name]
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


@needs_fixtures
def test_mix_values_land_on_names():
    merged = build_job(_job("halpe26"))
    lay = merged.layout
    kp = merged.dataset.instances.keypoints
    first = {s.name: s.annotation_range[0] for s in merged.sources}
    mpii = json.loads(fixture(SOURCES["mpii"][0]).read_text())[0]
    # MPII upper_neck (8) and head_top (9), 1-based in the file, are halpe26 neck and head, 0-based
    assert kp[first["mpii"], lay.index("neck")].tolist() == [
        mpii["joints"][8][0] - 1,
        mpii["joints"][8][1] - 1,
        2,
    ]
    assert kp[first["mpii"], lay.index("head")].tolist() == [
        mpii["joints"][9][0] - 1,
        mpii["joints"][9][1] - 1,
        2,
    ]
    halpe = json.loads(fixture(SOURCES["halpe"][0]).read_text())["annotations"][0]["keypoints"]
    assert np.array_equal(kp[first["halpe"]].reshape(-1), np.array(halpe[: 26 * 3], dtype=float))


@needs_fixtures
def test_halpe_body_equals_coco_in_coco_target():
    merged = build_job(_job("coco"))
    kp = merged.dataset.instances.keypoints
    ranges = {s.name: slice(*s.annotation_range) for s in merged.sources}
    assert np.array_equal(kp[ranges["halpe"]], kp[ranges["coco"]])
