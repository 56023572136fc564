"""The bulk (fast) readers and writer against plain `json` readings and the checked slow paths."""

from __future__ import annotations

import json
import math
import os
import re

import msgspec
import numpy as np
import pytest
from click.testing import CliRunner

from kpmerge import job, jsonio, jsonwrite, parallel
from kpmerge.cli import cli
from kpmerge.formats import aic, coco, coco_reader, coco_writer
from kpmerge.job import SourceSpec, load_sources
from kpmerge.synth import synth_aic, synth_coco
from kpmerge.synth_styles import STYLES, synth_style
from tests.conftest import AIC_RAW, COCO_STYLE, fixture, needs_fixtures
from tests.synthfiles import raw_aic_file, style_file


def _raws(text: bytes) -> list[msgspec.Raw]:
    return msgspec.json.decode(text, type=list[msgspec.Raw])


@pytest.mark.parametrize(
    ("rows", "width", "expected"),
    [
        (b"[[1,2,3],[4,5,6]]", 3, [[1, 2, 3], [4, 5, 6]]),
        (b"[[1, 2, 3], [4, -5, 6]]", 3, [[1, 2, 3], [4, -5, 6]]),
        (b"[[1.5,2e3,-0.25],[4,5,6]]", 3, [[1.5, 2000, -0.25], [4, 5, 6]]),
        (b"[[99999999999999999999,1],[2,3]]", 2, [[1e20, 1], [2, 3]]),
        (b"[[-99999999999999999999,1],[2,3]]", 2, [[-1e20, 1], [2, 3]]),
        (b"[[123456789012345678,1],[2,3]]", 2, [[123456789012345678.0, 1], [2, 3]]),
        (b"[[1,2],3]", 2, None),
        (b"[[1,[2]],[3,4]]", 2, None),
        (b"[[1,2],[3,4,5]]", 2, None),
        (b"[[1,2,3],[4,5]]", 3, None),
        (b"[[1,null,3],[4,5,6]]", 3, None),
        (b'[[1,"2",3],[4,5,6]]', 3, None),
        (b"[[[1,2,3]],7]", 3, None),
        (b"[[1,true],[3,4]]", 2, None),
        (b"[[ ],[1]]", 1, None),
        (b"[{},[1,2]]", 2, None),
    ],
)
def test_float_rows(rows, width, expected):
    got = jsonio.float_rows(_raws(rows), width)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        np.testing.assert_array_equal(got, np.array(expected, dtype=np.float64))


@pytest.mark.parametrize(
    "texts",
    [
        ["0.1", "0.2", "0.30000000000000004", "-0.25", "123.45", "7"],
        ["-0.0", "0.0", "-0", "0", "-0.5", "1.0"],  # -0.0 keeps its sign, -0 is an integer zero
        ["9007199254740.993", "1.2345678901234567", "0.1234567890123456789", "1", "2", "3"],  # long: msgspec
        ["0.0000000000000000000001", "0.00000000000000000000001", "1.5", "2.5", "3.5", "4.5"],
        ["1.5", "2.5", "3.5", "4.5", "5.5", "1e2"],
        ["568.98", "292.06", "2", "0", "0", "0"],
    ],
)
def test_decimals_parse_like_msgspec(texts):
    rows = [("[" + ",".join(texts[i:] + texts[:i]) + "]").encode() for i in range(len(texts))]
    got = jsonio.float_rows(rows, len(texts))
    want = np.array([msgspec.json.decode(r, type=list[float]) for r in rows])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize(
    "row",
    [
        b"[\n  280.79,\n  44.73,\n  218.7,\n  346.68\n]",
        b"[ 1.5 , 2.25\t,\r\n3 ,4.125 ]",
        b"[0.5,1.25,2,3.75]",
    ],
)
def test_spaced_decimals_parse_like_msgspec(row):
    rows = [row, b"[1,2.5,3,4]", row]
    want = np.array([msgspec.json.decode(r, type=list[float]) for r in rows])
    np.testing.assert_array_equal(jsonio.float_rows(rows, 4), want)


