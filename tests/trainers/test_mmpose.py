"""MMPose 1.3.2's own code on kpmerge's outputs: CocoDataset, KeypointConverter, the README's sampler in
mmengine's Runner.build_dataloader, and CocoMetric on `kpmerge project` files.

Runs in the MMPose environment of `make test-trainers` (tests/trainers/requirements-mmpose.txt).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import fixture, needs_fixtures
from tests.trainers.data import (
    EDGE_CASES,
    aic_file,
    coco_file,
    coco_style_file,
    edge_file,
    gunzip_output,
    keypoint_rows,
    kpmerge,
    kpmerge_ok,
    need,
    pools,
    read_json,
)

need("mmpose.datasets")
mmengine_registry = need("mmengine.registry")
mmengine_registry.init_default_scope("mmpose")  # the full register_all_modules needs mmdet

from mmengine.hooks import DistSamplerSeedHook  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mmpose.datasets import AicDataset, CocoDataset  # noqa: E402
from mmpose.datasets.datasets.utils import parse_pose_metainfo  # noqa: E402
from mmpose.datasets.transforms import KeypointConverter  # noqa: E402
from mmpose.evaluation.metrics import CocoMetric  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

AIC_TO_COCO_AIC = [(0, 6), (1, 8), (2, 10), (3, 5), (4, 7), (5, 9), (6, 12), (7, 14), (8, 16), (9, 11)]
AIC_TO_COCO_AIC += [(10, 13), (11, 15), (12, 17), (13, 18)]
"""MMPose's own KeypointConverter mapping from AIC to the 19-keypoint coco_aic layout (its configs)."""


def load(out: Path) -> CocoDataset:
    """OUT as MMPose's CocoDataset loads it for training, with kpmerge's metainfo.py, top-down."""
    return CocoDataset(
        ann_file="annotations.json",
        metainfo=dict(from_file=str(out / "metainfo.py")),
        data_mode="topdown",
        data_root=str(out),
        data_prefix=dict(img=""),
        test_mode=False,
        pipeline=[],
        lazy_init=False,
    )


def infos(dataset: CocoDataset) -> list[dict]:
    """Every instance the dataset kept (MMPose's parse_data_info + _is_valid_instance)."""
    return [dataset.get_data_info(i) for i in range(len(dataset))]


