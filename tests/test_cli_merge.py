"""merge, combine, run and layouts through the CLI, on files the tests write."""

import contextlib
import io
import json
import tomllib
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from tests.conftest import invoke
from tests.synthfiles import raw_aic_file, style_file

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
OUTPUT_FILES = ["annotations.json", "manifest.json", "metainfo.json", "metainfo.py"]


def schema(name):
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def load(out, name):
    return json.loads((out / name).read_text())


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """COCO (4 images, 14 people, one crowd), raw AIC (3 images, 9 people) with its image folder, and
    PoseTrack18 files, in tmp_path/in."""
    folder = tmp_path / "in"
    aic, aic_images = raw_aic_file(folder, images=3, people=9)
    return {
        "coco": style_file(folder, "coco", images=4, people=14, crowd=1),
        "aic": aic,
        "aic_images": aic_images,
        "posetrack18": style_file(folder, "posetrack18", images=3, people=8, crowd=1),
    }


def test_combine_writes_all_outputs_valid_and_loadable(tmp_path, files):
    out = tmp_path / "out"
    images = ["--image-dir", f"aic={files['aic_images']}"]
    result = invoke("combine", f"coco={files['coco']}", f"aic={files['aic']}", *images, "-o", out)
    assert sorted(p.name for p in out.iterdir()) == OUTPUT_FILES
    assert "kpmerge combine: 23 annotations in layout coco_aic" in result.stderr
    assert result.stdout == ""
    jsonschema.validate(load(out, "metainfo.json"), schema("metainfo"))
    jsonschema.validate(load(out, "manifest.json"), schema("manifest"))
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out / "annotations.json"))
    assert len(coco.getAnnIds()) == 23 and len(coco.getImgIds()) == 7
    doc = load(out, "annotations.json")
    assert doc["categories"][0]["keypoints"][17:] == ["head_top", "neck"]
    assert [a["source"] for a in doc["annotations"]] == ["coco"] * 14 + ["aic"] * 9
    src = json.loads(files["coco"].read_text())
    assert [a["source_id"] for a in doc["annotations"][:14]] == [a["id"] for a in src["annotations"]]
    assert doc["annotations"][0]["segmentation"] == src["annotations"][0]["segmentation"]
    assert [a["id"] for a in doc["annotations"]] == list(range(1, 24))


def test_metainfo_py_is_an_mmpose_dataset_info(tmp_path, files):
    out = tmp_path / "out"
    invoke(
        "combine",
        f"coco={files['coco']}",
        f"aic={files['aic']}",
        "--allow-missing-sizes",
        "-o",
        out,
    )
    scope: dict = {}
    exec((out / "metainfo.py").read_text(), scope)  # what mmengine's Config.fromfile does
    info = scope["dataset_info"]
    meta = load(out, "metainfo.json")
    names = [info["keypoint_info"][i]["name"] for i in range(len(info["keypoint_info"]))]
    assert names == meta["keypoints"]
    # flip indices as MMPose's parse_pose_metainfo derives them from `swap`
    flip = [
        names.index(info["keypoint_info"][i]["swap"]) if info["keypoint_info"][i]["swap"] else i
        for i in range(len(names))
    ]
    assert flip == meta["flip_indices"]
    links = [[names.index(a), names.index(b)] for a, b in (v["link"] for v in info["skeleton_info"].values())]
    assert links == meta["skeleton"]
    assert len(info["joint_weights"]) == len(info["sigmas"]) == 19
    assert scope["eval_indices"]["coco"] == list(range(17))
    assert scope["source_keypoints"]["aic"] == list(range(5, 19))


def test_merge_every_coco_style_file_into_coco(tmp_path):
    names = ["crowdpose", "halpe", "ochuman", "posetrack18", "jhmdb"]
    paths = [style_file(tmp_path / "in", n, people=6, crowd=0 if n == "jhmdb" else 1) for n in names]
    sources = [f"{n}={p}" for n, p in zip(names, paths, strict=True)]
    out = tmp_path / "out"
    invoke("merge", *sources, "--target", "coco", "-o", out)
    manifest = load(out, "manifest.json")
    doc = load(out, "annotations.json")
    total = 0
    for entry, path in zip(manifest["sources"], paths, strict=True):
        src = json.loads(path.read_text())
        counts = entry["annotations"]
        assert (
            counts["read"]
            == len(src["annotations"])
            == counts["written"] + sum(counts["not_written"].values())
        )
        start, end = counts["range"]
        assert end - start == counts["written"]
        total += counts["written"]
        assert all(a["source"] == entry["name"] for a in doc["annotations"][start:end])
    assert total == len(doc["annotations"])
    halpe = next(e for e in manifest["sources"] if e["name"] == "halpe")
    assert halpe["layout"] == "halpe" and len(halpe["mapping"]["pairs"]) == 17


