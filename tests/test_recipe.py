"""schemas/recipe.schema.json against kpmerge/recipe.py, and docs/recipes.md's example against both."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from kpmerge.errors import UsageError
from kpmerge.exports import EXPORTS
from kpmerge.formats import format_names
from kpmerge.recipe import SOURCE_KEYS, TOP_KEYS, recipe_to_job
from tests.synthfiles import style_file

READABLE = format_names()

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas" / "recipe.schema.json").read_text())
SOURCE_SCHEMA = SCHEMA["properties"]["sources"]["items"]


def _docs_example() -> dict:
    text = (ROOT / "docs" / "recipes.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    return tomllib.loads(blocks[0])


def test_schema_top_level_keys_are_the_recipe_keys():
    assert set(SCHEMA["properties"]) == TOP_KEYS


def test_schema_source_keys_are_the_recipe_source_keys():
    assert set(SOURCE_SCHEMA["properties"]) == SOURCE_KEYS


def test_schema_formats_are_the_readable_formats():
    assert sorted(SOURCE_SCHEMA["properties"]["format"]["enum"]) == sorted(READABLE)


def test_schema_exports_are_the_exports():
    one, many = SCHEMA["properties"]["export"]["oneOf"]
    assert sorted(one["enum"]) == sorted(many["items"]["enum"]) == sorted(EXPORTS)


def test_docs_example_is_valid_and_read():
    doc = _docs_example()
    jsonschema.validate(doc, SCHEMA)
    job = recipe_to_job(doc, Path("/data"))
    assert [s.source_name for s in job.sources] == ["coco", "aic", "mine"]


def test_docs_example_with_every_commented_key_is_valid_and_read():
    text = (ROOT / "docs" / "recipes.md").read_text()
    block = re.findall(r"```toml\n(.*?)```", text, flags=re.S)[0]
    doc = tomllib.loads(re.sub(r"^# ", "", block, flags=re.M))  # every key shown, commented or not
    assert set(doc) == TOP_KEYS
    keys = set().union(*(set(s) for s in doc["sources"]))
    assert keys == SOURCE_KEYS
    jsonschema.validate(doc, SCHEMA)
    recipe_to_job(doc, Path("/data"))


@pytest.mark.parametrize(
    "extra",
    [
        {"allow_missing_sizes": True},
        {"jobs": 2, "force": True, "show": "sheet.png"},
        {"export": "yolo", "yolo_keep_empty": True},
    ],
)
def test_recipes_that_recipe_py_reads_are_valid(extra):
    doc = {"mode": "merge", "output": "out", "sources": [{"path": "a.json", "ratio": 0.5}], **extra}
    jsonschema.validate(doc, SCHEMA)
    recipe_to_job(doc, Path("/data"))


@pytest.mark.parametrize(
    "doc",
    [
        {"mode": "merge", "output": "out", "sources": [{"path": "a.json", "ratio": -1}]},
        {"mode": "merge", "output": "out", "allow_missing_sizes": "yes", "sources": [{"path": "a.json"}]},
        {"mode": "merge", "output": "out", "jobs": 0, "sources": [{"path": "a.json"}]},
    ],
)
def test_recipes_that_recipe_py_refuses_are_invalid(doc):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
    with pytest.raises(UsageError):
        recipe_to_job(doc, Path("/data"))


def test_output_may_come_from_the_command_line():
    doc = {"mode": "merge", "sources": [{"path": "a.json"}]}
    jsonschema.validate(doc, SCHEMA)
    assert recipe_to_job(doc, Path("/data"), output="out").output == Path("out")


def test_summary_names_the_output_folder_normalised(tmp_path, monkeypatch):
    style_file(tmp_path / "data", "coco", images=2, people=3)
    (tmp_path / "data" / "r.toml").write_text(
        'mode = "merge"\noutput = "../out"\n[[sources]]\npath = "coco.json"\n'
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", "data/r.toml"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0].endswith(" -> out")
    assert (tmp_path / "out" / "annotations.json").is_file()
