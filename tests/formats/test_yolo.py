"""The YOLO-pose reader on small datasets the tests write (kpmerge.formats.yolo, formats.yolo_yaml)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from kpmerge.build import merge
from kpmerge.cli import cli
from kpmerge.errors import KpmergeError, UsageError
from kpmerge.exports.yolo import yolo_files
from kpmerge.formats.coco import read_coco
from kpmerge.formats.yolo import read_yolo, yolo_to_dataset
from kpmerge.formats.yolo_yaml import parse_data_yaml
from kpmerge.inspect import inspect
from kpmerge.job import SourceSpec, load_source
from kpmerge.layouts import builtin_layout

COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def _yaml(**changes):
    data = {"train": "images/train", "val": "images/val", "kpt_shape": [17, 3], "flip_idx": COCO_FLIP}
    data["names"] = {0: "person"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _row(cls=0, box=(0.5, 0.5, 0.2, 0.4), points=((0.1, 0.2, 2),), k=17, ndim=3):
    pts = list(points) + [(0, 0, 0)] * (k - len(points))
    values = [cls, *box] + [v for p in pts for v in p[:ndim]]
    return " ".join(f"{v:g}" for v in values)


def _dataset(root: Path, data: dict, images: dict, labels: dict, yaml_name: str = "data.yaml") -> Path:
    """Write a dataset: `images` maps a path (from root) to (w, h) or (w, h, exif orientation)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, size in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        if len(size) > 2:
            exif[274] = size[2]
        Image.new("RGB", size[:2]).save(root / name, exif=exif)
    for name, text in labels.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / yaml_name).write_text(yaml.safe_dump(data))
    return root / yaml_name


def test_folder_split_3d_keypoints_to_pixels(tmp_path):
    row = _row(box=(0.5, 0.25, 0.2, 0.5), points=((0.1, 0.2, 2), (0.5, 0.5, 1), (0, 0, 0)))
    path = _dataset(
        tmp_path / "ds",
        _yaml(),
        {"images/train/b.jpg": (200, 100), "images/train/a.jpg": (100, 50), "images/train/c.png": (20, 20)},
        {
            "labels/train/a.txt": row + "\n\n" + row.replace("0.5 0.25", "0.4 0.25") + "\n",
            "labels/train/b.txt": row,
        },
    )
    ds = read_yolo(path)
    assert ds.format == "yolo" and ds.layout.name == "coco" and ds.keypoint_names is None
    assert list(ds.images.ids) == ["images/train/a.jpg", "images/train/b.jpg", "images/train/c.png"]
    assert list(ds.images.file_names) == list(ds.images.ids)
    assert ds.images.widths.tolist() == [100, 200, 20] and ds.images.heights.tolist() == [50, 100, 20]
    inst = ds.instances
    assert list(inst.ids) == ["images/train/a.jpg#1", "images/train/a.jpg#3", "images/train/b.jpg#1"]
    assert inst.image_index.tolist() == [0, 0, 1]
    np.testing.assert_allclose(inst.keypoints[0, :3], [[10, 10, 2], [50, 25, 1], [0, 0, 0]])
    np.testing.assert_allclose(inst.boxes, [[40, 0, 20, 25], [30, 0, 20, 25], [80, 0, 40, 50]])
    assert np.isnan(inst.areas).all() and inst.iscrowd.tolist() == [0, 0, 0]
    assert ds.skipped == {} and ds.annotations_read == 3


def test_2d_keypoints_zero_is_unlabelled(tmp_path):
    row = _row(points=((0.1, 0.2), (0, 0), (0.3, 0)), ndim=2)
    path = _dataset(
        tmp_path, _yaml(kpt_shape=[17, 2]), {"images/train/a.jpg": (100, 100)}, {"labels/train/a.txt": row}
    )
    kp = read_yolo(path).instances.keypoints[0]
    np.testing.assert_allclose(kp[:4], [[10, 20, 2], [0, 0, 0], [30, 0, 2], [0, 0, 0]])