@pytest.mark.parametrize(
    ("rows", "width", "expected"),
    [
        (b"[[0,0,0],[1,2.5,3],[9,8,7]]", 3, [[0, 0, 0], [1, 2.5, 3], [9, 8, 7]]),
        (b"[[0,0,0],[0,0,0]]", 3, [[0, 0, 0], [0, 0, 0]]),
        (b"[[0,0],[1,2],[-1,0]]", 2, [[0, 0], [1, 2], [-1, 0]]),
        (b"[[123],[1,2]]", 2, None),  # as long as a row of two digits, but one number
        (b"[[0,0],[1,2,3]]", 2, None),
    ],
)
def test_rows_of_digits(rows, width, expected):
    got = jsonio.float_rows(_raws(rows), width)
    if expected is None:
        assert got is None
    else:
        np.testing.assert_array_equal(got, np.array(expected, dtype=np.float64))


def test_random_decimals_parse_like_msgspec():
    rng = np.random.default_rng(7)
    values = rng.uniform(-1e5, 1e5, (300, 8))
    digits = rng.integers(0, 9, (300, 8))
    rows = [
        json.dumps([round(v, int(d)) for v, d in zip(r, ds, strict=True)], separators=(",", ":")).encode()
        for r, ds in zip(values, digits, strict=True)
    ]
    want = np.array([msgspec.json.decode(r, type=list[float]) for r in rows])
    np.testing.assert_array_equal(jsonio.float_rows(rows, 8), want)


def test_float_rows_equals_msgspec_across_chunks(monkeypatch):
    monkeypatch.setattr(jsonio, "ROWS_PER_CHUNK", 5)
    rng = np.random.default_rng(0)
    rows = [rng.integers(-2000, 2000, 6).tolist() for _ in range(23)] + [[0.5, 1e-3, 7, 8, 9, 1e300]]
    raws = _raws(json.dumps(rows).encode())
    expected = np.array(msgspec.json.decode(json.dumps(rows), type=list[list[float]]))
    np.testing.assert_array_equal(jsonio.float_rows(raws, 6), expected)


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="helpers are forked on Linux only")
def test_float_rows_by_helpers_equal_rows_read_here(monkeypatch):
    monkeypatch.setattr(jsonio, "ROWS_PER_CHUNK", 4)
    monkeypatch.setattr(jsonio, "PARALLEL_MIN_NUMBERS", 6)  # a row per process at least
    rows = [[i, -i, i / 4] for i in range(30)]
    raws = _raws(json.dumps(rows).encode())
    with parallel.processes(3):
        got = jsonio.float_rows(raws, 3)
        assert parallel._is_shared(got)
        np.testing.assert_array_equal(got, np.array(rows, dtype=np.float64))
        bad = _raws(json.dumps([*rows[:-1], [1, 2]]).encode())  # the last row, a helper's, is short
        assert jsonio.float_rows(bad, 3) is None


@pytest.mark.parametrize(
    "values",
    [
        [[1.0, 2.0], [3.0, 4.0]],
        [[1.5, -0.0]],
        [[-0.0, 2.0]],
        [[math.nan, 1.0]],
        [[1e16, 2.0]],
        [[-9e15, 1.0]],
    ],
)
def test_number_rows_matches_json(values):
    rows = jsonwrite.number_rows(np.array(values))
    for row, want in zip(rows, values, strict=True):
        got = json.loads(b"[" + row + b"]")
        assert [None if isinstance(w, float) and math.isnan(w) else w for w in want] == got
        assert all(b".0," not in r + b"," for r in rows)  # integral values are written as integers


@pytest.mark.parametrize(
    "values", [[1, 2, 30], ["a", "b,c", 'q"uote'], ["x"], [1, "x"], [2**40, -1], ["é", "\n"], []]
)
def test_json_values(values):
    assert [json.loads(v) for v in jsonwrite.json_values(values)] == values


