"""The Detectron2 export, run against re-implementations of Detectron2's metadata rules (no detectron2)."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from contextlib import nullcontext
from pathlib import Path

import pytest

from kpmerge.build import combine
from kpmerge.exports.detectron2 import dataset_name, detectron2_files, detectron2_metadata
from kpmerge.job import SourceSpec, load_source
from kpmerge.layouts import builtin_layout, builtin_layout_names
from kpmerge.output import output_files, write_folder
from tests.synthfiles import style_file

# --- Detectron2's rules, re-implemented from detectron2/data/catalog.py and detection_utils.py ----------


class Metadata(types.SimpleNamespace):
    """detectron2.data.catalog.Metadata: a key, once set, cannot be set to a different value."""

    def __setattr__(self, key, val):
        if key in self.__dict__:
            assert self.__dict__[key] == val, f"Attribute '{key}' cannot be set to a different value!"
        else:
            super().__setattr__(key, val)

    def set(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, v)
        return self

    def get(self, key, default=None):
        return self.__dict__.get(key, default)


class Catalog(dict):
    def get(self, name):
        if name not in self:
            self[name] = Metadata(name=name)
        return self[name]


def fake_detectron2(monkeypatch) -> tuple[Catalog, dict]:
    """Install stand-ins for detectron2.data(.datasets); return (MetadataCatalog, registered datasets)."""
    catalog, registered = Catalog(), {}

    def register_coco_instances(name, metadata, json_file, image_root):
        assert name not in registered, f"Dataset '{name}' is already registered!"
        registered[name] = (json_file, image_root)
        catalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="coco", **metadata)

    d2, data, datasets = (
        types.ModuleType(n) for n in ("detectron2", "detectron2.data", "detectron2.data.datasets")
    )
    data.MetadataCatalog = catalog
    datasets.register_coco_instances = register_coco_instances
    for mod in (d2, data, datasets):
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    return catalog, registered


def check_metadata_consistency(catalog: Catalog, key: str, names: list[str]) -> None:
    entries = [getattr(catalog.get(d), key) for d in names]
    for entry in entries:
        if entry != entries[0]:
            raise ValueError(f"Datasets have different metadata '{key}'!")


def create_keypoint_hflip_indices(catalog: Catalog, names: list[str]) -> list[int]:
    check_metadata_consistency(catalog, "keypoint_names", names)
    check_metadata_consistency(catalog, "keypoint_flip_map", names)
    meta = catalog.get(names[0])
    kp_names = meta.keypoint_names
    flip_map = dict(meta.keypoint_flip_map)
    flip_map.update({v: k for k, v in flip_map.items()})
    flipped = [flip_map.get(i, i) for i in kp_names]
    return [kp_names.index(i) for i in flipped]


def check_connection_rules(meta) -> None:
    """The Visualizer draws (name, name, RGB 0-255) rules between named keypoints."""
    for a, b, color in meta.keypoint_connection_rules:
        assert a in meta.keypoint_names and b in meta.keypoint_names
        assert len(color) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in color)


def load_register(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("kpmerge_register_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- tests -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", builtin_layout_names())
def test_flip_map_gives_the_layout_flip_indices(name):
    lay = builtin_layout(name)
    meta = detectron2_metadata(lay)
    catalog = Catalog()
    catalog.get("a").set(keypoint_names=meta["keypoint_names"], keypoint_flip_map=meta["keypoint_flip_map"])
    flip = create_keypoint_hflip_indices(catalog, ["a"])
    assert flip == lay.flip_indices
    assert [flip[i] for i in flip] == list(range(len(lay)))  # an involution
    assert len(meta["keypoint_oks_sigmas"]) == meta["num_keypoints"] == len(lay)
    check_connection_rules(types.SimpleNamespace(**meta))


@pytest.mark.parametrize(
    ("flip_map", "context"),
    [
        ([["l", "r"]], nullcontext([1, 0, 2])),
        ([["l", "right"]], pytest.raises(ValueError)),  # a partner that is no keypoint
    ],
)
def test_rule_reimplementation_can_fail(flip_map, context):
    catalog = Catalog()
    catalog.get("a").set(keypoint_names=["l", "r", "c"], keypoint_flip_map=flip_map)
    with context as expected:
        assert create_keypoint_hflip_indices(catalog, ["a"]) == expected


def test_register_py(tmp_path, monkeypatch):
    merged = combine(
        [
            load_source(SourceSpec(style_file(tmp_path / "in", "coco", crowd=1), name="coco")),
            load_source(SourceSpec(style_file(tmp_path / "in", "aic"), name="aic")),
        ]
    )
    out = tmp_path / "out"
    files = {name: make() for name, make in output_files(merged).items()} | detectron2_files(merged)
    for name, blob in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(blob)
    catalog, registered = fake_detectron2(monkeypatch)
    module = load_register(out / "detectron2" / "register.py")
    assert module.NAME == dataset_name(merged.layout) == "kpmerge_coco_aic"
    train = module.register("/data/images")
    val = module.register("/data/images", name="kpmerge_val")
    json_file, image_root = registered[train]
    assert Path(json_file).resolve() == (out / "annotations.json").resolve()
    assert image_root == "/data/images"
    assert create_keypoint_hflip_indices(catalog, [train, val]) == merged.layout.flip_indices
    meta = catalog.get(train)
    check_connection_rules(meta)
    assert meta.evaluator_type == "coco"
    # load_coco_json sets thing_classes from the categories: it must agree with what register set.
    coco = json.loads((out / "annotations.json").read_text())
    meta.set(thing_classes=[c["name"] for c in coco["categories"]])
    # COCOEvaluator: sigmas, keypoints per annotation and the head size must agree.
    cfg = types.SimpleNamespace(
        MODEL=types.SimpleNamespace(ROI_KEYPOINT_HEAD=types.SimpleNamespace(NUM_KEYPOINTS=17)),
        TEST=types.SimpleNamespace(KEYPOINT_OKS_SIGMAS=[]),
    )
    module.configure(cfg)
    k = len(merged.layout)
    assert cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS == k == len(cfg.TEST.KEYPOINT_OKS_SIGMAS)
    assert {len(a["keypoints"]) // 3 for a in coco["annotations"]} == {k}
    # metadata.json holds the same values.
    saved = json.loads((out / "detectron2" / "metadata.json").read_text())
    assert saved["keypoint_names"] == list(meta.keypoint_names)
    assert [tuple(p) for p in saved["keypoint_flip_map"]] == list(meta.keypoint_flip_map)
    assert [
        (a, b, tuple(c)) for a, b, c in saved["keypoint_connection_rules"]
    ] == meta.keypoint_connection_rules
    assert saved["keypoint_oks_sigmas"] == cfg.TEST.KEYPOINT_OKS_SIGMAS == list(merged.layout.sigmas)
    with pytest.raises(AssertionError, match="already registered"):
        module.register("/data/images")


def test_register_py_asks_to_decompress(tmp_path, monkeypatch):
    merged = combine([load_source(SourceSpec(style_file(tmp_path / "in", "coco"), name="coco"))])
    files = output_files(merged, gzip=True)
    files.update({name: (lambda b=blob: b) for name, blob in detectron2_files(merged).items()})
    out = write_folder(files, tmp_path / "out")
    fake_detectron2(monkeypatch)
    module = load_register(out / "detectron2" / "register.py")
    with pytest.raises(FileNotFoundError, match=r"decompress it first \(gunzip -k .*annotations\.json\.gz\)"):
        module.register("/data")