def test_list_files_lists_of_splits_and_root(tmp_path):
    root = tmp_path / "root"
    _dataset(
        root,
        {},
        {
            "images/a/x.jpg": (10, 10),
            "images/b/y.jpg": (10, 10),
            "images/c/z.jpg": (10, 10),
            "images/c/w.jpg": (10, 10),
        },
        {"labels/a/x.txt": _row(), "labels/c/z.txt": _row() + "\n" + _row(box=(0.1, 0.1, 0.1, 0.1))},
    )
    (root / "lists").mkdir()
    (root / "lists" / "a.txt").write_text("images/a/x.jpg\n")  # relative lines are taken from the root
    (root / "c.txt").write_text("\ufeff./images/c/z.jpg\n./images/c/z.jpg\nimages/b/y.jpg\nnotes.md\n")
    data = _yaml(path="../root", train=["lists/a.txt", "c.txt", "images/c"])
    path = tmp_path / "cfg" / "pose.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data))
    ds = read_yolo(path)
    assert list(ds.images.ids) == ["images/a/x.jpg", "images/b/y.jpg", "images/c/w.jpg", "images/c/z.jpg"]
    assert len(ds.instances) == 3


def test_path_absent_is_the_yaml_folder_and_folder_sources(tmp_path):
    path = _dataset(
        tmp_path / "set", _yaml(), {"images/train/a.jpg": (10, 10)}, {"labels/train/a.txt": _row()}
    )
    assert read_yolo(path.parent).images.ids.tolist() == ["images/train/a.jpg"]
    (tmp_path / "two").mkdir()
    for name in ("a.yaml", "b.yml"):
        (tmp_path / "two" / name).write_text(yaml.safe_dump(_yaml()))
    with pytest.raises(UsageError, match=r"found several dataset yamls \(a.yaml, b.yml\)"):
        read_yolo(tmp_path / "two")


def test_exif_rotated_images_swap_width_and_height(tmp_path):
    images = {
        "images/train/r6.jpg": (100, 50, 6),
        "images/train/r8.jpg": (100, 50, 8),
        "images/train/r3.jpg": (100, 50, 3),
        "images/train/p6.png": (100, 50, 6),
        "images/train/w6.webp": (100, 50, 6),
        "images/train/t6.tif": (100, 50, 6),
    }
    path = _dataset(tmp_path, _yaml(), images, {"labels/train/r6.txt": _row(points=((0.5, 0.5, 2),))})
    ds = read_yolo(path)
    sizes = dict(
        zip(
            ds.images.ids,
            zip(ds.images.widths.tolist(), ds.images.heights.tolist(), strict=True),
            strict=True,
        )
    )
    assert sizes == {
        "images/train/p6.png": (50, 100),
        "images/train/r3.jpg": (100, 50),
        "images/train/r6.jpg": (50, 100),
        "images/train/r8.jpg": (50, 100),
        "images/train/t6.tif": (50, 100),
        "images/train/w6.webp": (50, 100),
    }
    np.testing.assert_allclose(ds.instances.keypoints[0, 0], [25, 50, 2])  # divided by the turned size


@pytest.mark.parametrize(
    ("changes", "layout", "names", "note"),
    [
        ({}, "coco", builtin_layout("coco").keypoints, None),
        (
            {"kpt_names": {0: list(builtin_layout("coco").keypoints)}},
            "coco",
            builtin_layout("coco").keypoints,
            None,
        ),
        (
            {"kpt_shape": [16, 3], "flip_idx": builtin_layout("mpii").flip_indices},
            "mpii",
            builtin_layout("mpii").keypoints,
            None,
        ),
        ({"kpt_shape": [3, 3], "flip_idx": [1, 0, 2]}, "yolo_ds", ("kp0", "kp1", "kp2"), "by index"),
        ({"kpt_shape": [3, 3], "flip_idx": None}, "yolo_ds", ("kp0", "kp1", "kp2"), "it has no flip_idx"),
        (
            {"kpt_shape": [3, 3], "flip_idx": [1, 0, 2], "kpt_names": {0: ["l", "r", "c"]}},
            "yolo_ds",
            ("l", "r", "c"),
            "by name",
        ),
        (
            {"kpt_names": {0: list(builtin_layout("coco").keypoints)}, "flip_idx": list(range(17))},
            "yolo_ds",
            builtin_layout("coco").keypoints,
            "by name",
        ),
    ],
)
def test_layouts(changes, layout, names, note):
    spec = parse_data_yaml(_yaml(**changes), Path("/x/ds/data.yaml"))
    k = spec.k
    text = _row(points=((0.5, 0.5, 2),), k=k)
    ds = yolo_to_dataset(spec, ["a.jpg"], [text], [[10, 10]])
    assert ds.layout.name == layout and ds.layout.keypoints == tuple(names)
    assert ds.layout.origin == 0  # YOLO coordinates are 0-based even for MPII's layout
    if note is None:
        assert ds.notes == ()
    else:
        assert note in ds.notes[0]
    if changes.get("flip_idx"):
        assert ds.layout.flip_indices == changes["flip_idx"]