def test_members_all_equals_members():
    same = [{"id": 1, "a": [1, 2], "b": "x"}, {"id": 2, "a": [], "b": "y"}]
    mixed = [{"id": 1, "a": 1}, {"b": {"c": 2}, "id": 2}, {"id": 3}]
    for records in (same, mixed):
        raws = msgspec.json.decode(json.dumps(records), type=list[dict[str, msgspec.Raw]])
        want = [jsonwrite.members(r, frozenset({"id"}), {}) for r in raws]
        assert jsonwrite.members_all(raws, frozenset({"id"}), {}) == want


# --- readers: field by field against the json module -------------------------------------------------


def _coco_inputs() -> list[tuple[str, bytes]]:
    out = [("synthetic", synth_coco(scale=0.002, seed=3))]
    doc = json.loads(out[0][1])
    doc["annotations"][1]["track_id"] = 7  # an extra field: the checked path
    doc["images"][0]["extra"] = {"nested": [1, 2]}
    out.append(("synthetic-extra-fields", json.dumps(doc).encode()))
    out.append(("synthetic-indented", json.dumps(json.loads(out[0][1]), indent=2).encode()))
    return out


def _check_coco(ds, data: bytes) -> None:
    doc = json.loads(data)
    cat = next(c for c in doc["categories"] if "keypoints" in c)
    images = doc["images"]
    assert len(ds.images) == len(images)
    for i, img in enumerate(images):
        assert ds.images.ids[i] == img["id"]
        assert ds.images.file_names[i] == img["file_name"]
        for key, arr in (("width", ds.images.widths), ("height", ds.images.heights)):
            assert (math.isnan(arr[i]) and key not in img) or arr[i] == img[key]
        rest = {k: v for k, v in img.items() if k not in coco.IMAGE_FIELDS}
        assert json.loads(b"{" + ds.images.extra[i] + b"}") == rest
        assert b"\n" not in ds.images.extra[i]
    anns = [a for a in doc["annotations"] if a.get("category_id", cat["id"]) == cat["id"]]
    row = {img["id"]: i for i, img in enumerate(images)}
    inst = ds.instances
    assert len(inst) == len(anns)
    for j, a in enumerate(anns):
        np.testing.assert_array_equal(inst.keypoints[j].reshape(-1), np.array(a["keypoints"], dtype=float))
        np.testing.assert_array_equal(inst.boxes[j], np.array(a["bbox"], dtype=float))
        assert (math.isnan(inst.areas[j]) and "area" not in a) or inst.areas[j] == a["area"]
        assert inst.iscrowd[j] == int(a.get("iscrowd", 0) or 0)
        assert inst.ids[j] == a["id"]
        assert inst.image_index[j] == row[a["image_id"]]
        assert inst.num_keypoints[j] == a.get("num_keypoints", -1)
        rest = {k: v for k, v in a.items() if k not in coco.ANNOTATION_FIELDS}
        assert json.loads(b"{" + inst.extra[j] + b"}") == rest


def _slow(monkeypatch, module):
    monkeypatch.setattr(module, "float_rows", lambda raws, width: None)


@pytest.mark.parametrize(("name", "data"), _coco_inputs(), ids=lambda x: x if isinstance(x, str) else "")
def test_coco_reader_equals_json_and_slow_path(name, data, monkeypatch):
    fast = coco.coco_to_dataset(data)
    _check_coco(fast, data)
    _slow(monkeypatch, coco_reader)
    slow = coco.coco_to_dataset(data)
    assert fast.images == slow.images
    assert fast.instances == slow.instances
    assert fast.skipped == slow.skipped


@pytest.mark.parametrize("style", STYLES)
def test_coco_style_files_equal_json(style):
    data = json.dumps(synth_style(style, people=7, crowd=0 if style in ("aic", "jhmdb") else 1)).encode()
    _check_coco(coco.coco_to_dataset(data), data)


