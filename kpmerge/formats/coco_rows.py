"""COCO-style documents decoded once, annotations as rows: typed where their shape allows, else raw members.

Annotations are decoded as typed rows (numbers by msgspec, keypoints, boxes and other members as raw JSON)
whose members are those of the first annotation. A document with an annotation of another shape (a member
the first one lacks, a wrong type) is decoded as rows of raw members instead, whose columns are decoded on
demand; that is where such a row's error is reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import attrgetter, is_, itemgetter, methodcaller
from typing import Annotated, Any

import msgspec

from ..errors import KpmergeError
from ..jsonio import NULL, Raw, decode, decode_column
from ..jsonwrite import compact, key_bytes, members_all
from .checks import Sink

Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""An integer that fits the 64-bit integers numpy and orjson take (ids, flags and counts)."""

Id = int | str
"""An image, annotation or category id as the file holds it."""
Category = dict[str, object]
"""A category record, decoded as plain JSON values."""
MISSING = "expected a value, got none (missing)"
ANNOTATION_FIELDS = frozenset(
    {"id", "image_id", "category_id", "keypoints", "num_keypoints", "bbox", "area", "iscrowd"}
)
ABSENT = msgspec.Raw(b"null")
"""The value of a raw member a typed row does not have (compared by identity)."""
_PASS_THROUGH = ("source", "source_id", "segmentation")
"""Members a typed row always knows (kpmerge's own outputs write source and source_id first)."""
_TYPED: list[tuple[str, Any] | tuple[str, Any, Any]] = [
    ("id", Int64 | str),
    ("image_id", Int64 | str),
    ("keypoints", Raw),
    ("bbox", Raw),
    ("category_id", int | str | None, None),
    ("num_keypoints", Int64 | None, None),
    ("area", float | None, None),
    ("iscrowd", Int64 | bool | None, None),
]
_FIRST_WINDOW = 1 << 20
"""Bytes after `"annotations"` in which the first annotation is looked at."""


class Document(msgspec.Struct):
    images: list[dict[str, Raw]]
    annotations: list[dict[str, Raw]]
    categories: list[Category] = []


def decode_document(
    data: bytes, sink: Sink, spaced: bool, take: Sequence[str] = ()
) -> tuple[list[dict[str, Raw]], list[Category], Rows]:
    """A document's image records, categories and annotations (as Rows), in one decode.

    Args:
        data: The document's bytes.
        sink: Where errors go (decoding errors raise).
        spaced: Whether the document has layout white space (see `jsonio.has_layout_space`).
        take: Members the caller takes out of the annotations (`Rows.taken`) instead of passing them through.
    """
    row_type, extras = _row_type(_first_keys(data), take)
    try:
        typed = msgspec.json.decode(data, type=row_type)
    except msgspec.DecodeError:
        typed = None  # rows of another shape: decoded as raw members, which reports any error
    if typed is not None:
        return typed.images, typed.categories, TypedRows(typed.annotations, extras, take, spaced)
    doc = decode(data, Document, sink.file)
    return doc.images, doc.categories, DictRows(doc.annotations, take, sink, spaced)


def _first_keys(data: bytes) -> list[str]:
    """The member names of the first annotation, in order (empty when it cannot be seen cheaply)."""
    at = data.find(b'"annotations"')
    if at < 0:
        return []
    window = bytes(data[at : at + _FIRST_WINDOW]).decode("utf-8", errors="replace")
    start = window.find("{")
    if start < 0 or window[len('"annotations"') : start].strip(" \t\r\n:[") != "":
        return []
    try:
        first, _ = json.JSONDecoder().raw_decode(window, start)
    except ValueError:
        return []
    return list(first) if isinstance(first, dict) else []


def _row_type(first: list[str], take: Sequence[str]) -> tuple[type, list[tuple[str, str]]]:
    """The typed document for rows shaped like the first annotation, and its raw (attribute, key) members."""
    raw_keys = [k for k in first if k not in ANNOTATION_FIELDS and k not in take]
    raw_keys += [k for k in _PASS_THROUGH if k not in raw_keys and k not in take]
    extras = [(f"e{i}", k) for i, k in enumerate(raw_keys)]
    fields: list[Any] = list(_TYPED)
    fields += [(attr, Raw, ABSENT) for attr, _ in extras]
    fields += [(f"t{i}", Raw, ABSENT) for i in range(len(take))]
    rename = dict(extras) | {f"t{i}": k for i, k in enumerate(take)}
    row = msgspec.defstruct("Annotation", fields, rename=rename, forbid_unknown_fields=True)
    document = msgspec.defstruct(
        "Document",
        [
            ("images", list[dict[str, Raw]]),
            ("annotations", list[row]),  # type: ignore[valid-type]
            ("categories", list[Category], msgspec.field(default_factory=list)),
        ],
    )
    return document, extras


