"""`.json.gz`: gzip inputs (by magic bytes) and `--gzip` outputs."""

from __future__ import annotations

import gzip
import io
import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from kpmerge.errors import KpmergeError, UsageError
from kpmerge.formats import read_dataset
from kpmerge.jsonio import read_bytes
from kpmerge.output import GzipChunks, GzipStream, gzip_bytes
from kpmerge.recipe import recipe_to_job
from kpmerge.synth import synth_coco
from tests.synthfiles import mpii_file, raw_aic_file, style_file


@pytest.mark.parametrize("kind", ["coco", "mpii", "halpe", "raw_aic"])
def test_gzip_input_reads_like_plain(tmp_path, kind):
    if kind == "mpii":
        plain, _images = mpii_file(tmp_path)
    elif kind == "raw_aic":
        plain, _images = raw_aic_file(tmp_path)
    else:
        plain = style_file(tmp_path, kind)
    packed = tmp_path / (plain.name + ".gz")
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_bytes(packed) == plain.read_bytes()
    a, b = read_dataset(packed), read_dataset(plain)
    assert a.instances == b.instances and a.images == b.images and a.format == b.format


def test_gzip_by_content_not_name(tmp_path):
    path = tmp_path / "annotations.json"  # no .gz suffix
    path.write_bytes(gzip.compress(b'{"a": 1}'))
    assert read_bytes(path) == b'{"a": 1}'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (gzip.compress(b'{"a": 1}')[:-6], "not a valid gzip file"),
        (b"\x1f\x8b\x08garbage", "not a valid gzip file"),
        (gzip.compress(b"  \n"), "file is empty"),
    ],
)
def test_broken_gzip(tmp_path, data, message):
    path = tmp_path / "x.json.gz"
    path.write_bytes(data)
    with pytest.raises(KpmergeError, match=message):
        read_bytes(path)


def _merge(out, *extra: str):
    folder = out.parent / "in"
    coco = style_file(folder, "coco", images=4, people=14)
    raw, images = raw_aic_file(folder, people=9)
    return CliRunner().invoke(
        cli,
        ["merge", f"coco={coco}", f"aic={raw}", "--image-dir", f"aic={images}", "-o", str(out), "-q", *extra],
        catch_exceptions=False,
    )


def test_gzip_output(tmp_path):
    assert _merge(tmp_path / "plain").exit_code == 0
    assert _merge(tmp_path / "gz", "--gzip").exit_code == 0
    assert _merge(tmp_path / "gz2", "--gzip").exit_code == 0
    files = sorted(p.name for p in (tmp_path / "gz").iterdir())
    assert files == ["annotations.json.gz", "manifest.json", "metainfo.json", "metainfo.py"]
    packed = (tmp_path / "gz" / "annotations.json.gz").read_bytes()
    assert gzip.decompress(packed) == (tmp_path / "plain" / "annotations.json").read_bytes()
    assert packed == (tmp_path / "gz2" / "annotations.json.gz").read_bytes()  # no time stamp
    manifest = json.loads((tmp_path / "gz" / "manifest.json").read_text())
    assert manifest["annotations_file"] == "annotations.json.gz"
    plain = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert plain["annotations_file"] == "annotations.json"
    # and the output reads back as an input
    assert len(read_dataset(tmp_path / "gz" / "annotations.json.gz").instances) == 14 + 9


def test_recipe_gzip_key(tmp_path):
    base = {"mode": "merge", "output": "out", "sources": [{"path": "a.json"}]}
    assert recipe_to_job(base | {"gzip": True}, tmp_path).gzip is True
    assert recipe_to_job(base, tmp_path).gzip is False
    with pytest.raises(UsageError, match="expected true or false"):
        recipe_to_job(base | {"gzip": "yes"}, tmp_path)


def _reference_gzip(data: bytes) -> bytes:
    """`data` as Python's GzipFile writes it at level 1 with no time stamp and no file name."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0, filename="") as f:
        f.write(data)
    return buf.getvalue()


def test_gzip_output_is_level_1_without_time_stamp(tmp_path):
    coco = tmp_path / "coco.json"
    coco.write_bytes(synth_coco(scale=0.002))
    for name, extra in (("plain", []), ("gz", ["--gzip"])):
        args = ["merge", f"coco={coco}", "-o", str(tmp_path / name), "-q", *extra]
        assert CliRunner().invoke(cli, args, catch_exceptions=False).exit_code == 0
    plain = (tmp_path / "plain" / "annotations.json").read_bytes()
    packed = (tmp_path / "gz" / "annotations.json.gz").read_bytes()
    assert packed == _reference_gzip(plain)
    assert packed[4:8] == b"\0\0\0\0"  # mtime


@pytest.mark.parametrize("sizes", [[], [0], [1], [7, 0, 100], [5000, 5000], [65536, 1, 99999]])
def test_gzip_stream_bytes_do_not_depend_on_the_pieces(sizes):
    data = synth_coco(scale=0.001)
    cuts = np.cumsum([0, *sizes]).clip(max=len(data))
    pieces = [data[a:b] for a, b in itertools.pairwise(cuts)] + [data[cuts[-1] :]]
    assert b"".join(GzipChunks(pieces)) == gzip_bytes(data) == _reference_gzip(data)
    stream = GzipStream()
    assert b"".join(stream.compress(p) for p in pieces) + stream.finish() == gzip_bytes(data)
