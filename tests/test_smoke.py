from click.testing import CliRunner

from kpmerge.cli import cli
from tests.synthfiles import raw_aic_file, style_file


def test_combine_runs(tmp_path):
    out = tmp_path / "out"
    raw, images = raw_aic_file(tmp_path / "in")
    args = [
        "combine",
        f"coco={style_file(tmp_path / 'in', 'coco')}",
        f"aic={raw}",
        "--image-dir",
        f"aic={images}",
    ]
    result = CliRunner().invoke(cli, [*args, "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "annotations.json",
        "manifest.json",
        "metainfo.json",
        "metainfo.py",
    ]


def test_public_api_names_resolve():
    import kpmerge

    for name in kpmerge.__all__:
        assert getattr(kpmerge, name) is not None, name
    from kpmerge.build import merge

    assert kpmerge.merge is merge