# --- kpmerge outputs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The inputs, built once: synthetic COCO, raw AIC with an image folder (some people outside their
    image), raw AIC whose people all lie inside, a COCO-style AIC file and the edge-case file."""
    root = tmp_path_factory.mktemp("inputs")
    aic, aic_dir = aic_file(root / "aic", shrink_every=3)
    aic_in, aic_in_dir = aic_file(root / "aic_inside", seed=4)
    return SimpleNamespace(
        coco=coco_file(root),
        aic=aic,
        aic_dir=aic_dir,
        aic_in=aic_in,
        aic_in_dir=aic_in_dir,
        aic_coco=coco_style_file(root / "aic_coco.json", "aic"),
        edge=edge_file(root),
    )


def _sources(i: SimpleNamespace, *names: str) -> list[str]:
    """NAME=PATH for each named input, each with its own --image-prefix; the raw AIC with --image-dir."""
    paths = {"coco": i.coco, "aic": i.aic, "aic_coco": i.aic_coco, "edge": i.edge}
    args = [f"{n.split('_')[0]}={paths[n]}" for n in names]
    for n in names:
        args += ["--image-prefix", f"{n.split('_')[0]}={n}/"]
    return args + (["--image-dir", f"aic={i.aic_dir}"] if "aic" in names else [])


OUTPUTS = {
    "merge": lambda i: ["merge", *_sources(i, "coco", "aic"), "--target", "coco"],
    "combine": lambda i: ["combine", *_sources(i, "coco", "aic")],
    "raw_aic": lambda i: ["merge", *_sources(i, "aic")],
    "drop_flags": lambda i: ["combine", *_sources(i, "coco", "aic", "edge"), "--drop-empty", "--drop-crowd"],
    "gzip": lambda i: ["combine", *_sources(i, "coco", "aic"), "--gzip"],
    "edge_cases": lambda i: ["merge", *_sources(i, "edge")],
    "coco_style_aic": lambda i: ["combine", *_sources(i, "coco", "aic_coco")],
}
"""Every kind of output: merge, combine, raw AIC alone (sizes from --image-dir), drop flags, gzip."""


@pytest.fixture(scope="module", params=sorted(OUTPUTS))
def output(request: pytest.FixtureRequest, inputs: SimpleNamespace, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp(request.param) / "out"
    kpmerge_ok(*OUTPUTS[request.param](inputs), "-o", out, "-q")
    if request.param == "drop_flags":
        dropped = [s["annotations"]["not_written"] for s in read_json(out / "manifest.json")["sources"]]
        assert {k for d in dropped for k, v in d.items() if v} == {"crowd", "no_labelled_keypoints"}
    if request.param == "gzip":
        assert not (out / "annotations.json").exists()
        gunzip_output(out)
    return out


def test_loads_every_output_with_kpmerges_keypoints(output: Path) -> None:
    dataset = load(output)
    rows = keypoint_rows(output)
    images = {i["id"]: i for i in read_json(output / "annotations.json")["images"]}
    assert len(dataset) > 0
    assert dataset.metainfo["num_keypoints"] == read_json(output / "manifest.json")["num_keypoints"]
    for info in infos(dataset):
        expected = rows[info["id"]]
        assert info["keypoints"].shape == (1, len(expected), 2)
        np.testing.assert_array_equal(info["keypoints"][0], expected[:, :2].astype(np.float32))
        np.testing.assert_array_equal(info["keypoints_visible"][0], np.minimum(1, expected[:, 2]))
        assert info["img_path"].endswith(images[info["img_id"]]["file_name"])


def test_keeps_exactly_the_manifest_pools(output: Path) -> None:
    kept = sorted(info["id"] - 1 for info in infos(load(output)))  # kpmerge writes ids 1..N in order
    planned = sorted(p for pool in pools(output).values() for p in pool)
    assert kept == planned


def test_edge_cases_are_kept_as_mmpose_keeps_them(inputs: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    kpmerge_ok("merge", f"coco={inputs.edge}", "-o", out, "-q")
    kept = {info["raw_ann_info"]["source_id"] for info in infos(load(out))}
    source_id = [a["source_id"] for a in read_json(out / "annotations.json")["annotations"]]
    pooled = {source_id[p] for p in pools(out)["coco"]}
    expected = {100 + j for j, case in enumerate(EDGE_CASES) if case[4]}
    assert kept == expected
    assert {c[0]: 100 + j in pooled for j, c in enumerate(EDGE_CASES)} == {c[0]: c[4] for c in EDGE_CASES}


def test_raw_aic_without_sizes_is_refused(inputs: SimpleNamespace, tmp_path: Path) -> None:
    """Whatever kpmerge writes by default, MMPose loads: a source without image sizes is refused."""
    out = tmp_path / "out"
    result = kpmerge("merge", f"aic={inputs.aic}", "-o", out, "-q")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "--image-dir" in result.stderr
    assert not out.exists()


def test_allow_missing_sizes_says_mmpose_cannot_load_it(inputs: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = kpmerge("merge", f"aic={inputs.aic}", "--allow-missing-sizes", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "mmpose" in result.stderr.lower()
    with pytest.raises(KeyError, match="width"):
        load(out)


@needs_fixtures
def test_loads_the_real_fixtures_combined(tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = ["coco/test_coco.json", "crowdpose/test_crowdpose.json", "ochuman/test_ochuman.json"]
    sources = [f"{Path(f).parent}={fixture(f)}" for f in files]
    kpmerge_ok("combine", *sources, "-o", out, "-q")
    kept = sorted(info["id"] - 1 for info in infos(load(out)))
    assert kept == sorted(p for pool in pools(out).values() for p in pool)


# --- agreement with MMPose's KeypointConverter (SPEC 3.2) ------------------------------------------


def _converted(dataset_type: type, ann: Path, num_keypoints: int, mapping: list) -> dict[int, dict]:
    """The original file as MMPose loads it, through its KeypointConverter, by annotation id."""
    dataset = dataset_type(ann_file=str(ann), data_mode="topdown", pipeline=[], lazy_init=False)
    convert = KeypointConverter(num_keypoints=num_keypoints, mapping=mapping)
    return {info["id"]: convert(info) for info in infos(dataset)}


def test_combine_equals_mmposes_keypoint_converter(inputs: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    kpmerge_ok("combine", f"coco={inputs.coco}", f"aic={inputs.aic_coco}", "-o", out, "-q")
    meta = read_json(out / "metainfo.json")
    ours = {(i["raw_ann_info"]["source"], i["raw_ann_info"]["source_id"]): i for i in infos(load(out))}
    theirs = {
        "coco": _converted(CocoDataset, inputs.coco, 19, [(i, i) for i in range(17)]),
        "aic": _converted(AicDataset, inputs.aic_coco, 19, AIC_TO_COCO_AIC),
    }
    assert set(ours) == {(s, i) for s, by_id in theirs.items() for i in by_id}
    defined = {s["name"]: s["defined_keypoints"] for s in meta["sources"]}
    for (source, original_id), info in ours.items():
        converted = theirs[source][original_id]
        np.testing.assert_array_equal(info["keypoints"], converted["keypoints"])
        np.testing.assert_array_equal(info["keypoints_visible"], converted["keypoints_visible"][..., 0])
        weights = converted["keypoints_visible"][0, :, 1]
        assert np.flatnonzero(weights).tolist() == sorted(defined[source])


# --- the README's sampler in mmengine's Runner.build_dataloader -------------------------------------


def readme_sampler_code() -> str:
    """The ```python block of README.md (or a docs/ page) that defines class KpmergeSampler."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    blocks = {
        block
        for page in pages
        if page.is_file()
        for block in re.findall(r"```python\n(.*?)```", page.read_text("utf-8"), flags=re.S)
        if "class KpmergeSampler" in block
    }
    assert len(blocks) == 1, f"expected one documented KpmergeSampler, found {len(blocks)} different ones"
    return blocks.pop()


@pytest.fixture(scope="module")
def sampler_module(tmp_path_factory: pytest.TempPathFactory):
    """The README's sampler saved as kpmerge_sampler.py and imported (it registers KpmergeSampler)."""
    path = tmp_path_factory.mktemp("sampler") / "kpmerge_sampler.py"
    path.write_text(readme_sampler_code(), "utf-8")
    spec = importlib.util.spec_from_file_location("kpmerge_sampler", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["kpmerge_sampler"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("kpmerge_sampler", None)


PLANS = {
    # plan kind -> (kpmerge options, dataloader batch size, sources' counts in every batch or None)
    "dataset_level": (["--ratio", "coco=0.7", "--ratio", "aic=1.5"], 4, None),
    "batch_composition": (
        ["--batch-ratio", "coco=1", "--batch-ratio", "aic=0.5", "--batch-size", "8"],
        8,
        {"coco": 6, "aic": 2},
    ),
}


def _loader_cfg(out: Path, plan: str, batch_size: int) -> dict:
    dataset = dict(
        type="CocoDataset",
        data_root=str(out),
        data_mode="topdown",
        ann_file="annotations.json",
        metainfo=dict(from_file=str(out / "metainfo.py")),
        data_prefix=dict(img=""),
        pipeline=[],
    )
    manifest = str(out / "manifest.json")
    cfg = dict(batch_size=batch_size, num_workers=0, dataset=dataset, collate_fn=_ids)
    if plan == "dataset_level":
        cfg["sampler"] = dict(type="KpmergeSampler", manifest=manifest)
    else:  # as the README's config: DefaultSampler, and the manifest's batches as batch_sampler
        cfg["sampler"] = dict(type="DefaultSampler", shuffle=False)
        cfg["batch_sampler"] = dict(type="KpmergeSampler", manifest=manifest)
    return cfg


def _ids(batch: list[dict]) -> list[int]:
    return [d["id"] for d in batch]


def _epochs(loader, epochs: int) -> list[list[list[int]]]:
    """Each epoch's batches of annotation ids, epochs set by mmengine's own DistSamplerSeedHook."""
    hook, out = DistSamplerSeedHook(), []
    for epoch in range(epochs):
        hook.before_train_epoch(SimpleNamespace(train_loop=SimpleNamespace(dataloader=loader), epoch=epoch))
        batches = list(loader)
        assert len(batches) == len(loader)
        out.append(batches)
    return out


@pytest.mark.parametrize("aic_images", ["inside", "some_outside"])
@pytest.mark.parametrize("plan", sorted(PLANS))
def test_readme_sampler_drives_build_dataloader(
    plan: str, aic_images: str, inputs: SimpleNamespace, sampler_module, monkeypatch, tmp_path: Path
) -> None:
    options, batch_size, per_batch = PLANS[plan]
    aic, aic_dir = (
        (inputs.aic_in, inputs.aic_in_dir) if aic_images == "inside" else (inputs.aic, inputs.aic_dir)
    )
    out = tmp_path / "out"
    sources = [f"coco={inputs.coco}", f"aic={aic}", "--image-dir", f"aic={aic_dir}"]
    kpmerge_ok("combine", *sources, *options, "-o", out, "-q")
    manifest = read_json(out / "manifest.json")
    owner = {}
    for s in manifest["sources"]:
        lo, hi = s["annotations"]["range"]
        owner.update({p: s["name"] for p in range(lo, hi)})
    pool = {s["name"]: set(s["pool"]) for s in manifest["sources"]}
    factor = {s["name"]: s["factor"] for s in manifest["sources"]}

    runs = {}
    for world_size in (1, 2):
        for rank in range(world_size):
            monkeypatch.setattr(sampler_module, "get_dist_info", lambda r=rank, w=world_size: (r, w))
            loader = Runner.build_dataloader(_loader_cfg(out, plan, batch_size))
            runs[rank, world_size] = _epochs(loader, 2)

    for epochs in runs.values():
        for batches in epochs:
            for batch in batches:
                positions = [i - 1 for i in batch]
                assert all(p in pool[owner[p]] for p in positions)
                if per_batch is not None:
                    assert len(batch) == batch_size
                    assert Counter(owner[p] for p in positions) == per_batch
    whole = [runs[0, 1][e] for e in range(2)]
    assert whole[0] != whole[1], "epochs 0 and 1 are the same"
    for epoch in range(2):
        if per_batch is None:
            drawn = Counter(i - 1 for batch in whole[epoch] for i in batch)
            for name in pool:
                mine = {p: c for p, c in drawn.items() if owner[p] == name}
                f, n = factor[name], len(pool[name])
                assert sum(mine.values()) == round(n * f), name
                assert set(mine.values()) <= {int(np.floor(f)), int(np.ceil(f))} - {0}, name
        # two ranks: every other item of the whole epoch, padded by wrapping around to an even length
        items = whole[epoch] if per_batch is not None else [[i] for b in whole[epoch] for i in b]
        padded = items + items[: len(items) % 2]
        ranks = [runs[r, 2][epoch] for r in range(2)]
        if per_batch is None:
            ranks = [[[i] for b in batches for i in b] for batches in ranks]
        assert len(ranks[0]) == len(ranks[1]) == len(padded) // 2
        assert [x for pair in zip(*ranks, strict=True) for x in pair] == padded


# --- MMPose's CocoMetric on `kpmerge project` files -------------------------------------------------


def _score(gt: Path, predictions: list[dict], metainfo: dict, tmp_path: Path) -> dict[str, float]:
    metric = CocoMetric(ann_file=str(gt), nms_mode="none", outfile_prefix=str(tmp_path / "results"))
    metric.dataset_meta = metainfo
    metric.process([], predictions)
    return metric.evaluate(size=len(predictions))


def _predictions(dataset, image_of: dict) -> list[dict]:
    """The instances of an MMPose dataset as perfect predictions on the images `image_of` maps to."""
    k = dataset.metainfo["num_keypoints"]
    return [
        dict(
            id=info["id"],
            img_id=image_of[info["img_id"]],
            pred_instances=dict(keypoints=info["keypoints"], keypoint_scores=np.ones((1, k))),
            gt_instances=dict(),
        )
        for info in infos(dataset)
    ]


@pytest.mark.parametrize("original_ids", [False, True], ids=["numeric_ids", "original_ids"])
@pytest.mark.parametrize("layout", ["coco", "aic"])
def test_cocometric_scores_project_at_ap_1(
    layout: str, original_ids: bool, inputs: SimpleNamespace, tmp_path: Path
) -> None:
    out, gt = tmp_path / "out", tmp_path / f"{layout}_gt.json"
    kpmerge_ok("combine", f"coco={inputs.coco}", f"aic={inputs.aic_coco}", "-o", out, "-q")
    flags = ["--original-ids"] if original_ids else []
    kpmerge_ok("project", out, "--to", layout, "--source", layout, "-o", gt, *flags, "-q")
    projected = read_json(gt)
    ids = [i["id"] for i in projected["images"]] + [a["id"] for a in projected["annotations"]]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    original = inputs.coco if layout == "coco" else inputs.aic_coco
    dataset_type = CocoDataset if layout == "coco" else AicDataset
    dataset = dataset_type(ann_file=str(original), data_mode="topdown", pipeline=[], lazy_init=False)
    image_of = {i["source_id"]: i["id"] for i in projected["images"]}
    if original_ids:
        assert set(image_of) == set(image_of.values())
    predictions = _predictions(dataset, image_of)
    metainfo = parse_pose_metainfo(dataset_type.METAINFO)
    scores = _score(gt, predictions, metainfo, tmp_path)
    assert scores["coco/AP"] == pytest.approx(1.0)
    assert scores["coco/AR"] == pytest.approx(1.0)


@needs_fixtures
def test_cocometric_scores_the_real_aic_fixture(tmp_path: Path) -> None:
    """MMPose's own converted AIC file, through coco + aic combine and back: AP 1.0 with AIC sigmas."""
    out, gt = tmp_path / "out", tmp_path / "aic_gt.json"
    sources = [f"coco={fixture('coco/test_coco.json')}", f"aic={fixture('aic/test_aic.json')}"]
    kpmerge_ok("combine", *sources, "-o", out, "-q")
    kpmerge_ok("project", out, "--to", "aic", "--source", "aic", "--original-ids", "-o", gt, "-q")
    dataset = AicDataset(ann_file=str(fixture("aic/test_aic.json")), data_mode="topdown", pipeline=[])
    ids = {i: i for i in (x["id"] for x in read_json(gt)["images"])}
    scores = _score(gt, _predictions(dataset, ids), parse_pose_metainfo(AicDataset.METAINFO), tmp_path)
    assert scores["coco/AP"] == pytest.approx(1.0)