def test_several_classes(tmp_path):
    rows = "\n".join([_row(cls=0), _row(cls=1), _row(cls=1, box=(0.2, 0.2, 0.1, 0.1))])
    data = _yaml(names=["person", "dog"], kpt_names={1: list(builtin_layout("coco").keypoints)})
    spec = parse_data_yaml(data, "data.yaml")
    with pytest.raises(
        UsageError, match=r"data.yaml: names: several classes \(0 person, 1 dog\); choose one"
    ):
        yolo_to_dataset(spec, ["a.jpg"], [rows], [[10, 10]])
    dogs = yolo_to_dataset(spec, ["a.jpg"], [rows], [[10, 10]], class_id="dog")
    assert len(dogs.instances) == 2 and dogs.skipped == {"other_class": 1} and dogs.annotations_read == 3
    assert dogs.keypoint_names == builtin_layout("coco").keypoints
    people = yolo_to_dataset(spec, ["a.jpg"], [rows], [[10, 10]], class_id="0")
    assert len(people.instances) == 1 and people.skipped == {"other_class": 2}
    with pytest.raises(UsageError, match=r"names: no class 'cat' \(classes: 0 person, 1 dog\)"):
        yolo_to_dataset(spec, ["a.jpg"], [rows], [[10, 10]], class_id="cat")


def test_duplicate_rows_are_left_out_and_counted():
    text = "\n".join([_row(), _row(), _row(box=(0.5, 0.5, 0.2, 0.40000001))])  # the last equals as float32
    ds = yolo_to_dataset(_yaml(), ["a.jpg", "b.jpg"], [text, _row()], [[10, 10], [10, 10]])
    assert list(ds.instances.ids) == ["a.jpg#1", "b.jpg#1"] and ds.skipped == {"duplicate_row": 2}


BAD_ROWS = [
    (_row() + " 0", "line 2: expected 56 values (class, box x y w h, 17 keypoints x 3), got 57"),
    (_row().replace("0.1", "abc", 1), "line 2: expected numbers, got 'abc'"),
    (_row().replace("0.1", "nan", 1), "line 2: expected finite numbers, got 'nan'"),
    (_row(cls=1), "line 2: class 1 is not a class of the yaml's names (0..0)"),
    (_row(cls=0.5), "line 2: class 0.5 is not a class of the yaml's names (0..0)"),
    (
        _row(points=((0.1, 1.0101, 2),)),
        "line 2: keypoint 0 y = 1.0101 is above 1.01 (Ultralytics rejects the image)",
    ),
    (
        _row(points=((0, 0, 0), (1.5, 0, 2))),
        "line 2: keypoint 1 x = 1.5 is above 1.01 (Ultralytics rejects the image)",
    ),
    (
        _row(box=(-0.02, 0.5, 0.2, 0.4)),
        "line 2: box x = -0.02 is below -0.01 (Ultralytics rejects the image)",
    ),
    (_row(box=(0.5, 0.5, 0.2, -0.001)), "line 2: box height = -0.001: expected a box size >= 0"),
    (_row(points=((0.1, 0.2, 3),)), "line 2: keypoint 0 v = 3: expected a visibility 0, 1 or 2"),
]


