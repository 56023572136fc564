from __future__ import annotations

import json
import math
from collections import Counter
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kpmerge import job as job_module
from kpmerge.errors import KpmergeError, UsageError
from kpmerge.job import Job, SourceSpec, run_job
from kpmerge.recipe import recipe_to_job
from kpmerge.sampling import (
    ManifestSampler,
    SamplingOptions,
    SamplingPlan,
    batch_counts,
    parse_epochs,
    shard,
    slot_counts,
    stratified_slots,
)
from kpmerge.synth_styles import synth_style
from tests.conftest import COCO_STYLE, fixture, needs_fixtures
from tests.synthfiles import raw_aic_file, style_file, write_json

# Two sources in a 40-annotation file; gaps are positions that are not trainable.
POOL_A = [0, 1, 2, 4, 5, 7, 8, 9, 10, 12, 13, 15, 16, 17, 18, 19, 20]
POOL_B = [21, 22, 23, 25, 26, 27, 28, 30, 31, 33, 34, 36, 37, 38, 39]


def make_manifest(
    factors=(1.0, 1.0), batch_ratios=None, batch_size=None, seed=0, pools=(POOL_A, POOL_B)
) -> dict:
    ratios = batch_ratios or [None] * len(pools)
    return {
        "kpmerge_manifest": 1,
        "annotations": 40,
        "sampling": {"seed": seed, "batch_size": batch_size},
        "sources": [
            {"name": f"s{i}", "pool": list(p), "factor": f, "batch_ratio": r}
            for i, (p, f, r) in enumerate(zip(pools, factors, ratios, strict=True))
        ],
    }


def plan(**kw) -> SamplingPlan:
    return SamplingPlan.from_manifest(make_manifest(**kw))


@pytest.mark.parametrize(
    ("n", "f", "expected"),
    [(10, 2.0, 20), (10, 0.5, 5), (5, 0.5, 2), (7, 0.5, 4), (3, 0.25, 1), (9, 0.0, 0), (0, 3.0, 0)],
)
def test_slot_counts_round_like_python(n, f, expected):
    assert slot_counts([n], [f]) == [expected]


@pytest.mark.parametrize("n", [1, 2, 7, 100])
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_factor_2_draws_every_position_exactly_twice(n, seed):
    pos = stratified_slots(n, 2 * n, seed, epoch=3, source=1)
    assert sorted(Counter(pos.tolist()).items()) == [(i, 2) for i in range(n)]


@pytest.mark.parametrize("n", [2, 8, 100])
@pytest.mark.parametrize("epoch", [0, 1, 2])
def test_factor_half_draws_one_of_each_consecutive_pair(n, epoch):
    pos = stratified_slots(n, n // 2, seed=7, epoch=epoch, source=0)
    assert (pos // 2).tolist() == list(range(n // 2))


def test_factor_half_varies_with_epoch():
    draws = {tuple(stratified_slots(100, 50, 0, e, 0).tolist()) for e in range(4)}
    assert len(draws) == 4


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 500), m=st.integers(1, 1500), seed=st.integers(0, 2**32), epoch=st.integers(0, 99))
def test_every_slot_draws_inside_its_stratum(n, m, seed, epoch):
    pos = stratified_slots(n, m, seed, epoch, 0)
    j = np.arange(m)
    assert len(pos) == m
    assert ((pos >= 0) & (pos < n)).all()
    # j * n / m <= pos + 1 and pos < (j + 1) * n / m, in integers (a stratum may hold no integer)
    assert (pos * m < (j + 1) * n).all()
    assert ((pos + 1) * m > j * n).all()


def test_fractional_factor_draws_inside_the_integer_stratum():
    # slot 1 of 2 over a pool of 5: stratum [2.5, 5) holds positions 3 and 4, never 2
    for seed in range(64):
        pos = stratified_slots(5, 2, seed, 0, 0).tolist()
        assert pos[0] in (0, 1, 2) and pos[1] in (3, 4), (seed, pos)
    assert stratified_slots(5, 2, 16, 0, 0).tolist() != [2, 2]


