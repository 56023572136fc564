"""kpmerge.show: contact sheets of output folders and input files, with and without images."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kpmerge.crops import CANVAS, region
from kpmerge.errors import KpmergeError, UsageError
from kpmerge.job import Job, SourceSpec, run_job
from kpmerge.layouts import load_layout
from kpmerge.sheet_draw import GAP, LINE, PAD, SIDE_COLORS
from kpmerge.show import contact_sheet, named_sources, pick, show
from kpmerge.synth import COCO_IMAGES, SAMPLE_COCO_IMAGES, posed_keypoints, synth_coco

IMAGE_COLOR = (200, 40, 40)


def coco_doc(seed: int = 0) -> dict:
    """A small synthetic COCO file (6 images, 13 people)."""
    return json.loads(synth_coco(SAMPLE_COCO_IMAGES / COCO_IMAGES, seed))


def aic_style_doc(seed: int = 0) -> dict:
    """The same images and boxes with 14 keypoints in the AIC layout, as a COCO-style file."""
    doc = coco_doc(seed)
    aic = load_layout("aic")
    boxes = np.array([a["bbox"] for a in doc["annotations"]], dtype=float)
    kp = posed_keypoints(np.random.default_rng(seed), boxes, aic.keypoints)
    for a, row in zip(doc["annotations"], kp.reshape(len(kp), -1).astype(int).tolist(), strict=True):
        a["keypoints"], a["num_keypoints"] = row, sum(v > 0 for v in row[2::3])
    doc["categories"][0]["keypoints"] = list(aic.keypoints)
    doc["categories"][0]["skeleton"] = []
    return doc


def write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def write_images(root: Path, doc: dict, prefix: str = "", fmt: str = "PNG") -> Path:
    """One plain image per image record, under root/prefix/file_name."""
    for img in doc["images"]:
        target = root / prefix / img["file_name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (img["width"], img["height"]), IMAGE_COLOR).save(target, format=fmt)
    return root


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    return {
        "coco": write(tmp_path / "coco.json", coco_doc(0)),
        "aicstyle": write(tmp_path / "aicstyle.json", aic_style_doc(1)),
    }


@pytest.fixture
def output(tmp_path: Path, inputs: dict[str, Path]) -> Path:
    specs = tuple(SourceSpec(path=p, name=n, image_prefix=f"{n}/") for n, p in inputs.items())
    out = tmp_path / "out"
    run_job(Job("combine", specs, out))
    return out


@pytest.mark.parametrize(
    ("size", "n", "expected"),
    [
        (100, 4, [(0, 25), (25, 50), (50, 75), (75, 100)]),
        (10, 3, [(0, 4), (4, 7), (7, 10)]),
        (3, 8, [(0, 1), (1, 2), (2, 3)]),
        (0, 8, []),
    ],
)
def test_pick_spreads_over_the_pool(size, n, expected):
    pool = np.arange(size) * 3
    picked = pick(pool, n, seed=5, name="coco")
    assert len(picked) == len(expected)
    for value, (lo, hi) in zip(picked.tolist(), expected, strict=True):
        assert value % 3 == 0 and lo <= value // 3 < hi
    assert picked.tolist() == pick(pool, n, seed=5, name="coco").tolist()


def test_pick_depends_on_seed_and_name():
    pool = np.arange(1000)
    picks = {tuple(pick(pool, 8, s, n).tolist()) for s in (0, 1) for n in ("a", "b")}
    assert len(picks) == 4


def _cell_origin(r: int, c: int, row_counts: list[int], cell: int) -> tuple[int, int]:
    """Top-left pixel of cell c of row r (the sheet's geometry)."""
    top = PAD + 2 * LINE + GAP
    for count in row_counts[:r]:
        top += 2 * LINE + (LINE + cell if count else LINE) + 2 * GAP
    return PAD + c * (cell + GAP), top + GAP + 2 * LINE + LINE


def test_output_folder_without_images(output):
    sheet = contact_sheet([output], per_source=5, cell=96)
    assert [r.name for r in sheet.rows] == ["coco", "aicstyle"]
    assert [r.layout.name for r in sheet.rows] == ["coco_aic", "coco_aic"]
    assert [len(r.instances) for r in sheet.rows] == [5, 5] and sheet.on_image == 0
    manifest = json.loads((output / "manifest.json").read_text())
    assert [r.pool for r in sheet.rows] == [len(s["pool"]) for s in manifest["sources"]]
    assert sheet.rows[0].defined == tuple(range(17))  # coco defines 17 of coco_aic's 19
    # ids are the original ones
    coco_ids = {a["id"] for a in coco_doc(0)["annotations"]}
    assert set(sheet.rows[0].ids) <= coco_ids
    width = max(2 * PAD + 5 * 96 + 4 * GAP, 560)
    height = PAD + 2 * LINE + GAP + 2 * (2 * LINE + LINE + 96 + 2 * GAP) + PAD
    image = Image.open(io.BytesIO(sheet.png()))
    assert image.size == (width, height) and image.format == "PNG"
    for r in range(2):  # every row has its cells, each with something drawn on the canvas
        for c in range(5):
            x, y = _cell_origin(r, c, [5, 5], 96)
            tile = np.asarray(sheet.image.crop((x, y, x + 96, y + 96)))
            assert (tile == CANVAS).all(axis=2).mean() > 0.5
            assert not (tile == CANVAS).all()


def test_inputs_each_in_their_own_layout(inputs):
    sheet = contact_sheet([SourceSpec(path=inputs["coco"], name="c"), inputs["aicstyle"]], per_source=3)
    assert [(r.name, r.layout.name, r.defined) for r in sheet.rows] == [
        ("c", "coco", tuple(range(17))),
        ("aicstyle", "aic", tuple(range(14))),
    ]
    assert [r.annotations for r in sheet.rows] == [13, 13]


def test_output_folder_with_images(tmp_path, output, inputs):
    root = tmp_path / "images"
    write_images(root, coco_doc(0), "coco/", fmt="JPEG")
    write_images(root, aic_style_doc(1), "aicstyle/")
    sheet = contact_sheet([output], images=root, per_source=4, cell=64)
    assert sheet.on_image == sheet.drawn == 8 and sheet.notes == ()
    x, y = _cell_origin(0, 0, [4, 4], 64)
    tile = np.asarray(sheet.image.crop((x, y, x + 64, y + 64))).reshape(-1, 3).astype(int)
    near = (np.abs(tile - IMAGE_COLOR) <= 3).all(axis=1)
    assert near.mean() > 0.3  # the image's colour shows through
    # a root for one source only: the other stays on the canvas
    one = contact_sheet([output], images={"aicstyle": root}, per_source=4, cell=64)
    assert one.on_image == 4 and [r.root for r in one.rows] == [None, root]


def test_same_bytes_twice(tmp_path, output):
    root = write_images(tmp_path / "images", coco_doc(0), "coco/", fmt="JPEG")
    a = show([output], tmp_path / "a.png", images=root, names=True)
    show([output], tmp_path / "b.png", images=root, names=True)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert a.on_image == 8  # the coco row; the other source has no images here
    other = contact_sheet([output], images=root, names=True, seed=1).png()
    assert other != (tmp_path / "a.png").read_bytes()


def _one_person(tmp_path: Path, v: int, name: str) -> tuple[Path, dict]:
    doc = coco_doc(0)
    doc["images"] = doc["images"][:1]
    ann = dict(doc["annotations"][0], id=7, image_id=doc["images"][0]["id"], iscrowd=0)
    ann["bbox"] = [100, 50, 80, 200]
    kp = [0] * 51
    for i, (x, y) in {5: (170, 100), 6: (110, 100), 7: (175, 150)}.items():  # shoulders, left elbow
        kp[3 * i : 3 * i + 3] = [x, y, 2]
    kp[3 * 7 + 2] = v
    if v == 0:
        kp[21:23] = [0, 0]
    ann["keypoints"], ann["num_keypoints"] = kp, sum(x > 0 for x in kp[2::3])
    doc["annotations"] = [ann]
    return write(tmp_path / f"{name}.json", doc), ann


@pytest.mark.parametrize(("v", "centre"), [(2, SIDE_COLORS["left"]), (1, CANVAS), (0, CANVAS)])
def test_a_keypoint_changes_the_pixels_where_it_is_drawn(tmp_path, v, centre):
    cell = 120
    path, _ = _one_person(tmp_path, v, f"v{v}")
    sheet = contact_sheet([path], cell=cell)
    row = sheet.rows[0]
    x0, y0, size = region(row.instances, 0)
    k = cell / size
    cx, cy = _cell_origin(0, 0, [1], cell)
    px, py = round(cx + (175 - x0) * k), round(cy + (150 - y0) * k)
    pixel = sheet.image.getpixel((px, py))
    assert pixel == centre  # visible: filled with the left colour; occluded: hollow; unlabelled: nothing
    ring = [sheet.image.getpixel((px + dx, py)) for dx in (-3, 3)]
    if v == 1:
        assert SIDE_COLORS["left"] in ring
    if v == 0:
        assert set(ring) == {CANVAS}
    # the left shoulder - left elbow link is drawn (in the left colour) only when both are labelled
    mx, my = round(cx + (172.5 - x0) * k), round(cy + (125 - y0) * k)
    assert (sheet.image.getpixel((mx, my)) == SIDE_COLORS["left"]) == (v > 0)


def test_unreadable_image_falls_back_to_the_canvas(tmp_path):
    path, _ = _one_person(tmp_path, 2, "p")
    doc = json.loads(path.read_text())
    root = tmp_path / "images"
    root.mkdir()
    (root / doc["images"][0]["file_name"]).write_bytes(b"not an image")
    sheet = contact_sheet([path], images=root)
    assert sheet.on_image == 0 and len(sheet.notes) == 1 and "cannot read the image" in sheet.notes[0]


def test_large_jpeg_is_read_at_a_reduced_scale(tmp_path):
    path, _ = _one_person(tmp_path, 2, "p")
    doc = json.loads(path.read_text())
    doc["images"][0].update(width=4000, height=3000)
    write(path, doc)
    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (4000, 3000), IMAGE_COLOR).save(root / doc["images"][0]["file_name"], format="JPEG")
    sheet = contact_sheet([path], images=root, cell=48)
    assert sheet.on_image == 1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda p, t: contact_sheet([]), UsageError, "give at least one output folder or annotation file"),
        (lambda p, t: contact_sheet([p], t / "nope"), UsageError, "image root not found (expected a folder)"),
        (lambda p, t: contact_sheet([p], {"x": t}), UsageError, "--images: no source named 'x' (sources: p)"),
        (lambda p, t: contact_sheet([p], per_source=0), UsageError, "per_source must be 1..100, got 0"),
        (lambda p, t: contact_sheet([p], cell=10), UsageError, "cell must be 48..1024 pixels, got 10"),
        (lambda p, t: contact_sheet([t]), UsageError, "not a kpmerge output folder: no annotations.json"),
        (
            lambda p, t: (t / "s.png").write_bytes(b"x") and show([p], t / "s.png"),
            UsageError,
            "output exists (use --force to replace it)",
        ),
        (lambda p, t: show([p], t / "no/s.png"), UsageError, "the folder to hold the output does not exist"),
    ],
)
def test_errors(tmp_path, call, error, message):
    path, _ = _one_person(tmp_path, 2, "p")
    with pytest.raises(error) as info:
        call(path, tmp_path)
    assert info.value.message == message


def test_no_instance_to_draw(tmp_path):
    path, _ = _one_person(tmp_path, 2, "p")
    doc = json.loads(path.read_text())
    doc["annotations"][0]["iscrowd"] = 1
    write(path, doc)
    with pytest.raises(KpmergeError, match="no instance to draw") as info:
        contact_sheet([path])
    assert info.value.exit_code == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=x/coco.json", SourceSpec(path=Path("x/coco.json"), name="a")),
        ("x/coco.json", "x/coco.json"),
        ("=x.json", "=x.json"),
        ("out_dir", "out_dir"),
    ],
)
def test_named_sources(text, expected):
    assert named_sources([text]) == [expected]


def test_named_sources_a_file_named_with_an_equals_sign_is_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a=b.json").write_text("{}")
    assert named_sources(["a=b.json"]) == ["a=b.json"]