class Rows:
    """The annotation rows as columns, whichever way they were decoded."""

    n: int
    take: list[str]

    def select(self, keep: list[int]) -> None:
        """Keep only these rows (the person annotations)."""
        raise NotImplementedError

    def categories(self, sink: Sink) -> list[Id | None]:
        raise NotImplementedError

    def scalar(self, name: str, type_: Any) -> list[Any]:
        """A decoded scalar column of the kept rows (None where absent)."""
        raise NotImplementedError

    def raw(self, name: str) -> list[Raw]:
        """A raw column of the kept rows (all present: required members)."""
        raise NotImplementedError

    def taken(self, name: str) -> list[Raw | None]:
        raise NotImplementedError

    def raw_members(self, i: int) -> list[Raw]:
        """Raw values of row i that lie in the document (to skip over the rows when scanning it)."""
        raise NotImplementedError

    def id_at(self, i: int) -> object:
        """The id of row i, as the file gives it (None when it has none)."""
        raise NotImplementedError

    def extra(self) -> list[bytes]:
        raise NotImplementedError


class TypedRows(Rows):
    def __init__(
        self, rows: list[msgspec.Struct], extras: list[tuple[str, str]], take: Sequence[str], spaced: bool
    ):
        self.rows, self.extras, self.take, self.spaced = rows, extras, list(take), spaced
        self.n = len(rows)

    def select(self, keep: list[int]) -> None:
        self.rows = [self.rows[i] for i in keep]
        self.n = len(keep)

    def categories(self, sink: Sink) -> list[Id | None]:
        return list(map(attrgetter("category_id"), self.rows))

    def scalar(self, name: str, type_: Any) -> list[Any]:
        return list(map(attrgetter(name), self.rows))

    def raw(self, name: str) -> list[Raw]:
        return list(map(attrgetter(name), self.rows))

    def taken(self, name: str) -> list[Raw | None]:
        values = list(map(attrgetter(f"t{self.take.index(name)}"), self.rows))
        return [None if v is ABSENT else v for v in values]

    def raw_members(self, i: int) -> list[Raw]:
        row = self.rows[i]
        return [row.keypoints, row.bbox]  # type: ignore[attr-defined]

    def id_at(self, i: int) -> object:
        return self.rows[i].id  # type: ignore[attr-defined]

    def extra(self) -> list[bytes]:
        """Each row's raw members as `"k":v,...`, in the first annotation's order (one join per row)."""
        columns: list[Iterable[bytes | Raw]] = []
        lead_absent = False  # whether the first member is absent somewhere (its rows may start with a comma)
        cache: dict[str, bytes] = {}
        for attr, name in self.extras:
            values = list(map(attrgetter(attr), self.rows))
            absent = list(map(is_, values, repeat(ABSENT)))
            if all(absent):
                continue
            if self.spaced:
                values = [v if a else compact(v) for v, a in zip(values, absent, strict=True)]
            key = (b"," if columns else b"") + key_bytes(name, cache)
            if any(absent):
                lead_absent = lead_absent or not columns
                columns.append([b"" if a else key for a in absent])
                columns.append([b"" if a else v for v, a in zip(values, absent, strict=True)])
            else:
                columns += [repeat(key), values]
        if not columns:
            return [b""] * self.n
        if len(columns) == 2 and isinstance(columns[0], repeat):  # one member, in every row
            return list(map(key.__add__, columns[1]))  # type: ignore[arg-type]
        rows = list(map(b"".join, zip(*columns, strict=False)))  # key columns repeat without end
        return [r[1:] if r[:1] == b"," else r for r in rows] if lead_absent else rows


class DictRows(Rows):
    def __init__(self, rows: list[dict[str, Raw]], take: Sequence[str], sink: Sink, spaced: bool):
        self.rows, self.take, self.sink, self.spaced = rows, list(take), sink, spaced
        self.n = len(rows)
        self.where: list[int] | range = range(self.n)

    def select(self, keep: list[int]) -> None:
        self.rows = [self.rows[i] for i in keep]
        self.where, self.n = keep, len(keep)
        for j, rec in enumerate(self.rows):
            for key in ("id", "image_id", "keypoints", "bbox"):
                if key not in rec:
                    self.sink.fail(MISSING, f"$.annotations[{self.where[j]}].{key}")

    def categories(self, sink: Sink) -> list[Id | None]:
        raws = list(map(methodcaller("get", "category_id", NULL), self.rows))
        return decode_column(raws, int | str | None, sink.file, "annotations", "category_id")

    def scalar(self, name: str, type_: Any) -> list[Any]:
        raws = list(map(methodcaller("get", name, NULL), self.rows))
        try:
            return decode_column(raws, type_, self.sink.file, "annotations", name)
        except KpmergeError as err:
            raise _reindex(err, self.where) from None

    def raw(self, name: str) -> list[Raw]:
        return list(map(itemgetter(name), self.rows))

    def taken(self, name: str) -> list[Raw | None]:
        return list(map(methodcaller("get", name), self.rows))

    def raw_members(self, i: int) -> list[Raw]:
        return list(self.rows[i].values())

    def id_at(self, i: int) -> object:
        return msgspec.json.decode(self.rows[i].get("id", NULL))

    def extra(self) -> list[bytes]:
        return members_all(self.rows, ANNOTATION_FIELDS | frozenset(self.take), {}, self.spaced)


def _reindex(err: KpmergeError, where: Sequence[int]) -> KpmergeError:
    """Map a position among kept annotations back to its position in the file."""
    path = err.json_path or ""
    prefix = "$.annotations["
    if isinstance(where, range) or not path.startswith(prefix):
        return err
    j, rest = path[len(prefix) :].split("]", 1)
    return KpmergeError(err.message, err.file, f"{prefix}{where[int(j)]}]{rest}")
