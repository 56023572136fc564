"""Every `kpmerge ...` example of README.md and docs/*.md runs, page by page, with the exit code its page
says, on small files with the names the docs use (see tests/docexamples.py for what counts as an example)."""

from __future__ import annotations

import json
import shutil
import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpmerge.cli import cli
from tests.docexamples import (
    ROOT,
    Example,
    blocks,
    build_workspace,
    examples,
    hidden_commands,
    inline_commands,
    pages,
    parse_command,
    unknown_options,
)

PAGES = pages()
RUN_PAGES = [p for p in PAGES if any(e.not_run is None for e in examples(p))]


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The inputs the examples name, and `sample_out`, the output of `make demo`, which pages refer to."""
    folder = build_workspace(tmp_path_factory.mktemp("docs") / "work")
    recipe = folder / "sample_data" / "recipe.toml"
    result = CliRunner().invoke(cli, ["run", str(recipe), "-o", str(folder / "sample_out"), "-q"])
    assert result.exit_code == 0, result.output
    return folder


def run_example(example: Example) -> str | None:
    """Run `example` in the current folder; a description of what went wrong, or None."""
    result = CliRunner().invoke(cli, list(example.argv))
    if example.stdout_to:
        Path(example.stdout_to).write_bytes(result.stdout_bytes)
    if result.exit_code == example.exit_code:
        return None
    trace = ""
    if result.exc_info and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
    return (
        f"{example}\n  exit code {result.exit_code}, the docs imply {example.exit_code}\n"
        f"  stderr: {result.stderr.strip()}\n{trace}"
    )


@pytest.mark.parametrize("page", RUN_PAGES)
def test_examples_of_the_page_run(page, workspace, tmp_path, monkeypatch):
    """A page's examples run in order in one folder: later ones use what earlier ones wrote."""
    work = tmp_path / "work"
    shutil.copytree(workspace, work)
    monkeypatch.chdir(work)
    for example in examples(page):
        if example.not_run is None:
            failure = run_example(example)
            assert failure is None, failure


def test_the_recipe_of_the_recipes_page_runs(workspace, tmp_path, monkeypatch):
    """The TOML recipe shown in docs/recipes.md, saved beside the inputs it names, runs as it is."""
    page = "docs/recipes.md"
    [recipe] = [body for language, _, body in blocks(page, (ROOT / page).read_text()) if language == "toml"]
    work = tmp_path / "work"
    shutil.copytree(workspace, work)
    monkeypatch.chdir(work)
    Path("recipe.toml").write_text("".join(f"{text}\n" for _, text in recipe))
    failure = run_example(parse_command(page, recipe[0][0], "kpmerge run recipe.toml"))
    assert failure is None, failure
    manifest = json.loads(Path("combined/manifest.json").read_text())
    assert [s["name"] for s in manifest["sources"]] == ["coco", "aic", "mine"]


def test_a_failing_example_names_the_page_and_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failure = run_example(parse_command("docs/x.md", 7, "kpmerge merge missing.json -o out/  # exits 0"))
    assert failure is not None
    assert failure.startswith(
        "docs/x.md:7: kpmerge merge missing.json -o out/\n  exit code 2, the docs imply 0\n"
    )
    assert "stderr: Error: missing.json" in failure
    assert run_example(parse_command("docs/x.md", 7, "kpmerge merge missing.json -o out/  # exits 2")) is None


def test_the_pages_have_examples_and_few_are_not_run():
    found = [e for p in PAGES for e in examples(p)]
    assert {"README.md", "docs/mapping.md", "docs/inspect.md", "docs/sampling.md"} <= set(RUN_PAGES)
    not_run = [e for e in found if e.not_run]
    assert len(found) >= 20 and len(not_run) <= 3, [str(e) for e in not_run]


@pytest.mark.parametrize("page", PAGES)
def test_no_command_example_hides_in_a_block_that_is_not_run(page):
    assert hidden_commands(page) == [], "use a ```sh or ```console block for commands"


@pytest.mark.parametrize("page", PAGES)
def test_every_command_and_option_shown_exists(page):
    """Also for examples not run, and for commands and synopses in the prose (`kpmerge show PATH...`)."""
    shown = [(str(e), e.argv) for e in examples(page)] + inline_commands(page)
    problems = [f"{text}: {p}" for text, words in shown for p in unknown_options(cli, words)]
    assert problems == []


EXAMPLE_SYNTAX = [
    (
        "sh",
        "```sh\nkpmerge merge a.json \\\n    b.json -o out/   # a comment\n```",
        [(2, ("merge", "a.json", "b.json", "-o", "out/"))],
    ),
    ("sh with a prompt", "```sh\n$ kpmerge layouts\n```", [(2, ("layouts",))]),
    ("sh other commands", "```sh\nmake demo\ngit clone x\nkpmerge --help\n```", [(4, ("--help",))]),
    (
        "console",
        '```console\n$ kpmerge inspect a.json \\\n  --json\n{"files": []}\nkpmerge x\n```',
        [(2, ("inspect", "a.json", "--json"))],
    ),
    (
        "indented",
        "text:\n\n    kpmerge merge a.json \\\n        -o out/\n\nmore",
        [(3, ("merge", "a.json", "-o", "out/"))],
    ),
    ("output block", "```\nkpmerge combine: 22 annotations\n```", []),
    ("python block", "```python\nkpmerge = 1\n```", []),
    (
        "quoted #",
        "```sh\nkpmerge merge --mapping 'a=auto,x#1:y' a.json\n```",
        [(2, ("merge", "--mapping", "a=auto,x#1:y", "a.json"))],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in EXAMPLE_SYNTAX], ids=[c[0] for c in EXAMPLE_SYNTAX]
)
def test_examples_are_found_in_every_block_form(text, expected):
    assert [(e.line, e.argv) for e in examples("page.md", text)] == expected


def test_redirection_exit_codes_and_not_run_marks():
    text = (
        "```sh\nkpmerge inspect a.json --strict > report.json  # exits 1: a warning\n```\n\n"
        "<!-- not run: needs a GPU -->\n```sh\nkpmerge merge big.json -o out/\n```\n"
    )
    first, second = examples("page.md", text)
    assert (first.argv, first.stdout_to, first.exit_code, first.not_run) == (
        ("inspect", "a.json", "--strict"),
        "report.json",
        1,
        None,
    )
    assert (second.exit_code, second.not_run) == (0, "needs a GPU")
    assert str(second) == "page.md:7: kpmerge merge big.json -o out/"


@pytest.mark.parametrize(
    "command",
    [
        "kpmerge inspect a.json | jq .",
        "kpmerge merge $IN -o out/",
        "kpmerge x && kpmerge y",
        "kpmerge a > b c",
    ],
)
def test_shell_syntax_the_tests_cannot_run_is_an_error(command):
    with pytest.raises(ValueError, match=r"page.md:3: "):
        parse_command("page.md", 3, command)


@pytest.mark.parametrize(
    ("words", "problems"),
    [
        (("merge", "--target", "coco", "-o", "out"), []),
        (("--debug", "layouts", "show", "coco"), []),
        (("merge", "--targte", "coco"), ["merge: no option --targte"]),
        (("mrege", "a.json"), ["no command 'mrege'"]),
        (("layouts", "show", "--json"), ["show: no option --json"]),
        (("sample", "m.json", "--epochs=0:3"), []),
    ],
)
def test_unknown_commands_and_options_are_found(words, problems):
    assert unknown_options(cli, words) == problems