def test_midpoint_mapping_into_a_user_layout(tmp_path, files):
    """coco -> 18 keypoints with neck = mid(left_shoulder, right_shoulder) (MMPose raises IndexError here)."""
    coco = json.loads(CliRunner().invoke(cli, ["layouts", "show", "coco"]).stdout)["layout"]
    neck = {"name": "neck", "swap": "", "type": "upper"}
    coco18 = dict(coco, name="coco18", keypoints=[*coco["keypoints"], neck])
    coco18.update(joint_weights=[*coco["joint_weights"], 1.0], sigmas=[*coco["sigmas"], 0.079])
    for k in coco18["keypoints"]:
        k.pop("color", None)
    layout = tmp_path / "coco18.json"
    layout.write_text(json.dumps(coco18))
    out = tmp_path / "out"
    mapping = ",".join(f"{i}:{i}" for i in range(17)) + ",left_shoulder+right_shoulder:neck"
    invoke("merge", f"coco={files['coco']}", "--target", layout, "--mapping", mapping, "-o", out)
    anns = json.loads(files["coco"].read_text())["annotations"]
    src = np.array([a["keypoints"] for a in anns], dtype=float).reshape(-1, 17, 3)
    got = np.array([a["keypoints"] for a in load(out, "annotations.json")["annotations"]]).reshape(-1, 18, 3)
    ls, rs = src[:, 5], src[:, 6]
    both = (ls[:, 2] > 0) & (rs[:, 2] > 0)
    assert both.any() and (~both).any()
    np.testing.assert_array_equal(got[both, 17, :2], (ls[both, :2] + rs[both, :2]) / 2)
    np.testing.assert_array_equal(got[both, 17, 2], np.minimum(ls[both, 2], rs[both, 2]))
    np.testing.assert_array_equal(got[~both, 17], 0)
    np.testing.assert_array_equal(got[:, :17], src)


def test_two_runs_are_byte_identical(tmp_path, files):
    args = [
        f"coco={files['coco']}",
        f"aic={files['aic']}",
        f"--image-dir=aic={files['aic_images']}",
        f"pt={files['posetrack18']}",
    ]
    invoke("combine", *args, "-o", tmp_path / "a")
    invoke("combine", *args, "-o", tmp_path / "b")
    for name in OUTPUT_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_run_sample_recipe(tmp_path):
    recipe = ROOT / "sample_data" / "recipe.toml"
    jsonschema.validate(tomllib.loads(recipe.read_text()), schema("recipe"))
    out = tmp_path / "sample_out"
    invoke("run", recipe, "-o", out)
    manifest = load(out, "manifest.json")
    assert manifest["layout"] == "coco_aic" and [s["name"] for s in manifest["sources"]] == ["coco", "aic"]
    assert manifest["sources"][0]["path"] == "coco_sample.json"
    doc = load(out, "annotations.json")
    assert doc["images"][0]["file_name"].startswith("coco/train2017/")
    assert doc["images"][-1]["file_name"].startswith("aic/train/")


def test_sample_data_is_what_the_generator_makes(tmp_path):
    from kpmerge.imagesize import image_size
    from kpmerge.synth import write_samples

    for name, path in write_samples(tmp_path).items():
        if path.is_dir():  # the images of the raw AIC records
            files = sorted(p.name for p in path.iterdir())
            assert files == sorted(p.name for p in (ROOT / "sample_data" / path.name).iterdir()), name
            assert all(len((path / f).read_bytes()) < 400 for f in files)
            # compared by size, not bytes: another zlib may compress the same pixels differently
            shipped = [image_size(ROOT / "sample_data" / path.name / f) for f in files]
            assert [image_size(path / f) for f in files] == shipped
            continue
        assert path.read_bytes() == (ROOT / "sample_data" / path.name).read_bytes(), name