@pytest.mark.parametrize(("row", "message"), BAD_ROWS)
def test_bad_rows_name_the_file_and_line(row, message):
    with pytest.raises(KpmergeError) as info:
        yolo_to_dataset(_yaml(), ["images/a.jpg"], ["\n" + row + "\n"], [[10, 10]])
    assert str(info.value) == f"labels/a.txt: {message}"


def test_values_inside_the_margin_are_kept():
    row = _row(box=(1.5, -0.01, 0.2, 0.4), points=((1.01, -0.0099, 2),))
    ds = yolo_to_dataset(_yaml(), ["a.jpg"], [row], [[100, 100]])
    np.testing.assert_allclose(ds.instances.keypoints[0, 0], [101, -0.99, 2])


YAML_ERRORS = [
    ({"kpt_shape": None}, "kpt_shape: missing (a YOLO-pose dataset yaml gives kpt_shape: [K, 2 or 3])"),
    ({"kpt_shape": [17, 4]}, "kpt_shape: expected [K, 2] or [K, 3] with K >= 1, got [17, 4]"),
    ({"names": None}, "names: missing (give names: [..] or nc: N)"),
    ({"names": {0: "a", 2: "b"}}, "names: expected class ids 0..1, got [0, 2]"),
    ({"flip_idx": [0, 1]}, "flip_idx: expected a permutation of 0..16 (one entry per keypoint), got [0, 1]"),
    (
        {"flip_idx": [1, 2, 0, *range(3, 17)]},
        "flip_idx: keypoint 0 flips to 1 but 1 flips to 2: expected pairs",
    ),
    ({"kpt_names": {0: ["a"]}}, "kpt_names.0: expected 17 keypoint names, got ['a']"),
    ({"train": 3}, "train: expected an image folder, a .txt list or a list of them, got 3"),
    ({"path": 1}, "path: expected the dataset root as a string, got 1"),
]


@pytest.mark.parametrize(("changes", "message"), YAML_ERRORS)
def test_yaml_errors_name_the_file_and_key(changes, message):
    with pytest.raises(KpmergeError) as info:
        parse_data_yaml(_yaml(**changes), "set/data.yaml")
    assert str(info.value) == f"set/data.yaml: {message}"
    assert info.value.exit_code == 1


def _run(args, ok=True):
    result = CliRunner().invoke(cli, args, catch_exceptions=not ok)
    return result


