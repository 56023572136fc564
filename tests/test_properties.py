"""Property-based tests over random layouts, mappings and instances (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kpmerge.build import Source, combine, merge, union_layout
from kpmerge.formats.coco import coco_to_dataset
from kpmerge.instances import Dataset, Images, Instances
from kpmerge.layouts import Layout
from kpmerge.mapping import apply_mapping, build_mapping
from kpmerge.output import annotations_bytes, output_files

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A pool of keypoint names: n0..n5 are left/right pairs (n0-n1, n2-n3, n4-n5), n6..n11 flip onto themselves.
POOL = [f"n{i}" for i in range(12)]
PARTNER = {"n0": "n1", "n1": "n0", "n2": "n3", "n3": "n2", "n4": "n5", "n5": "n4"}
GROUPS = [("n0", "n1"), ("n2", "n3"), ("n4", "n5"), *[(n,) for n in POOL[6:]]]


def _layout(name: str, names: list[str], links: list[tuple[int, int]]) -> Layout:
    k = len(names)
    return Layout(
        name=name,
        keypoints=tuple(names),
        swaps=tuple(PARTNER.get(n, "") if PARTNER.get(n) in names else "" for n in names),
        types=("",) * k,
        skeleton=tuple((names[a % k], names[b % k]) for a, b in links if a % k != b % k),
        joint_weights=(1.0,) * k,
        sigmas=(0.05,) * k,
    )


@st.composite
def layouts(draw, name: str = "lay") -> Layout:
    """A layout of 1..12 pool names; a left/right pair is either wholly in or wholly out."""
    groups = draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=len(GROUPS), unique=True))
    names = draw(st.permutations([n for g in groups for n in g]))
    links = draw(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=4))
    return _layout(name, list(names), links)


FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)
SIZES = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@st.composite
def datasets(draw, k: int) -> Dataset:
    """1..3 images and 0..6 instances of K keypoints: any finite x, y; v in {0, 1, 2}."""
    m = draw(st.integers(1, 3))
    n = draw(st.integers(0, 6))
    xy = draw(hnp.arrays(np.float64, (n, k, 2), elements=FLOATS))
    v = draw(hnp.arrays(np.float64, (n, k, 1), elements=st.sampled_from([0.0, 1.0, 2.0])))
    xy = np.where(v > 0, xy, 0.0)
    boxes = np.concatenate(
        [
            draw(hnp.arrays(np.float64, (n, 2), elements=FLOATS)),
            draw(hnp.arrays(np.float64, (n, 2), elements=SIZES)),
        ],
        axis=1,
    )
    areas = draw(hnp.arrays(np.float64, (n,), elements=st.one_of(SIZES, st.just(np.nan))))
    images = Images(
        ids=list(range(1, m + 1)),
        file_names=[f"{i}.jpg" for i in range(m)],
        widths=np.full(m, 640.0),
        heights=np.full(m, 480.0),
        extra=[b""] * m,
    )
    instances = Instances(
        keypoints=np.concatenate([xy, v], axis=2),
        boxes=boxes,
        areas=areas,
        iscrowd=draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 1))),
        image_index=draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, m - 1))),
        ids=list(range(100, 100 + n)),
        num_keypoints=np.full(n, -1),
        extra=[b""] * n,
    )
    return Dataset(images=images, instances=instances)


@st.composite
def sources(draw, min_size: int = 1, max_size: int = 3) -> list[Source]:
    count = draw(st.integers(min_size, max_size))
    out = []
    for i in range(count):
        lay = draw(layouts(name=f"lay{i}"))
        out.append(Source(name=f"s{i}", dataset=draw(datasets(len(lay))), layout=lay))
    return out


@SETTINGS
@given(data=st.data())
def test_bijective_mapping_then_inverse_gives_back_the_input(data):
    src = data.draw(layouts(name="src"))
    k = len(src)
    perm = data.draw(st.permutations(range(k)))
    # The target holds the same keypoints, renamed and reordered: target[perm[s]] is source s.
    names = [""] * k
    for s, t in enumerate(perm):
        names[t] = f"t_{src.keypoints[s]}"
    swaps = [""] * k
    for s, t in enumerate(perm):
        partner = src.flip_indices[s]
        swaps[t] = names[perm[partner]] if partner != s else ""
    tgt = Layout("tgt", tuple(names), tuple(swaps), ("",) * k, (), (1.0,) * k, (0.05,) * k)
    forward = build_mapping(src, tgt, [[s, t] for s, t in enumerate(perm)])
    backward = build_mapping(tgt, src, [[t, s] for s, t in enumerate(perm)])
    kp = data.draw(datasets(k)).instances.keypoints
    there = apply_mapping(kp, forward)
    assert np.array_equal(there[:, list(perm)], kp)
    back = apply_mapping(there, backward)
    assert np.array_equal(back, kp)
    assert forward.dropped == [] and forward.unmapped == []


@SETTINGS
@given(srcs=sources(min_size=1, max_size=3))
def test_union_contains_every_source_keypoint(srcs):
    union = union_layout(srcs)
    assert len(set(union.keypoints)) == len(union)
    for s in srcs:
        assert set(s.layout.keypoints) <= set(union.keypoints)
    assert list(union.keypoints[: len(srcs[0].layout)]) == list(srcs[0].layout.keypoints)
    merged = combine(srcs)
    for s, report in zip(srcs, merged.sources, strict=True):
        assert report.mapping.dropped == []
        assert report.eval_indices is not None
        assert [union.keypoints[i] for i in report.eval_indices] == list(s.layout.keypoints)


@SETTINGS
@given(srcs=sources(), drop_empty=st.booleans(), drop_crowd=st.booleans(), mode=st.sampled_from(["m", "c"]))
def test_counts_are_conserved(srcs, drop_empty, drop_crowd, mode):
    if mode == "m":
        merged = merge(srcs, drop_empty=drop_empty, drop_crowd=drop_crowd)
    else:
        merged = combine(srcs, drop_empty=drop_empty, drop_crowd=drop_crowd)
    total = 0
    for s, r in zip(srcs, merged.sources, strict=True):
        assert r.annotations_read == len(s.dataset.instances)
        assert r.annotations_read == r.annotations_written + sum(r.not_written.values())
        assert r.annotation_range == (total, total + r.annotations_written)
        total += r.annotations_written
    assert len(merged.dataset.instances) == total
    assert np.bincount(merged.source_index, minlength=len(srcs)).tolist() == [
        r.annotations_written for r in merged.sources
    ]


@SETTINGS
@given(srcs=sources(max_size=2))
def test_output_bytes_identical_across_runs(srcs):
    first = {name: make() for name, make in output_files(combine(srcs)).items()}
    second = {name: make() for name, make in output_files(combine(srcs)).items()}
    assert first == second


@SETTINGS
@given(srcs=sources(max_size=1))
def test_written_numbers_read_back_exactly(srcs):
    merged = merge(srcs)
    back = coco_to_dataset(annotations_bytes(merged)).instances
    inst = merged.dataset.instances
    assert np.array_equal(back.keypoints, inst.keypoints)
    assert np.array_equal(back.boxes, inst.boxes)
    assert np.array_equal(back.areas, inst.areas)
    assert back.num_keypoints.tolist() == inst.labelled_counts().tolist()
