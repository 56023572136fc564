"""kpmerge.leftright: facing and crossed-limb statistics on generated data with known facing and swaps,
on the COCO fixture, and through `inspect` on merge outputs whose mapping swaps sides."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from kpmerge.inspect import inspect
from kpmerge.job import Job, SourceSpec, run_job
from kpmerge.layouts import layout_from_dict, load_layout
from kpmerge.leftright import MIN_INSTANCES, Facing, LeftRight, Limb, left_right, side, sided_pairs
from kpmerge.synth import posed_keypoints, synth_coco
from tests.conftest import fixture, needs_fixtures

COCO = load_layout("coco")
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "inspect.schema.json").read_text())
ELBOW_LINKS = [
    "left_shoulder-left_elbow",
    "right_shoulder-right_elbow",
    "left_elbow-left_wrist",
    "right_elbow-right_wrist",
]


def _posed(n: int, back: float = 0.25, viewer: float = 0.0, seed: int = 0) -> np.ndarray:
    boxes = np.tile([10.0, 20.0, 100.0, 220.0], (n, 1))
    return posed_keypoints(np.random.default_rng(seed), boxes, COCO.keypoints, back, viewer, unlabelled=0)


def _swap(kp: np.ndarray, *names: str) -> np.ndarray:
    """Each named keypoint exchanged with its flip partner."""
    order = list(range(COCO_K))
    for name in names:
        i = COCO.index(name)
        j = COCO.flip_indices[i]
        order[i], order[j] = j, i
    return kp[:, order]


COCO_K = len(COCO)
ALL_SIDES = [n for n in COCO.keypoints if n.startswith("left_")]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("left_elbow", "left"),
        ("Right Knee", "right"),
        ("l_hip", "left"),
        ("r-ankle", "right"),
        ("nose", ""),
        ("face-3", ""),
        ("left_hand_root", "left"),
        ("leftover", ""),
    ],
)
def test_side(name, expected):
    assert side(name) == expected


@pytest.mark.parametrize(
    ("layout", "first", "count"),
    [
        ("coco", ("left_eye", "right_eye"), 8),
        ("aic", ("left_shoulder", "right_shoulder"), 6),  # aic lists right first; pairs are (left, right)
        ("coco_wholebody", ("left_eye", "right_eye"), 61 - 29),  # face-0/face-16 ... have no side names
    ],
)
def test_sided_pairs(layout, first, count):
    lay = load_layout(layout)
    pairs = sided_pairs(lay)
    assert len(pairs) == count
    assert tuple(lay.keypoints[i] for i in pairs[0]) == first
    assert all(side(lay.keypoints[i]) == "left" and side(lay.keypoints[j]) == "right" for i, j in pairs)


def test_layout_without_flip_partners_pairs_by_name():
    names = ["nose", "left_eye", "right_eye", "left_hand", "right_hand"]
    lay = layout_from_dict({"name": "x", "keypoints": names, "joint_weights": [1] * 5, "sigmas": [0.1] * 5})
    assert sided_pairs(lay) == [(1, 2), (3, 4)]


@pytest.mark.parametrize(("back", "viewer"), [(0.25, 0.0), (0.25, 0.3), (0.0, 1.0), (0.5, 0.75)])
def test_facing_counts_known_facing(back, viewer):
    n = 200
    kp = _posed(n, back, viewer)
    front = n - round(n * back)
    agree = front - round(front * viewer)
    lr = left_right(kp, COCO)
    assert [f.pair[0] for f in lr.facing] == ALL_SIDES
    assert {(f.front_facing, f.agree) for f in lr.facing} == {(front, agree)}
    assert lr.swapped == (agree / front < 0.5)
    # sides swapped as a whole keep every same-side link consistent
    assert all(m.consistent == m.counted == n for m in lr.limbs if "eye" not in m.link[0])


def test_crossed_limbs_known_swaps():
    kp = _posed(100)
    clean = left_right(kp, COCO)
    assert [(m.counted, m.consistent) for m in clean.limbs if "elbow" in "".join(m.link)] == [(100, 100)] * 4
    assert clean.problems() == []
    crossed = left_right(_swap(kp, "left_elbow"), COCO)
    rates = {"-".join(m.link): m.rate for m in crossed.limbs}
    assert {k for k, r in rates.items() if r is not None and r < 0.5} == set(ELBOW_LINKS)
    (problem,) = crossed.problems()
    assert (problem.kind, problem.severity, problem.count) == ("limb_crossed", "warning", 4)
    assert list(problem.examples) == ELBOW_LINKS
    assert not crossed.swapped  # only the elbow pair fails facing


def test_every_side_swapped_is_left_right_swapped():
    lr = left_right(_swap(_posed(100), *ALL_SIDES), COCO)
    assert {f.agree for f in lr.facing} == {0}
    assert [p.kind for p in lr.problems("src")] == ["left_right_swapped"]
    assert lr.problems("src")[0].examples[0] == "src: left_eye/right_eye"


@pytest.mark.parametrize(("n", "kinds"), [(MIN_INSTANCES - 1, []), (MIN_INSTANCES, ["left_right_swapped"])])
def test_too_few_instances_are_not_judged(n, kinds):
    lr = left_right(_swap(_posed(n, back=0.0), *ALL_SIDES), COCO)
    assert [p.kind for p in lr.problems()] == kinds


def test_layout_without_face_has_limbs_only():
    aic = load_layout("aic")
    boxes = np.tile([0.0, 0.0, 80.0, 200.0], (30, 1))
    kp = posed_keypoints(np.random.default_rng(1), boxes, aic.keypoints, unlabelled=0)
    lr = left_right(kp, aic)
    assert lr.facing == ()
    assert len(lr.limbs) == 10 and all(m.rate == 1.0 for m in lr.limbs)


def test_unlabelled_and_empty():
    lr = left_right(np.zeros((0, COCO_K, 3)), COCO)
    assert all(f.rate is None for f in lr.facing) and all(m.rate is None for m in lr.limbs)
    assert lr.to_dict()["facing"][0] == {
        "pair": ["left_eye", "right_eye"],
        "front_facing": 0,
        "agree": 0,
        "rate": None,
    }
    assert LeftRight((Facing(("a", "b"), 30, 10),), (Limb(("a", "c"), 30, 29),)).problems() != []


# ------------------------------------------------------------------ through inspect, on merge outputs

SWAP_ALL = [[n, COCO.keypoints[COCO.flip_indices[i]]] for i, n in enumerate(COCO.keypoints)]
SWAP_ELBOWS = [
    [n, {"left_elbow": "right_elbow", "right_elbow": "left_elbow"}.get(n, n)] for n in COCO.keypoints
]


def _merge(tmp_path: Path, inputs: dict[str, Path], mapping: list | None, name: str = "out") -> Path:
    specs = tuple(
        SourceSpec(path=p, name=n, mapping=mapping if n == "swapped" and mapping else "auto")
        for n, p in inputs.items()
    )
    out = tmp_path / name
    run_job(Job("merge", specs, out, target="coco"))
    return out


@pytest.fixture
def generated(tmp_path: Path) -> dict[str, Path]:
    ok, other = tmp_path / "ok.json", tmp_path / "other.json"
    ok.write_bytes(synth_coco(scale=0.001, seed=1))
    other.write_bytes(synth_coco(scale=0.001, seed=2))
    return {"ok": ok, "swapped": other}


@pytest.mark.parametrize(
    ("mapping", "kind"), [(None, None), (SWAP_ALL, "left_right_swapped"), (SWAP_ELBOWS, "limb_crossed")]
)
def test_mapping_swaps_are_caught_on_generated_output(tmp_path, generated, mapping, kind):
    out = _merge(tmp_path, generated, mapping)
    report = inspect([out])
    (f,) = report.files
    found = [p for p in f.problems if p.kind in ("left_right_swapped", "limb_crossed")]
    assert [p.kind for p in found] == ([kind] if kind else [])
    assert all(str(e).startswith("swapped: ") for p in found for e in p.examples)
    assert report.exit_code(strict=True) == (1 if kind else 0)
    ok, swapped = f.sources
    assert not ok.left_right.problems()
    assert [p.kind for p in swapped.left_right.problems()] == ([kind] if kind else [])


def test_inspect_json_and_table_show_the_rates(tmp_path, generated):
    out = _merge(tmp_path, generated, SWAP_ELBOWS)
    runner = CliRunner()
    result = runner.invoke(cli, ["inspect", str(out), "--json", "--strict"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    ok, swapped = doc["files"][0]["sources"]
    limb = {tuple(m["link"]): m for m in swapped["left_right"]["limbs"]}
    assert limb["left_shoulder", "left_elbow"]["rate"] < 0.5
    ok_limb = {tuple(m["link"]): m for m in ok["left_right"]["limbs"]}
    assert ok_limb["left_shoulder", "left_elbow"]["rate"] > 0.9
    assert doc["files"][0]["left_right"]["facing"][0]["pair"] == ["left_eye", "right_eye"]
    table = runner.invoke(cli, ["inspect", str(out)]).stdout
    row = next(line for line in table.splitlines() if line.startswith("limb left_shoulder-left_elbow"))
    cells = row.split()  # limb NAME  R% of N  R% of N
    assert cells[2] == "100.0%" and float(cells[5].rstrip("%")) < 50
    assert "limb_crossed" in table and "swapped: left_shoulder-left_elbow" in table


def test_input_file_has_the_statistics(tmp_path, generated):
    (f,) = inspect([generated["ok"]]).files
    assert f.left_right.facing and all(x.rate == 1.0 for x in f.left_right.facing if x.front_facing)
    assert not [p for p in f.problems if p.kind in ("left_right_swapped", "limb_crossed")]


# ------------------------------------------------------------------------------------- COCO fixture


def _tiled(tmp_path: Path, times: int) -> Path:
    """The COCO fixture with its annotations repeated (new ids), to reach MIN_INSTANCES."""
    doc = json.loads(fixture("coco/test_coco.json").read_text())
    anns = doc["annotations"]
    doc["annotations"] = [dict(a, id=a["id"] * 10 + t) for t in range(times) for a in anns]
    path = tmp_path / "coco_tiled.json"
    path.write_text(json.dumps(doc))
    return path


@needs_fixtures
def test_coco_fixture_rates():
    doc = json.loads(fixture("coco/test_coco.json").read_text())
    kp = np.array([a["keypoints"] for a in doc["annotations"]], dtype=float).reshape(-1, COCO_K, 3)
    lr = left_right(kp, COCO)
    facing = {f.pair[0]: (f.front_facing, f.agree) for f in lr.facing}
    assert facing["left_shoulder"] == (10, 9) and facing["left_eye"] == (9, 9)
    limbs = {"-".join(m.link): (m.counted, m.consistent) for m in lr.limbs}
    assert limbs["left_shoulder-left_elbow"] == (10, 9) and limbs["right_shoulder-right_elbow"] == (10, 10)
    assert all(f.agree / f.front_facing > 0.5 for f in lr.facing)
    assert all(m.consistent / m.counted > 0.5 for m in lr.limbs)
    swapped = left_right(_swap(kp, *ALL_SIDES), COCO)
    assert all(f.agree / f.front_facing < 0.5 for f in swapped.facing)


@needs_fixtures
@pytest.mark.parametrize(
    ("mapping", "kind"), [(None, None), (SWAP_ALL, "left_right_swapped"), (SWAP_ELBOWS, "limb_crossed")]
)
def test_mapping_swaps_are_caught_on_the_coco_fixture(tmp_path, mapping, kind):
    out = _merge(tmp_path, {"swapped": _tiled(tmp_path, 3)}, mapping)
    (f,) = inspect([out]).files
    found = [p for p in f.problems if p.kind in ("left_right_swapped", "limb_crossed")]
    assert [p.kind for p in found] == ([kind] if kind else [])
    if kind == "limb_crossed":
        assert set(found[0].examples) <= {f"swapped: {link}" for link in ELBOW_LINKS}
        assert "swapped: left_shoulder-left_elbow" in found[0].examples


def test_people_without_pixel_coordinates_are_left_out():
    good = _posed(40)
    unknown = _posed(60, seed=1)
    unknown[:, :, :2] = np.nan  # a YOLO dataset whose image sizes are unknown
    alone = left_right(unknown, COCO)
    assert all(f.front_facing == 0 for f in alone.facing) and all(m.counted == 0 for m in alone.limbs)
    assert alone.problems() == []
    mixed, reference = left_right(np.concatenate([unknown, good]), COCO), left_right(good, COCO)
    assert mixed == reference


def _yolo_without_images(root: Path, people: int) -> Path:
    """A YOLO-pose dataset whose list file names images that are not there (their sizes unknown)."""
    kp = _posed(people, back=0.0)
    kp[:, :, 0] /= 200.0
    kp[:, :, 1] /= 300.0
    kp[::3, COCO.index("left_ankle")] = 0  # unlabelled: 0 0 0
    (root / "labels").mkdir(parents=True)
    lines = []
    for i, person in enumerate(kp):
        values = [0, 0.3, 0.4, 0.5, 0.7, *person.ravel().tolist()]
        (root / "labels" / f"{i}.txt").write_text(" ".join(f"{v:g}" for v in values) + "\n")
        lines.append(f"images/{i}.jpg")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    flip = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    (root / "data.yaml").write_text(
        f"path: .\ntrain: train.txt\nkpt_shape: [17, 3]\nflip_idx: {flip}\nnames:\n  0: person\n"
    )
    return root / "data.yaml"


def test_inspect_a_yolo_dataset_without_images_reports_no_side_problems(tmp_path):
    path = _yolo_without_images(tmp_path / "set", 2 * MIN_INSTANCES)
    f = inspect([path]).files[0]
    kinds = {p.kind for p in f.problems}
    assert "missing_image_file" in kinds
    assert not kinds & {"left_right_swapped", "limb_crossed", "unlabelled_with_coordinates"}
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert "% of " not in result.stdout
    for kind in ("left_right_swapped", "limb_crossed", "unlabelled_with_coordinates"):
        assert kind not in result.stdout