@pytest.mark.parametrize(
    ("setup", "args", "code", "error"),
    [
        (
            "no_val",
            ["--split", "val"],
            2,
            "data.yaml: val: no such split (the yaml has: train); choose one with --split",
        ),
        ("missing_image", [], 1, "images/train/a.jpg: image not found (listed by the dataset yaml)"),
        ("bad_header", [], 1, "images/train/a.jpg: cannot read the image header: "),
        ("bad_row", [], 1, "labels/train/a.txt: line 1: expected 56 values"),
        ("no_images", [], 1, "data.yaml: train: no images found"),
        ("missing_folder", [], 2, "data.yaml: train: images/train not found"),
        ("not_yaml", [], 1, "data.yaml: not valid YAML"),
        (
            "two_classes",
            [],
            2,
            "data.yaml: names: several classes (0 a, 1 b); choose one with --class NAME=ID",
        ),
    ],
)
def test_cli_errors(tmp_path, setup, args, code, error):
    root = tmp_path / "ds"
    data = _yaml(val=None, names=["a", "b"] if setup == "two_classes" else ["person"])
    images = {"images/train/a.jpg": (10, 10)}
    labels = {"labels/train/a.txt": "1 2 3" if setup == "bad_row" else _row()}
    path = _dataset(root, data, images, labels)
    image = root / "images" / "train" / "a.jpg"
    if setup == "missing_image":
        (root / "list.txt").write_text("./images/train/a.jpg\n")
        image.unlink()
        path.write_text(yaml.safe_dump(_yaml(val=None, train="list.txt")))
    elif setup == "bad_header":
        image.write_bytes(b"not an image")
    elif setup == "no_images":
        image.rename(image.with_suffix(".gif"))
    elif setup == "missing_folder":
        image.unlink()
        image.parent.rmdir()
    elif setup == "not_yaml":
        path.write_text("train: [a\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["merge", f"mine={path}", *args, "-o", str(out)])
    assert result.exit_code == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and error in lines[-1], lines[-1]
    assert lines[-1].count("Error:") == 1 and not out.exists()


def _coco_file(path: Path) -> Path:
    """A small COCO file: people without keypoints, a crowd one, boxes partly outside, odd sizes."""
    names = list(builtin_layout("coco").keypoints)
    rng = np.random.default_rng(3)
    images, annotations = [], []
    for i in range(4):
        w, h = 640 - 31 * i, 427 + 17 * i
        images.append({"id": 10 + i, "file_name": f"img/{i}.jpg", "width": w, "height": h})
        for j in range(3):
            v = rng.choice([0, 1, 2], 17) * (j != 2 or i % 2)
            xy = rng.uniform(0, 1, (17, 2)) * [w - 1, h - 1]
            kp = np.concatenate([np.where(v[:, None] > 0, np.round(xy, 2), 0), v[:, None]], axis=1)
            box = [
                round(float(rng.uniform(-40, w - 60)), 2),
                round(float(rng.uniform(0, h - 60)), 2),
                120.5,
                99.25,
            ]
            annotations.append(
                {
                    "id": 100 * i + j,
                    "image_id": 10 + i,
                    "category_id": 1,
                    "keypoints": [float(x) if x % 1 else int(x) for x in kp.ravel()],
                    "bbox": box,
                    "area": 1000.0,
                    "iscrowd": int(i == 3 and j == 0),
                }
            )
    doc = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "keypoints": names}],
    }
    path.write_text(json.dumps(doc))
    return path


def test_round_trip_export_read_back_and_merged_into_coco(tmp_path):
    """An export read back as a yolo source and merged into coco gives every exported person back."""
    coco = _coco_file(tmp_path / "c.json")
    merged = merge([load_source(SourceSpec(coco, name="c"))])
    out = tmp_path / "out"
    for name, blob in yolo_files(merged).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(blob)
    data_root = tmp_path / "data"
    for img in json.loads(coco.read_text())["images"]:
        (data_root / img["file_name"]).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (img["width"], img["height"])).save(data_root / img["file_name"])
    (out / "yolo" / "images").symlink_to(data_root)
    back = merge([load_source(SourceSpec(out / "yolo" / "data.yaml", name="y"))], builtin_layout("coco"))
    original = read_coco(coco).instances
    exported = (original.iscrowd == 0) & (original.keypoints[:, :, 2] > 0).any(axis=1)
    assert exported.sum() == 9 and len(back.dataset.instances) == 9
    got, want = back.dataset.instances, original[exported]
    np.testing.assert_array_equal(got.keypoints[:, :, 2], want.keypoints[:, :, 2])
    np.testing.assert_allclose(got.keypoints[:, :, :2], want.keypoints[:, :, :2], atol=1e-3)
    np.testing.assert_allclose(got.boxes, want.boxes, atol=2e-3)
    assert list(back.dataset.images.file_names) == [f"images/img/{i}.jpg" for i in range(4)]