def _check_aic(ds, data: bytes) -> None:
    records = json.loads(data)
    assert list(ds.images.ids) == [r["image_id"] for r in records]
    to_coco = {1: 2, 2: 1, 3: 0}
    j = 0
    for i, rec in enumerate(records):
        rest = {k: v for k, v in rec.items() if k not in aic.RECORD_FIELDS}
        assert json.loads(b"{" + ds.images.extra[i] + b"}") == rest
        humans = sorted(rec["keypoint_annotations"], key=lambda h: int(re.sub(r"\D", "", h)))
        for h in humans:
            kp = np.array(rec["keypoint_annotations"][h], dtype=float).reshape(-1, 3)
            kp[:, 2] = [to_coco[int(v)] for v in kp[:, 2]]
            np.testing.assert_array_equal(ds.instances.keypoints[j], kp)
            x1, y1, x2, y2 = rec["human_annotations"][h]
            np.testing.assert_array_equal(ds.instances.boxes[j], [x1, y1, x2 - x1, y2 - y1])
            assert ds.instances.ids[j] == f"{rec['image_id']}/{h}"
            assert ds.instances.image_index[j] == i
            j += 1
    assert j == len(ds.instances)


def _aic_inputs() -> list[tuple[str, bytes]]:
    data = synth_aic(scale=0.002, seed=5)
    records = json.loads(data)
    records[0]["extra"] = [1, {"a": None}]  # an unknown field: the dict path
    boxes = records[1]["human_annotations"]
    records[1]["human_annotations"] = dict(reversed(list(boxes.items())))  # boxes in another order
    return [("synthetic", data), ("synthetic-irregular", json.dumps(records).encode())]


@pytest.mark.parametrize(("name", "data"), _aic_inputs(), ids=lambda x: x if isinstance(x, str) else "")
def test_aic_reader_equals_json_and_slow_path(name, data, monkeypatch):
    fast = aic.aic_to_dataset(data)
    _check_aic(fast, data)
    _slow(monkeypatch, aic)
    slow = aic.aic_to_dataset(data)
    assert fast.images == slow.images and fast.instances == slow.instances


@needs_fixtures
def test_mmpose_files_equal_json():
    for rel in COCO_STYLE:
        _check_coco(coco.coco_to_dataset(fixture(rel).read_bytes()), fixture(rel).read_bytes())
    _check_aic(aic.aic_to_dataset(AIC_RAW.read_bytes()), AIC_RAW.read_bytes())


# --- writing and whole runs ---------------------------------------------------------------------------


def test_chunked_writer_equals_one_piece(monkeypatch):
    ds = coco.coco_to_dataset(synth_coco(scale=0.002, seed=3))
    whole = coco.dataset_to_coco(ds, ["a"] * ds.instances.k, [[1, 2]])
    monkeypatch.setattr(coco_writer, "CHUNK_RECORDS", 7)
    seen: list[int] = []
    chunks = list(coco.dataset_to_coco_chunks(ds, ["a"] * ds.instances.k, [[1, 2]], progress=seen.append))
    assert b"".join(chunks) == whole
    assert sum(seen) == len(ds.images) + len(ds.instances)
    json.loads(whole)


@pytest.fixture
def synth_files(tmp_path, monkeypatch):
    monkeypatch.setattr(job, "PARALLEL_MIN_BYTES", 0)  # helper processes for these small files too
    c, a = tmp_path / "coco_small.json", tmp_path / "aic_small.json"
    c.write_bytes(synth_coco(scale=0.002, seed=1))
    a.write_bytes(synth_aic(scale=0.002, seed=1))
    return c, a


def test_parallel_load_equals_sequential(synth_files):
    specs = [SourceSpec(path=p) for p in synth_files]
    one = load_sources(specs, jobs=1)
    two = load_sources(specs, jobs=2)
    for s1, s2 in zip(one, two, strict=True):
        assert s1.name == s2.name and s1.meta == s2.meta and s1.layout == s2.layout
        assert s1.dataset.images == s2.dataset.images and s1.dataset.instances == s2.dataset.instances
        assert not s2.dataset.instances.keypoints.flags.writeable


