"""The `kpmerge ...` command examples of README.md and docs/*.md, and a folder holding the files they name.

An example is a command line in a fenced ```sh / ```console / ```bash / ```shell block (in `console`
blocks only lines after a `$ ` prompt), or in an indented code block (four spaces after a blank line),
with backslash continuations joined and a trailing `# comment` split off. A comment `exits N` (e.g.
`# exits 2: no image sizes`) says the example fails with exit code N. An HTML comment
`<!-- not run: REASON -->` as the last non-blank line before a block marks every example of the block
as one that cannot run in the tests (its command and options are still checked).
"""

from __future__ import annotations

import gzip
import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from kpmerge.layouts import builtin_layout
from kpmerge.synth import COCO_IMAGES, synth_aic, synth_aic_sizes, synth_coco, tiny_png
from kpmerge.synth_styles import synth_mpii, synth_raw_aic, synth_style, write_image_headers

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("docs/commands.md",)
SHELL_BLOCKS = ("sh", "bash", "shell", "console")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w-]*)")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(.+?)\s*-->\s*$")
_EXITS = re.compile(r"\bexits (\d+)\b")
_SHELL_SYNTAX = ("|", "||", "&&", "&", ";", "<", ">>", "2>", "2>&1")


@dataclass(frozen=True)
class Example:
    """One command line of a page, as it runs: `argv` without the leading `kpmerge`."""

    page: str
    line: int
    text: str
    argv: tuple[str, ...]
    stdout_to: str | None = None
    exit_code: int = 0
    not_run: str | None = None

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def pages() -> list[str]:
    """README.md and every docs page except the generated command reference, relative to the root."""
    found = ["README.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]
    return [p for p in found if p not in GENERATED]


def split_comment(text: str) -> tuple[str, str]:
    """`text` before a `#` that starts a shell comment (outside quotes, after a space), and the comment."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip(), text[i + 1 :].strip()
    return text.rstrip(), ""


def parse_command(page: str, line: int, text: str, not_run: str | None = None) -> Example:
    """One logical command line (continuations joined) as an `Example`.

    Raises:
        ValueError: for shell syntax the tests do not emulate (pipes, `&&`, variables, ...).
    """
    command, comment = split_comment(text)
    words = shlex.split(command)
    stdout_to = None
    if ">" in words:
        at = words.index(">")
        if at != len(words) - 2:
            raise ValueError(f"{page}:{line}: `>` must be followed by one file name at the end: {text}")
        stdout_to, words = words[-1], words[:at]
    unsupported = [w for w in words if w in _SHELL_SYNTAX or w.startswith(">") or "$" in w or "`" in w]
    if unsupported or words[:1] != ["kpmerge"]:
        raise ValueError(f"{page}:{line}: shell syntax the tests cannot run ({unsupported}): {text}")
    exits = _EXITS.search(comment)
    return Example(
        page, line, command, tuple(words[1:]), stdout_to, int(exits.group(1)) if exits else 0, not_run
    )


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(line number, text) of each command, backslash continuations joined."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, text in lines:
        start, joined = pending if pending else (number, "")
        joined = f"{joined} {text.strip()}".strip()
        if joined.endswith("\\"):
            pending = (start, joined[:-1].rstrip())
        else:
            pending = None
            out.append((start, joined))
    if pending:
        out.append(pending)
    return out


def _commands(block: list[tuple[int, str]], console: bool) -> list[tuple[int, str]]:
    if console:  # a prompt starts a command; its continuations follow; other lines are output
        kept, continuing = [], False
        for number, text in block:
            if text.lstrip().startswith("$ "):
                kept.append((number, text.lstrip()[2:]))
            elif continuing:
                kept.append((number, text))
            else:
                continue
            continuing = text.rstrip().endswith("\\")
        block = kept
    lines = [(n, t.strip().removeprefix("$ ")) for n, t in _logical_lines(block)]
    return [(n, t) for n, t in lines if t.split(maxsplit=1)[:1] == ["kpmerge"]]


def blocks(page: str, text: str) -> list[tuple[str, str | None, list[tuple[int, str]]]]:
    """The code blocks of a page: (language, the not-run reason before it, its (line number, text) lines);
    indented blocks have the language `indented`."""
    found: list[tuple[str, str | None, list[tuple[int, str]]]] = []
    lines = text.splitlines()
    i, previous = 0, ""
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        reason = m.group(1) if (m := _NOT_RUN.match(previous)) else None
        if opened:
            fence, language, body = opened.group(1), opened.group(2), []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence):
                body.append((i + 1, lines[i]))
                i += 1
            found.append((language, reason, body))
            previous = lines[i] if i < len(lines) else ""
        elif lines[i].startswith("    ") and lines[i].strip() and (i == 0 or not lines[i - 1].strip()):
            body = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append((i + 1, lines[i][4:]))
                i += 1
            found.append(("indented", reason, body))
            previous = body[-1][1]
            continue
        elif lines[i].strip():
            previous = lines[i]
        i += 1
    return found


def examples(page: str, text: str | None = None) -> list[Example]:
    """The command examples of `page` (a path relative to the root), in page order."""
    text = (ROOT / page).read_text(encoding="utf-8") if text is None else text
    out = []
    for language, reason, body in blocks(page, text):
        if language in SHELL_BLOCKS or (
            language == "indented" and body[0][1].removeprefix("$ ").startswith("kpmerge ")
        ):
            for number, command in _commands(body, console=language == "console"):
                out.append(parse_command(page, number, command, reason))
    return out


def hidden_commands(page: str, text: str | None = None) -> list[str]:
    """Command lines in code blocks the examples do not run (no language or another one), which
    would silently escape the tests: `kpmerge SUBCOMMAND ...` or `$ kpmerge ...`, not output lines
    like `kpmerge combine: 22 annotations ...`."""
    text = (ROOT / page).read_text(encoding="utf-8") if text is None else text
    found = []
    for language, _, body in blocks(page, text):
        if language in SHELL_BLOCKS or language == "indented":
            continue
        for number, line in body:
            stripped = line.strip().removeprefix("$ ")
            if re.match(r"kpmerge( -{1,2}\w[\w-]*)* [a-z][\w-]*(\s|$)", stripped):
                found.append(f"{page}:{number}: {line.strip()}")
    return found


def inline_commands(page: str) -> list[tuple[str, tuple[str, ...]]]:
    """`kpmerge ...` commands in inline code spans of prose, as (text, words): a synopsis like
    `kpmerge sample MANIFEST [--rank R]` keeps its options, brackets and `...` taken away."""
    text = (ROOT / page).read_text(encoding="utf-8")
    prose = "\n".join(body for i, body in enumerate(re.split(r"^\s*```.*$", text, flags=re.M)) if i % 2 == 0)
    out = []
    for span in re.findall(r"(?<!`)`(kpmerge [^`]+)`(?!`)", prose):
        words = [w.strip("[]") for w in span.replace("\n", " ").split()]
        out.append((span, tuple(w for w in words[1:] if w and w not in ("...", "|"))))
    return out


def unknown_options(cli: click.Group, words: tuple[str, ...]) -> list[str]:
    """The subcommands and options of `words` (after `kpmerge`) that `cli` does not have."""
    command: click.Command = cli
    problems = []
    for word in words:
        if word == "--":
            break
        if isinstance(command, click.Group) and not word.startswith("-"):
            sub = command.commands.get(word)
            if sub is None:
                if command is cli:
                    problems.append(f"no command {word!r}")
                break
            command = sub
            continue
        if word.startswith("-") and len(word) > 1 and not _is_number(word):
            name = word.split("=", 1)[0]
            known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"-h", "--help"}
            if name not in known:
                problems.append(f"{command.name}: no option {name}")
    return problems


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def _images_of(coco: bytes, folder: Path) -> None:
    """A tiny image of the right size for every image record of a COCO file."""
    doc = json.loads(coco)
    write_image_headers(folder, {im["file_name"]: (im["width"], im["height"]) for im in doc["images"]})


def _wholebody(doc: dict[str, Any]) -> dict[str, Any]:
    """A COCO-style document as COCO-WholeBody: part keypoints (feet at the ankles, the rest unlabelled),
    part boxes and valid flags on every annotation."""
    for ann in doc["annotations"]:
        body = np.array(ann["keypoints"]).reshape(17, 3)
        ankles = np.repeat(body[15:17], 3, axis=0).reshape(-1).tolist()
        ann |= {"foot_kpts": ankles, "face_kpts": [0] * 204, "lefthand_kpts": [0] * 63}
        ann |= {"righthand_kpts": [0] * 63, "face_box": [0, 0, 0, 0], "lefthand_box": [0, 0, 0, 0]}
        ann |= {"righthand_box": [0, 0, 0, 0], "foot_valid": any(ankles[2::3]), "face_valid": False}
        ann |= {"lefthand_valid": False, "righthand_valid": False}
    return doc


def _yolo_dataset(root: Path) -> None:
    """An Ultralytics YOLO-pose dataset in COCO's layout: `data.yaml`, images and labels of `train`."""
    coco = builtin_layout("coco")
    flips = coco.flip_indices
    doc = synth_style("coco", images=3, people=6, seed=5)
    names = ", ".join(coco.keypoints)
    (root / "data.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(
        f"train: images/train\nval: images/train\nkpt_shape: [17, 3]\nflip_idx: {flips}\n"
        f"names: {{0: person}}\nkpt_names: {{0: [{names}]}}\n"
    )
    for image in doc["images"]:
        w, h = image["width"], image["height"]
        stem = Path(image["file_name"]).stem
        (root / "images/train").mkdir(parents=True, exist_ok=True)
        (root / f"images/train/{stem}.png").write_bytes(tiny_png(w, h))
        rows = []
        for ann in (a for a in doc["annotations"] if a["image_id"] == image["id"]):
            x, y, bw, bh = ann["bbox"]
            kp = np.array(ann["keypoints"], dtype=float).reshape(-1, 3) / [w, h, 1]
            values = [0, (x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h, *kp.reshape(-1)]
            rows.append(" ".join(f"{v:g}" for v in values))
        (root / "labels/train").mkdir(parents=True, exist_ok=True)
        (root / f"labels/train/{stem}.txt").write_text("".join(f"{r}\n" for r in rows))


SCALE = 12 / COCO_IMAGES
"""About a dozen images per synthetic COCO and AIC file: enough people for every statistic, fast."""


def build_workspace(folder: Path) -> Path:
    """Write into `folder` every input the examples name, shaped as the real files are, at tiny scale."""
    coco_train, coco_val = synth_coco(SCALE, 0), synth_coco(SCALE, 1)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "person_keypoints_train2017.json").write_bytes(coco_train)
    (folder / "person_keypoints_val2017.json").write_bytes(coco_val)
    _images_of(coco_val, folder / "val2017")
    (folder / "coco.json").write_bytes(coco_val)
    _write_json(folder / "train.json", synth_style("coco", images=4, people=10, seed=3))
    (folder / "aic_train.json").write_bytes(synth_aic(SCALE * 2, 0))
    # The paths of the recipe in docs/recipes.md: the original file names of the two datasets.
    (folder / "annotations").mkdir()
    (folder / "annotations/person_keypoints_train2017.json").write_bytes(coco_train)
    (folder / "aic").mkdir()
    (folder / "aic/keypoint_train_annotations_20170909.json").write_bytes(synth_aic(SCALE * 2, 0))
    sizes = {f"{i}.jpg": s for i, s in synth_aic_sizes(SCALE * 2, 0).items()}
    write_image_headers(folder / "aic/keypoint_train_images_20170902", sizes)
    (folder / "aic_val.json").write_bytes(synth_aic(SCALE, 1))
    sizes = {f"{i}.jpg": s for i, s in synth_aic_sizes(SCALE, 1).items()}
    write_image_headers(folder / "aic/keypoint_validation_images_20170911", sizes)
    records, _ = synth_raw_aic(images=3, people=6, seed=2)
    _write_json(folder / "aic.json", records)
    for style, name in [
        ("crowdpose", "crowdpose_train.json"),
        ("jhmdb", "jhmdb_train.json"),
        ("halpe", "halpe_train_v1.json"),
        ("posetrack18", "posetrack18_train.json"),
    ]:
        _write_json(folder / name, synth_style(style, images=3, people=6))
    wholebody = json.dumps(_wholebody(synth_style("coco", images=3, people=6, seed=4))).encode()
    (folder / "coco_wholebody_train_v1.0.json.gz").write_bytes(gzip.compress(wholebody, mtime=0))
    mpii, mpii_sizes = synth_mpii(images=3, people=5)
    _write_json(folder / "mpii_train.json", mpii)
    write_image_headers(folder / "mpii/images", mpii_sizes)
    _yolo_dataset(folder / "my_yolo")
    shutil.copytree(ROOT / "sample_data", folder / "sample_data")
    # A data root for sample_out (the demo output), whose AIC file names carry the prefix aic/train/.
    shutil.copytree(ROOT / "sample_data" / "aic_images", folder / "data" / "aic" / "train")
    return folder
