from click.testing import CliRunner

from kpmerge.cli import cli
from tests.conftest import AIC_RAW, fixture, needs_fixtures


@needs_fixtures
def test_combine_runs(tmp_path, aic_raw_images):
    out = tmp_path / "out"
    sources = [
        f"coco={fixture('coco/test_coco.json')}",
        f"aic={AIC_RAW}",
        f"--image-dir=aic={aic_raw_images}",
    ]
    result = CliRunner().invoke(cli, ["combine", *sources, "-o", str(out)], catch_exceptions=False)
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