def test_layouts_commands():
    listing = invoke("layouts").stdout
    assert listing.splitlines()[0].startswith("coco ") and "coco_aic" in listing
    shown = json.loads(invoke("layouts", "show", "coco_aic").stdout)
    assert shown["num_keypoints"] == 19 and len(shown["joint_weights"]) == 19


def _error_line(result):
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    return lines[-1]


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["merge", "{bad}", "-o", "{out}"], 1, "not valid JSON"),
        (["combine", "{bad}", "-o", "{out}"], 1, "not valid JSON"),
        (["merge", "{good}", "--mapping", "0:99", "-o", "{out}"], 2, "index 99 is out of range 0..16"),
        (["merge", "{good}", "--target", "nope", "-o", "{out}"], 2, "unknown layout 'nope'"),
        (["combine", "a={good}", "a={good}", "-o", "{out}"], 2, "source name 'a' is used twice"),
        (["run", "{recipe}"], 2, "sources[0].colour: unknown key"),
        (["layouts", "show", "nope"], 2, "unknown layout 'nope'"),
        (["merge", "{missing}", "-o", "{out}"], 2, "file not found"),
    ],
)
def test_bad_input_gives_one_error_line_and_no_output(tmp_path, args, code, fragment):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    good = tmp_path / "good.json"
    names = json.loads(invoke("layouts", "show", "coco").stdout)["keypoints"]
    good.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
                "annotations": [{"id": 1, "image_id": 1, "keypoints": [1, 1, 2] * 17, "bbox": [0, 0, 5, 5]}],
                "categories": [{"id": 1, "name": "person", "keypoints": names}],
            }
        )
    )
    recipe = tmp_path / "r.toml"
    recipe.write_text('mode = "merge"\noutput = "out"\n[[sources]]\npath = "good.json"\ncolour = "red"\n')
    out = tmp_path / "out"
    values = {"bad": bad, "good": good, "recipe": recipe, "out": out, "missing": tmp_path / "missing.json"}
    result = invoke(*[a.format(**values) for a in args], ok=False)
    assert result.exit_code == code, result.stderr
    line = _error_line(result)
    assert line.startswith("Error: ") and fragment in line
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_existing_output_needs_force(tmp_path, files):
    out = tmp_path / "out"
    invoke("merge", files["coco"], "-o", out)
    result = invoke("merge", files["coco"], "-o", out, ok=False)
    assert result.exit_code == 2 and "output exists (use --force to replace it)" in _error_line(result)
    invoke("merge", files["coco"], "-o", out, "--force")


def test_every_command_has_help_and_is_in_the_command_reference():
    readme = (ROOT / "docs" / "commands.md").read_text()
    commands = []
    for name, cmd in cli.commands.items():
        commands.append(name)
        assert cmd.help, name
        for sub in getattr(cmd, "commands", {}):
            commands.append(f"{name} {sub}")
    for name in commands:
        assert f"kpmerge {name}" in readme, name


def _layout_file(path: Path, layout: str, people: int = 2) -> Path:
    """A COCO-style file in `layout` (names in the category), images with sizes, labelled keypoints."""
    names = json.loads(invoke("layouts", "show", layout).stdout)["keypoints"]
    k = len(names)
    images = [
        {"id": i + 1, "file_name": f"{layout}{i}.jpg", "width": 640, "height": 480} for i in range(people)
    ]
    anns = [
        {
            "id": i + 1,
            "image_id": i + 1,
            "category_id": 1,
            "keypoints": [v for j in range(k) for v in (10 + j, 20 + j, 2)],
            "num_keypoints": k,
            "bbox": [5, 5, 100, 200],
            "iscrowd": 0,
            "area": 1000,
        }
        for i in range(people)
    ]
    path.write_text(
        json.dumps(
            {
                "images": images,
                "annotations": anns,
                "categories": [{"id": 1, "name": "person", "keypoints": names}],
            }
        )
    )
    return path