_ODD_OR_PRIME = st.one_of(
    st.integers(0, 400).map(lambda i: 2 * i + 1),
    st.sampled_from([2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 97, 101, 257, 1009, 2761]),
)


@settings(max_examples=300, deadline=None)
@given(
    n=_ODD_OR_PRIME,
    f=st.floats(0, 3, exclude_min=True),
    seed=st.integers(0, 2**32),
    epoch=st.integers(0, 99),
)
def test_factor_property_exact_count_no_repeat_below_1_floor_or_ceil_above(n, f, seed, epoch):
    m = slot_counts([n], [f])[0]
    pos = stratified_slots(n, m, seed, epoch, 3)
    assert len(pos) == m == round(n * f)
    assert ((pos >= 0) & (pos < n)).all()
    counts = np.bincount(pos, minlength=n)
    if f <= 1:
        assert counts.max(initial=0) <= 1  # no instance twice in an epoch
        j = np.arange(m)
        assert (pos >= -(-j * n // m)).all() and (pos < -(-(j + 1) * n // m)).all()
    else:
        assert set(counts.tolist()) <= {math.floor(f), math.ceil(f)}
    assert np.array_equal(pos, stratified_slots(n, m, seed, epoch, 3))  # same (seed, epoch): same draws
    extra = m % n if m > n else m  # slots beyond floor(m / n) copies of every instance
    choices = np.diff(-(-np.arange(extra + 1) * n // max(extra, 1)))  # positions in each extra's stratum
    if extra and choices.max() >= 2:  # more than one possible draw: epochs differ
        assert len({tuple(stratified_slots(n, m, seed, e, 3).tolist()) for e in range(24)}) > 1


@pytest.mark.parametrize(
    ("batch_size", "ratios", "expected"),
    [
        (8, [1, 0.5], [6, 2]),
        (256, [1, 0.5], [171, 85]),
        (10, [1, 1, 1], [4, 3, 3]),
        (9, [4, 1, 1], [6, 2, 1]),
        (8, [0, 1], [0, 8]),
        (7, [1, 0, 1], [4, 0, 3]),
        (32, [0.2, 0.3, 0.5], [6, 10, 16]),
    ],
)
def test_batch_counts(batch_size, ratios, expected):
    assert batch_counts(batch_size, ratios) == expected


@settings(max_examples=200, deadline=None)
@given(
    batch_size=st.integers(1, 512),
    ratios=st.lists(st.sampled_from([0, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 7]), min_size=1, max_size=6),
)
@example(batch_size=459, ratios=[0.1, 0.5, 1.5, 2, 2, 2])  # 1.5's share is exactly 85
def test_batch_counts_fill_the_batch_within_one_of_each_share(batch_size, ratios):
    if sum(ratios) == 0:
        return
    try:
        counts = batch_counts(batch_size, ratios)
    except UsageError:
        return  # a positive ratio without a slot: covered below
    shares = [batch_size * r / sum(ratios) for r in ratios]
    assert sum(counts) == batch_size
    assert all(np.floor(s) - 1e-9 <= c <= np.ceil(s) + 1e-9 for s, c in zip(shares, counts, strict=True))
    assert all(c == 0 for r, c in zip(ratios, counts, strict=True) if r == 0)


@pytest.mark.parametrize(
    ("batch_size", "ratios", "names", "message"),
    [
        (
            8,
            [1, 0.01],
            ["coco", "aic"],
            "batch ratio 0.01 of source aic gets no slot in a batch of 8; "
            "the smallest batch size that gives every source a slot is 101",
        ),
        (
            2,
            [1, 0.5],
            None,
            "batch ratio 0.5 of source #1 gets no slot in a batch of 2; "
            "the smallest batch size that gives every source a slot is 3",
        ),
        (
            2,
            [1, 1, 1],
            None,
            "batch ratio 1 of source #2 gets no slot in a batch of 2; "
            "the smallest batch size that gives every source a slot is 3",
        ),
        (4, [0, 0], None, "at least one batch ratio must be positive"),
        (0, [1], None, "batch size must be at least 1, got 0"),
    ],
)
def test_batch_counts_errors(batch_size, ratios, names, message):
    with pytest.raises(UsageError) as exc:
        batch_counts(batch_size, ratios, names)
    assert str(exc.value) == message


def test_smallest_batch_size_named_really_works():
    with pytest.raises(UsageError, match=r"is 101$"):
        batch_counts(100, [1, 0.01])
    assert batch_counts(101, [1, 0.01]) == [100, 1]


@pytest.mark.parametrize("factors", [[1, 0.5], [1, 2], [0.25, 3], [2, 2], [0, 1]])
@pytest.mark.parametrize("epoch", [0, 5])
def test_dataset_level_plan_stays_in_the_pool_and_repeats_upsampled(factors, epoch):
    p = plan(factors=factors)
    idx = p.epoch(epoch)
    assert len(idx) == round(len(POOL_A) * factors[0]) + round(len(POOL_B) * factors[1])
    assert set(idx.tolist()) <= set(POOL_A) | set(POOL_B)
    counts = Counter(idx.tolist())
    for pool, f in zip((POOL_A, POOL_B), factors, strict=True):
        if f >= 1 and float(f).is_integer():
            assert [counts[i] for i in pool] == [f] * len(pool)  # every instance, f times
        got = sum(counts[i] for i in pool)
        assert got == round(len(pool) * f)


@pytest.mark.parametrize("factors", [[1, 0.5], [1, 2], [0.25, 3]])
@pytest.mark.parametrize("ratios", [[1, 1], [1, 0.5], [0.5, 1]])
@pytest.mark.parametrize("batch_size", [4, 8, 10])
def test_batch_plan_stays_in_the_pool_and_holds_upsampled_copies(factors, ratios, batch_size):
    p = plan(factors=factors, batch_ratios=ratios, batch_size=batch_size)
    batches = p.epoch(1)
    counts = batch_counts(batch_size, ratios)
    assert batches.shape == (p.epoch_size, batch_size)
    assert set(batches[:, : counts[0]].ravel().tolist()) <= set(POOL_A)
    assert set(batches[:, counts[0] :].ravel().tolist()) <= set(POOL_B)
    if max(factors) > 1:  # the upsampled source's slots hold copies, and the epoch yields them
        big = int(np.argmax(factors))
        slots = Counter(p.source_slots(1, big).tolist())
        assert max(slots.values()) >= 2
        column = (batches[:, : counts[0]] if big == 0 else batches[:, counts[0] :]).ravel().tolist()
        assert set(column) <= set(slots)
        assert max(Counter(column).values()) >= 2


def test_batch_plan_walks_a_new_permutation_each_pass():
    p = plan(factors=[1, 1], batch_ratios=[1, 1], batch_size=8, pools=(POOL_A[:4], POOL_B))
    column = p.epoch(0)[:, :4]  # source 0 has 4 slots, 4 per batch: one pass per batch
    assert all(sorted(row) == POOL_A[:4] for row in column.tolist())
    assert len({tuple(row) for row in column.tolist()}) > 1


@pytest.mark.parametrize(
    "kw", [{}, {"factors": [0.5, 3]}, {"batch_ratios": [1, 0.5], "batch_size": 8, "factors": [1, 2]}]
)
def test_same_inputs_same_epoch_different_epoch_different_order(kw):
    a, b = plan(**kw), plan(**kw)
    for world, rank in [(1, 0), (3, 2)]:
        assert np.array_equal(a.epoch(4, rank, world), b.epoch(4, rank, world))
    assert not np.array_equal(a.epoch(0), a.epoch(1))
    assert not np.array_equal(a.epoch(0), plan(seed=1, **kw).epoch(0))


def test_factor_1_epochs_are_permutations_of_the_pool():
    p = plan()
    for e in range(3):
        assert sorted(p.epoch(e).tolist()) == sorted(POOL_A + POOL_B)


@pytest.mark.parametrize("world", [1, 2, 3, 4, 7, 40])
@pytest.mark.parametrize(
    "kw", [{}, {"factors": [0.5, 2]}, {"batch_ratios": [1, 1], "batch_size": 3, "factors": [1, 0.25]}]
)
def test_ranks_get_equal_shares_that_cover_the_epoch(world, kw):
    p = plan(**kw)
    full = p.full_epoch(2)
    shares = [p.epoch(2, r, world) for r in range(world)]
    size = -(-len(full) // world)
    assert [len(s) for s in shares] == [size] * world == [p.length(world)] * world
    interleaved = np.stack(shares, axis=1).reshape(size * world, *full.shape[1:])
    padded = full[np.arange(size * world) % len(full)]  # DistributedSampler's wrap-around padding
    assert np.array_equal(interleaved, padded)


@pytest.mark.parametrize(
    ("n", "rank", "world", "expected"),
    [(5, 0, 2, [0, 2, 4]), (5, 1, 2, [1, 3, 0]), (2, 2, 3, [0]), (3, 1, 1, None), (0, 0, 2, [])],
)
def test_shard_like_distributed_sampler(n, rank, world, expected):
    ctx = pytest.raises(UsageError) if expected is None else nullcontext()
    with ctx:
        assert shard(np.arange(n), rank, world).tolist() == expected


@pytest.mark.parametrize(
    "kw", [{}, {"factors": [0.5, 3]}, {"batch_ratios": [2, 1], "batch_size": 5, "factors": [1, 2]}]
)
@pytest.mark.parametrize(("rank", "world"), [(0, 1), (1, 3)])
def test_sampler_len_equals_what_it_yields(kw, rank, world):
    sampler = ManifestSampler(make_manifest(**kw), rank=rank, world_size=world)
    for e in range(3):
        sampler.set_epoch(e)
        items = list(sampler)
        assert len(sampler) == len(items)
        assert items == sampler.plan.epoch(e, rank, world).tolist()
        if sampler.batched:
            assert all(type(b) is list and len(b) == 5 and all(type(i) is int for i in b) for b in items)
        else:
            assert all(type(i) is int for i in items)


def test_sampler_set_epoch_changes_the_order_and_reads_a_path(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(make_manifest()))
    sampler = ManifestSampler(path)
    first = list(sampler)
    assert list(ManifestSampler(str(path))) == first == list(ManifestSampler(make_manifest()))
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_sampler_works_in_a_torch_dataloader():
    torch = pytest.importorskip("torch")
    data = torch.utils.data.TensorDataset(torch.arange(40))
    sampler = ManifestSampler(make_manifest(batch_ratios=[1, 1], batch_size=4))
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler)
    assert [b[0].tolist() for b in loader] == list(sampler)


def _broken(change):
    m = make_manifest()
    change(m)
    return m


@pytest.mark.parametrize(
    ("manifest", "error", "text"),
    [
        ([], KpmergeError, "$: expected a kpmerge manifest.json (an object with kpmerge_manifest)"),
        (_broken(lambda m: m.pop("sampling")), KpmergeError, "$.sampling: expected an object"),
        (
            _broken(lambda m: m["sources"][1].update(pool=[3, 40])),
            KpmergeError,
            "$.sources[1].pool: positions must be in [0, 40)",
        ),
        (
            _broken(lambda m: m["sources"][0].update(pool=[1.5])),
            KpmergeError,
            "$.sources[0].pool: expected a list of annotation positions (integers)",
        ),
        (
            _broken(lambda m: m["sources"][0].update(factor="2")),
            KpmergeError,
            "$.sources[0].factor: expected a number, got '2'",
        ),
        (
            _broken(lambda m: m["sources"][0].update(batch_ratio=1)),
            KpmergeError,
            "$.sources[1].batch_ratio: batch ratios must be given for every source or none",
        ),
        (
            _broken(lambda m: m["sampling"].update(seed=-1)),
            KpmergeError,
            "$.sampling.seed: expected an integer >= 0, got -1",
        ),
        (
            make_manifest(batch_ratios=[1, 1]),
            UsageError,
            "batch ratios need a batch size (--batch-size)",
        ),
        (
            make_manifest(batch_ratios=[1, 1], batch_size=4, factors=[1, 0.01]),
            UsageError,
            "source s1 has batch ratio 1 but no trainable instance to draw",
        ),
    ],
)
def test_bad_manifests(manifest, error, text):
    with pytest.raises(error) as exc:
        ManifestSampler(manifest)
    assert text in str(exc.value)


@pytest.mark.parametrize(("rank", "world"), [(1, 1), (-1, 2), (0, 0)])
def test_sampler_refuses_bad_ranks(rank, world):
    with pytest.raises(UsageError):
        ManifestSampler(make_manifest(), rank=rank, world_size=world)


@pytest.mark.parametrize(
    ("opts", "pools", "message"),
    [
        (SamplingOptions(), None, None),
        (SamplingOptions(factors={"a": 2, "b": 0}), None, None),
        (SamplingOptions(batch_size=8, batch_ratios={"a": 1, "b": 0.5}), [3, 2], None),
        (SamplingOptions(seed=-1), None, "seed must be an integer >= 0, got -1"),
        (SamplingOptions(factors={"a": -1}), None, "ratio of source a must be finite and >= 0, got -1"),
        (SamplingOptions(factors={"c": 1}), None, "no source named 'c' (sources: a, b)"),
        (
            SamplingOptions(batch_size=8, batch_ratios={"a": 1, "b": -2}),
            None,
            "batch ratio of source b must be finite and >= 0, got -2",
        ),
        (
            SamplingOptions(batch_size=8, batch_ratios={"a": 1}),
            None,
            "batch ratio missing for source b: give one for every source or none",
        ),
        (
            SamplingOptions(batch_ratios={"a": 1, "b": 1}),
            None,
            "batch ratios need a batch size (--batch-size)",
        ),
        (SamplingOptions(batch_size=8), None, "a batch size goes with batch ratios (--batch-ratio)"),
        (
            SamplingOptions(batch_size=8, batch_ratios={"a": 1, "b": 1}, factors={"b": 0.1}),
            [10, 4],
            "source b has batch ratio 1 but no trainable instance to draw "
            "(its pool times its factor rounds to 0)",
        ),
    ],
)
def test_sampling_options_check(opts, pools, message):
    ctx = nullcontext() if message is None else pytest.raises(UsageError)
    with ctx as exc:
        opts.check(["a", "b"], pools)
    if message is not None:
        assert str(exc.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0:3", range(0, 3)),
        ("5", range(5, 6)),
        ("2:4", range(2, 4)),
        ("3:3", None),
        ("a", None),
        ("-1", None),
    ],
)
def test_parse_epochs(text, expected):
    ctx = pytest.raises(UsageError) if expected is None else nullcontext()
    with ctx:
        assert parse_epochs(text) == expected


def test_recipe_sampling_keys():
    data = {
        "mode": "combine",
        "output": "out",
        "seed": 3,
        "batch_size": 16,
        "sources": [
            {"path": "a.json", "ratio": 0.5, "batch_ratio": 1},
            {"path": "b.json", "ratio": 2, "batch_ratio": 0.5},
        ],
    }
    job = recipe_to_job(data, Path("/r"))
    assert (job.seed, job.batch_size) == (3, 16)
    assert [(s.factor, s.batch_ratio) for s in job.sources] == [(0.5, 1.0), (2.0, 0.5)]
    default = recipe_to_job({**data, "seed": 0, "sources": [{"path": "a.json"}]}, Path("/r"))
    assert [(s.factor, s.batch_ratio) for s in default.sources] == [(1.0, None)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": -1}, "seed: expected an integer >= 0, got -1"),
        ({"batch_size": 2.5}, "batch_size: expected an integer >= 1, got 2.5"),
        (
            {"sources": [{"path": "a.json", "ratio": "2"}]},
            "sources[0].ratio: expected a number >= 0, got '2'",
        ),
        (
            {"sources": [{"path": "a.json", "batch_ratio": -1}]},
            "sources[0].batch_ratio: expected a number >= 0",
        ),
        ({"sources": [{"path": "a.json", "weight": 1}]}, "sources[0].weight: unknown key"),
        ({"ratio": 1}, "ratio: unknown key"),
    ],
)
def test_recipe_sampling_errors(change, message):
    data = {"mode": "merge", "output": "out", "sources": [{"path": "a.json"}], **change}
    with pytest.raises(UsageError) as exc:
        recipe_to_job(data, Path("/r"))
    assert message in str(exc.value)


def independent_pools(annotations_file: Path) -> dict[str, list[int]]:
    """The trainable pool per source, computed from the written annotations with plain Python, one
    annotation at a time as MMPose 1.3's parse_data_info and _is_valid_instance do."""
    doc = json.loads(annotations_file.read_text())
    images = {i["id"]: i for i in doc["images"]}
    pools: dict[str, list[int]] = {}
    for i, ann in enumerate(doc["annotations"]):
        pools.setdefault(ann["source"], [])
        img = images[ann["image_id"]]
        if ann.get("iscrowd", 0) or max(ann["keypoints"]) == 0 or ann["num_keypoints"] == 0:
            continue
        x, y, w, h = ann["bbox"]
        x1, x2 = (np.float32(np.clip(v, 0, img["width"] - 1)) for v in (x, x + w))
        y1, y2 = (np.float32(np.clip(v, 0, img["height"] - 1)) for v in (y, y + h))
        if x2 - x1 > 0 and y2 - y1 > 0:
            pools[ann["source"]].append(i)
    return pools


def _pool_source(folder: Path, name: str) -> SourceSpec:
    """A source built by the test: COCO-style files with one person not trainable for each reason
    (no labelled keypoint, crowd, a box outside its image), or raw AIC with its image folder."""
    if name == "aic":
        path, images = raw_aic_file(folder, images=3, people=9)
        return SourceSpec(path=path, name=name, image_dir=images)
    doc = synth_style(name, images=4, people=12, unlabelled=1, crowd=1)
    ann = doc["annotations"][2]
    image = next(i for i in doc["images"] if i["id"] == ann["image_id"])
    ann["bbox"][0] = image["width"] + 5  # clipped to the image: no width left
    return SourceSpec(path=write_json(folder / f"{name}.json", doc), name=name)


@pytest.mark.parametrize(
    ("mode", "sources", "target"),
    [
        ("combine", ["coco", "aic"], None),
        ("merge", ["crowdpose", "coco"], None),
        ("merge", ["coco", "halpe"], "coco"),
    ],
)
def test_manifest_pool_matches_an_independent_computation(tmp_path, mode, sources, target):
    specs = tuple(
        replace(_pool_source(tmp_path / "in", name), factor=2.0 if i else 1.0, batch_ratio=1.0 / (i + 1))
        for i, name in enumerate(sources)
    )
    out = tmp_path / "out"
    run_job(Job(mode, specs, out, target=target, seed=9, batch_size=6))
    manifest = json.loads((out / "manifest.json").read_text())
    expected = independent_pools(out / "annotations.json")
    assert {s["name"]: s["pool"] for s in manifest["sources"]} == expected
    assert manifest["sampling"] == {"seed": 9, "batch_size": 6}
    assert [(s["factor"], s["batch_ratio"]) for s in manifest["sources"]] == [(1.0, 1.0), (2.0, 0.5)]
    assert sum(len(p) for p in expected.values()) < manifest["annotations"]  # some are not trainable
    if "coco" in sources:
        assert len(expected["coco"]) == 12 - 3  # one without keypoints, one crowd, one outside its image
    sampler = ManifestSampler(out / "manifest.json")
    assert sampler.batched and len(list(sampler)) == len(sampler)


@needs_fixtures
def test_manifest_pools_of_mmpose_files_have_mmpose_lengths(tmp_path):
    """The pools hold as many instances as MMPose's top-down datasets of the same files (their tests'
    `len(dataset)`, fixtures/README.md)."""
    lengths = {"coco": 12, "aic": 9, "crowdpose": 4, "halpe": 12, "ochuman": 5, "posetrack18": 14, "jhmdb": 3}
    rels = {rel.split("/")[0]: rel for rel in COCO_STYLE}
    for name, length in lengths.items():
        out = tmp_path / name
        layout = name if name in ("halpe", "posetrack18") else None
        run_job(Job("merge", (SourceSpec(path=fixture(rels[name]), name=name, layout=layout),), out))
        manifest = json.loads((out / "manifest.json").read_text())
        assert len(manifest["sources"][0]["pool"]) == length, name
        assert manifest["sources"][0]["pool"] == independent_pools(out / "annotations.json")[name]


def test_manifest_defaults_without_sampling_options(tmp_path):
    out = tmp_path / "out"
    coco = style_file(tmp_path, "coco", images=4, people=14, unlabelled=1, crowd=1)
    run_job(Job("combine", (SourceSpec(path=coco, name="coco"),), out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sampling"] == {"seed": 0, "batch_size": None}
    assert [(s["factor"], s["batch_ratio"]) for s in manifest["sources"]] == [(1.0, None)]
    assert len(list(ManifestSampler(out / "manifest.json"))) == len(manifest["sources"][0]["pool"]) == 12


def test_run_job_refuses_a_source_without_slots_and_writes_nothing(tmp_path, monkeypatch):
    specs = (
        SourceSpec(path=style_file(tmp_path / "in", "coco", people=14), name="coco", batch_ratio=1),
        SourceSpec(path=style_file(tmp_path / "in", "aic", people=9), name="aic", factor=0.01, batch_ratio=1),
    )
    with pytest.raises(UsageError, match="source aic has batch ratio 1 but no trainable instance"):
        run_job(Job("merge", specs, tmp_path / "out", batch_size=4))
    assert list(tmp_path.iterdir()) == [tmp_path / "in"]
    # refused before any output is made, and before what exports check (the pools are taken in a
    # thread beside the writing, but with batch ratios the check waits for them)
    monkeypatch.setattr(job_module, "output_files", _must_not_run)
    monkeypatch.setattr(job_module, "export_outputs", _must_not_run)
    with pytest.raises(UsageError, match="source aic has batch ratio 1 but no trainable instance"):
        run_job(Job("merge", specs, tmp_path / "out", batch_size=4, exports=("yolo",)))


def _must_not_run(*args, **kwargs):
    raise AssertionError("called before the sampling options were checked against the pools")


def readme_sampler_code() -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    return next(b for b in blocks if "class KpmergeSampler" in b)


class FakeDataset:
    """MMPose's CocoDataset as the README's sampler sees it: instances ordered by image, not by position."""

    def __init__(self, ids):
        self.ids = ids

    def __len__(self):
        return len(self.ids)

    def get_data_info(self, i):
        return {"id": self.ids[i]}


@pytest.mark.parametrize("batched", [False, True])
def test_readme_mmpose_sampler_maps_positions_to_dataset_indices(monkeypatch, batched):
    import sys
    import types

    dist = types.ModuleType("mmengine.dist")
    dist.get_dist_info = lambda: (1, 2)
    registry = types.ModuleType("mmengine.registry")
    registry.DATA_SAMPLERS = types.SimpleNamespace(register_module=lambda: lambda cls: cls)
    monkeypatch.setitem(sys.modules, "mmengine", types.ModuleType("mmengine"))
    monkeypatch.setitem(sys.modules, "mmengine.dist", dist)
    monkeypatch.setitem(sys.modules, "mmengine.registry", registry)
    namespace: dict = {}
    exec(readme_sampler_code(), namespace)
    ids = [p + 1 for p in POOL_A[::-1] + POOL_B]  # the dataset's own order
    dataset = FakeDataset(ids)
    kw = {"batch_ratios": [1, 1], "batch_size": 4} if batched else {}
    manifest = make_manifest(**kw)
    if batched:
        sampler = namespace["KpmergeSampler"](
            manifest, sampler=types.SimpleNamespace(dataset=dataset), batch_size=4
        )
    else:
        sampler = namespace["KpmergeSampler"](manifest, dataset=dataset, seed=0)
    sampler.sampler.set_epoch(2)
    items = list(sampler)
    expected = ManifestSampler(manifest, rank=1, world_size=2)
    expected.set_epoch(2)
    assert len(sampler) == len(items) == len(expected)
    flat = [i for b in items for i in b] if batched else items
    positions = [p for b in expected for p in b] if batched else list(expected)
    assert [ids[i] - 1 for i in flat] == positions
    with pytest.raises(ValueError, match="pool positions are not in the dataset"):
        namespace["KpmergeSampler"](manifest, dataset=FakeDataset(ids[1:]), batch_size=4 if batched else None)