def test_combine_a_yolo_source_with_coco_through_the_cli(tmp_path):
    path = _dataset(
        tmp_path / "mine", _yaml(), {"images/train/a.jpg": (100, 50)}, {"labels/train/a.txt": _row()}
    )
    coco = _coco_file(tmp_path / "c.json")
    out = tmp_path / "mixed"
    result = CliRunner().invoke(
        cli,
        ["combine", str(path), f"coco={coco}", "--export", "yolo", "-o", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    mine = manifest["sources"][0]
    assert mine["name"] == "mine" and mine["format"] == "yolo" and mine["layout"] == "coco"
    assert mine["area"]["computed"] == 1 and mine["annotations"]["written"] == 1
    assert manifest["exports"]["yolo"]["sources"]["mine"]["rows"] == 1
    ann = json.loads((out / "annotations.json").read_text())["annotations"][0]
    assert ann["source_id"] == "images/train/a.jpg#1" and ann["iscrowd"] == 0
    assert (out / "yolo" / "data.yaml").is_file()


def test_recipe_split_and_class(tmp_path):
    path = _dataset(
        tmp_path / "ds",
        _yaml(names=["person", "dog"]),
        {"images/val/a.jpg": (10, 10)},
        {"labels/val/a.txt": _row(cls=1) + "\n" + _row(cls=0)},
    )
    (tmp_path / "r.toml").write_text(
        f'mode = "merge"\noutput = "o"\n[[sources]]\npath = "{path}"\nsplit = "val"\nclass = 1\n'
    )
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "r.toml")], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    src = json.loads((tmp_path / "o" / "manifest.json").read_text())["sources"][0]
    assert src["annotations"]["not_written"] == {"other_class": 1} and src["annotations"]["written"] == 1
    result = CliRunner().invoke(
        cli,
        ["merge", f"d={path}", "--split", "d=val", "--class", "d=person", "-o", str(tmp_path / "o2")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr


def test_inspect_reads_yolo_datasets_leniently(tmp_path):
    rows = "\n".join([_row(), _row(), _row(points=((0.1, 0.2, 5),)), "0 1 2"])
    path = _dataset(
        tmp_path,
        _yaml(),
        {"images/train/a.jpg": (10, 10), "images/train/b.jpg": (10, 10)},
        {"labels/train/a.txt": rows},
    )
    (tmp_path / "images" / "train" / "b.jpg").write_bytes(b"broken")
    report = inspect([path])
    f = report.files[0]
    assert (f.format, f.layout, f.images, f.annotations) == ("yolo", "coco", 2, 1)
    kinds = {p.kind: (p.count, p.examples) for p in f.problems}
    assert kinds["bad_visibility"] == (1, ("images/train/a.jpg#3",))
    assert kinds["bad_label_row"] == (1, ("images/train/a.jpg#4",))
    assert kinds["duplicate_label_row"] == (1, ("images/train/a.jpg#2",))
    assert kinds["missing_image_file"] == (1, ("images/train/b.jpg",))
    assert f.keypoints[0].labelled == 1
    assert report.exit_code() == 1


def test_schemas_know_the_yolo_keys(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schemas = Path(__file__).parents[2] / "schemas"
    recipe = {
        "mode": "merge",
        "output": "o",
        "yolo_keep_empty": True,
        "sources": [{"path": "d/data.yaml", "format": "yolo", "split": "val", "class": 1}],
    }
    jsonschema.validate(recipe, json.loads((schemas / "recipe.schema.json").read_text()))
    path = _dataset(tmp_path / "d", _yaml(), {"images/train/a.jpg": (10, 10)}, {"labels/train/a.txt": _row()})
    result = CliRunner().invoke(
        cli, ["merge", str(path), "--export", "yolo", "-o", str(tmp_path / "o")], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    jsonschema.validate(manifest, json.loads((schemas / "manifest.schema.json").read_text()))
    assert manifest["exports"]["yolo"]["links"] == [["nested/images", "images"]]


@pytest.mark.parametrize(
    ("dtype", "expected", "without_first"),
    [
        (np.float32, [False, True, False, True], [False, False, False, True]),
        (np.float64, [False, False, False, True], [False, False, False, False]),
    ],
)
def test_repeats_compare_rows_as_their_dtype(dtype, expected, without_first):
    from kpmerge.formats.yolo import repeats

    rows = np.array([[0.1, 0.2], [0.1 + 1e-12, 0.2], [0.1, 0.2], [0.1, 0.2]], dtype=dtype)
    image = np.array([0, 0, 1, 0])
    assert repeats(image, rows, np.ones(4, dtype=bool)).tolist() == expected
    assert repeats(image, rows, np.array([False, True, True, True])).tolist() == without_first