def test_parallel_load_reports_the_first_error_in_order(tmp_path, synth_files):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'[{"image_id": "x", "keypoint_annotations": {"human1": [1]}, "human_annotations": {}}]')
    specs = [SourceSpec(path=synth_files[0]), SourceSpec(path=bad)]
    with pytest.raises(Exception) as parallel:
        load_sources(specs, jobs=2)
    with pytest.raises(Exception) as sequential:
        load_sources(specs, jobs=1)
    assert str(parallel.value) == str(sequential.value)
    assert type(parallel.value) is type(sequential.value)


@pytest.mark.parametrize("command", ["combine", "merge"])
def test_two_runs_give_identical_bytes(command, synth_files, tmp_path):
    c, a = synth_files
    outs = []
    for run in ("one", "two"):
        out = tmp_path / run
        result = CliRunner().invoke(
            cli,
            [command, f"coco={c}", f"aic={a}", "--allow-missing-sizes", "-o", str(out), "-q"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0
        assert result.stderr == ""  # --quiet: no summary, no progress
        outs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outs[0] == outs[1]
    doc = json.loads(outs[0]["annotations.json"])
    people = sum(len(r["keypoint_annotations"]) for r in json.loads(a.read_bytes()))
    assert len(doc["annotations"]) == len(json.loads(c.read_bytes())["annotations"]) + people


def test_runs_without_a_terminal_draw_no_bars_and_give_identical_bytes(tmp_path):
    raw, images = raw_aic_file(tmp_path / "in")
    args = [f"coco={style_file(tmp_path / 'in', 'coco')}", f"aic={raw}", "--image-dir", f"aic={images}"]
    outs = []
    for run in ("one", "two"):
        out = tmp_path / run
        result = CliRunner().invoke(cli, ["combine", *args, "-o", str(out)], catch_exceptions=False)
        assert result.exit_code == 0
        assert "\r" not in result.stderr  # not a terminal: no progress bars
        outs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outs[0] == outs[1]


@pytest.mark.parametrize("kind", ["coco", "aic"])
def test_memory_mapped_input_reads_the_same(kind, synth_files, monkeypatch):
    from kpmerge.formats import read_dataset

    path = synth_files[0] if kind == "coco" else synth_files[1]
    plain = read_dataset(path)
    monkeypatch.setattr(jsonio, "MAP_MIN_BYTES", 0)
    assert not isinstance(jsonio.read_mapped(path), bytes)
    mapped = read_dataset(path)
    assert mapped.images == plain.images and mapped.instances == plain.instances


@pytest.mark.parametrize(("content", "message"), [(b"  \n", "file is empty"), (b"[1, 2]", "neither raw AI")])
def test_memory_mapped_input_errors(content, message, tmp_path, monkeypatch):
    from kpmerge.errors import KpmergeError
    from kpmerge.formats import read_dataset

    path = tmp_path / "x.json"
    path.write_bytes(content)
    monkeypatch.setattr(jsonio, "MAP_MIN_BYTES", 0)
    with pytest.raises(KpmergeError, match=message):
        read_dataset(path)


def test_parallel_load_stops_helpers_when_the_first_source_fails(tmp_path, synth_files):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"{")
    with pytest.raises(Exception, match=r"bad\.json"):
        load_sources([SourceSpec(path=bad), SourceSpec(path=synth_files[1])], jobs=2)


@pytest.mark.parametrize(
    "array",
    [
        np.array([1, -2, 2**62], dtype=np.int64),
        np.array([3, 4], dtype=np.int32),
        np.array([2**63 + 5, 1], dtype=np.uint64),
        np.array([], dtype=np.int64),
        np.array([7, "x"], dtype=object),
    ],
)
def test_json_values_of_arrays(array):
    assert [json.loads(v) for v in jsonwrite.json_values(array)] == array.tolist()