def test_combine_refuses_a_mapping_for_its_first_source(tmp_path):
    coco = _layout_file(tmp_path / "coco.json", "coco")
    mpii = _layout_file(tmp_path / "mpii.json", "mpii")
    out = tmp_path / "out"
    result = invoke("combine", f"coco={coco}", f"mpii={mpii}", "--mapping", "coco=0:6", "-o", out, ok=False)
    assert result.exit_code == 2
    assert _error_line(result) == (
        "Error: combine: a mapping for the first source (coco) cannot be used: its layout starts the "
        "union, so its keypoints keep their own places; to map it into another layout use merge --target"
    )
    assert not out.exists()
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'mode = "combine"\noutput = "out"\n'
        '[[sources]]\nname = "coco"\npath = "coco.json"\nmapping = [[0, 6]]\n'
        '[[sources]]\nname = "mpii"\npath = "mpii.json"\n'
    )
    result = invoke("run", recipe, ok=False)
    assert result.exit_code == 2 and "a mapping for the first source (coco) cannot be used" in _error_line(
        result
    )
    invoke("combine", f"coco={coco}", f"mpii={mpii}", "--mapping", "coco=auto", "-o", out)


def test_auto_plus_overrides_from_the_cli_and_a_recipe(tmp_path):
    mpii = _layout_file(tmp_path / "mpii.json", "mpii")
    aic = _layout_file(tmp_path / "aic.json", "aic")
    cli_out, recipe_out = tmp_path / "cli", tmp_path / "recipe"
    result = invoke(
        "merge", f"aic={aic}", f"mpii={mpii}", "--mapping", "mpii=auto,thorax:neck", "-o", cli_out
    )
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'mode = "merge"\noutput = "recipe"\n[[sources]]\nname = "aic"\npath = "aic.json"\n'
        '[[sources]]\nname = "mpii"\npath = "mpii.json"\nmapping = ["auto", ["thorax", "neck"]]\n'
    )
    invoke("run", recipe)
    jsonschema.validate(tomllib.loads(recipe.read_text()), schema("recipe"))
    for out in (cli_out, recipe_out):
        meta = load(out, "metainfo.json")
        names = meta["keypoints"]
        mpii_names = json.loads(invoke("layouts", "show", "mpii").stdout)["keypoints"]
        pairs = {names[t]: mpii_names[s] for s, t in meta["sources"][1]["mapping"]}
        assert pairs["neck"] == "thorax" and pairs["head_top"] == "head_top" and len(pairs) == 14
    assert load(cli_out, "annotations.json") == load(recipe_out, "annotations.json")
    assert "left unmapped" not in result.stderr  # every aic keypoint has a source in both


def test_summary_lists_the_target_keypoints_each_source_leaves_unmapped(tmp_path):
    coco = _layout_file(tmp_path / "coco.json", "coco")
    aic = _layout_file(tmp_path / "aic.json", "aic")
    result = invoke("combine", f"coco={coco}", f"aic={aic}", "-o", tmp_path / "out")
    lines = result.stderr.splitlines()
    assert "note: coco: target keypoints left unmapped: head_top, neck" in lines
    assert (
        "note: aic: target keypoints left unmapped: nose, left_eye, right_eye, left_ear, right_ear" in lines
    )


def test_combine_auto_plus_an_override_from_the_cli_and_a_recipe(tmp_path):
    coco = _layout_file(tmp_path / "coco.json", "coco")
    aic = _layout_file(tmp_path / "aic.json", "aic")
    mapping = "aic=auto,left_shoulder+right_shoulder:neck"
    invoke("combine", f"coco={coco}", f"aic={aic}", "--mapping", mapping, "-o", tmp_path / "cli", "-q")
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'mode = "combine"\noutput = "recipe"\n[[sources]]\nname = "coco"\npath = "coco.json"\n'
        '[[sources]]\nname = "aic"\npath = "aic.json"\n'
        'mapping = ["auto", [["left_shoulder", "right_shoulder"], "neck"]]\n'
    )
    invoke("run", recipe, "-q")
    for out in (tmp_path / "cli", tmp_path / "recipe"):
        meta = load(out, "metainfo.json")
        assert meta["layout"]["name"] == "coco_aic"
        names = meta["keypoints"]
        pairs = {names[t]: s for s, t in meta["sources"][1]["mapping"]}
        aic_names = json.loads(invoke("layouts", "show", "aic").stdout)["keypoints"]
        assert pairs[names[-1]] == [aic_names.index("left_shoulder"), aic_names.index("right_shoulder")]
    assert load(tmp_path / "cli", "annotations.json") == load(tmp_path / "recipe", "annotations.json")
