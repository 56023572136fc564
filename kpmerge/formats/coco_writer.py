"""Writing COCO-style keypoint JSON: the writer of the COCO and COCO-WholeBody formats.

Records are written column by column (`_interleave`), in chunks of `CHUNK_RECORDS` records, so that a
large file is made without holding it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import orjson

from ..instances import Dataset, Ids, Images, Instances
from ..jsonwrite import Chunks, json_values, number_list, number_rows

if TYPE_CHECKING:
    from ..tags import SourceTags


def dataset_to_coco(
    dataset: Dataset,
    names: list[str],
    skeleton: list[list[int]],
    info: dict[str, object] | None = None,
    image_ids: Sequence[int | str] | None = None,
    annotation_ids: Sequence[int | str] | None = None,
) -> bytes:
    """COCO keypoint JSON bytes for a Dataset.

    Args:
        dataset: Images and instances to write.
        names: The person category's keypoint names.
        skeleton: Links as 1-based index pairs (COCO's convention).
        info: An optional `info` object.
        image_ids: Ids to write for the images (default: their own ids).
        annotation_ids: Ids to write for the annotations (default: their own ids).
    """
    return b"".join(dataset_to_coco_chunks(dataset, names, skeleton, info, image_ids, annotation_ids))


CHUNK_RECORDS = 2048
"""Records per chunk of `dataset_to_coco_chunks` (a few MB: small enough to reuse the same memory)."""


def dataset_to_coco_chunks(
    dataset: Dataset,
    names: list[str],
    skeleton: list[list[int]],
    info: dict[str, object] | None = None,
    image_ids: Sequence[int | str] | None = None,
    annotation_ids: Sequence[int | str] | None = None,
    progress: Callable[[int], None] | None = None,
    image_tags: SourceTags | None = None,
    annotation_tags: SourceTags | None = None,
) -> Chunks:
    """`dataset_to_coco`'s bytes as consecutive chunks, to write without holding the whole file.

    Args:
        progress: Called with the number of records (images, then annotations) each chunk holds.
        image_tags: `source` and `source_id` to write first among each image's extra members.
        annotation_tags: The same for each annotation.
    """
    images, inst = dataset.images, dataset.instances
    img_ids = np.asarray(image_ids, dtype=object) if image_ids is not None else images.ids
    ann_ids = np.asarray(annotation_ids, dtype=object) if annotation_ids is not None else inst.ids
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": names,
        "skeleton": skeleton,
    }
    head = b"{"
    if info is not None:
        head += b'"info":' + orjson.dumps(info) + b","
    head += b'"images":['

    def image_chunk(lo: int, hi: int) -> bytes:
        ids = json_values(img_ids[lo:hi])
        return (b",\n" if lo else b"") + b"".join(_image_pieces(images, ids, lo, hi, image_tags))

    def annotation_chunk(lo: int, hi: int) -> bytes:
        ids, of_image = json_values(ann_ids[lo:hi]), json_values(img_ids[inst.image_index[lo:hi]])
        pieces = _annotation_pieces(inst, ids, of_image, lo, hi, annotation_tags)
        return (b",\n" if lo else b"") + b"".join(pieces)

    pieces: list[tuple[int, Callable[[], bytes]]] = [(0, lambda: head)]
    for lo in range(0, len(images), CHUNK_RECORDS):
        hi = min(lo + CHUNK_RECORDS, len(images))
        pieces.append((hi - lo, partial(image_chunk, lo, hi)))
    pieces.append((0, lambda: b'],\n"annotations":['))
    for lo in range(0, len(inst), CHUNK_RECORDS):
        hi = min(lo + CHUNK_RECORDS, len(inst))
        pieces.append((hi - lo, partial(annotation_chunk, lo, hi)))
    pieces.append((0, lambda: b'],\n"categories":[' + orjson.dumps(category) + b"]}\n"))
    return Chunks(pieces, progress)


def _interleave(columns: list[list[bytes] | bytes], n: int) -> list[bytes]:
    """Pieces of n records, record by record: each column is a constant or one value per record.

    The last column closes a record; records are separated by `,\\n`.
    """
    width = len(columns)
    out: list[bytes] = [b""] * (n * width)
    for c, col in enumerate(columns):
        out[c::width] = [col] * n if isinstance(col, bytes) else col
    if n:
        out[width - 1 :: width] = [columns[-1] + b",\n"] * n  # type: ignore[operator]
        out[-1] = columns[-1]  # type: ignore[assignment]
    return out


def _optional(key: bytes, values: np.ndarray) -> tuple[list[bytes] | bytes, list[bytes] | bytes]:
    """Key and value columns for a number member left out where the value is NaN (missing)."""
    missing = np.isnan(values)
    if not missing.any():
        return key, number_list(values)
    if missing.all():
        return b"", b""
    texts = number_list(values)
    return [b"" if m else key for m in missing.tolist()], [b"" if v == b"null" else v for v in texts]


def _extra_columns(extra: Ids, tags: SourceTags | None, lo: int, hi: int) -> list[list[bytes] | bytes]:
    """Columns of the extra members of records lo..hi (after `tags`, if given), led by a comma."""
    values = extra[lo:hi].tolist()
    lead: list[list[bytes] | bytes] = [b",", *tags.columns(lo, hi)] if tags is not None else []
    if all(values):
        return [*lead, b",", values]
    if tags is None:
        return [[b"," if v else b"" for v in values], values]
    return [*lead, [b"," if v else b"" for v in values], values]


def _image_pieces(
    images: Images, ids: list[bytes], lo: int, hi: int, tags: SourceTags | None = None
) -> list[bytes]:
    k_w, v_w = _optional(b',"width":', images.widths[lo:hi])
    k_h, v_h = _optional(b',"height":', images.heights[lo:hi])
    columns = [b'{"id":', ids, b',"file_name":', json_values(images.file_names[lo:hi])]
    columns += [k_w, v_w, k_h, v_h, *_extra_columns(images.extra, tags, lo, hi), b"}"]
    return _interleave(columns, hi - lo)


def _annotation_pieces(
    inst: Instances,
    ids: list[bytes],
    of_image: list[bytes],
    lo: int,
    hi: int,
    tags: SourceTags | None = None,
) -> list[bytes]:
    n = hi - lo
    kp = inst.keypoints[lo:hi]
    k_area, v_area = _optional(b',"area":', inst.areas[lo:hi])
    labelled = np.count_nonzero(kp[:, :, 2] > 0, axis=1)
    columns = [b'{"id":', ids, b',"image_id":', of_image, b',"category_id":1,"keypoints":[']
    columns += [number_rows(kp.reshape(n, 3 * kp.shape[1])), b'],"num_keypoints":']
    columns += [json_values(labelled), b',"bbox":[', number_rows(inst.boxes[lo:hi]), b"]"]
    columns += [k_area, v_area, b',"iscrowd":', json_values(inst.iscrowd[lo:hi])]
    columns += [*_extra_columns(inst.extra, tags, lo, hi), b"}"]
    return _interleave(columns, n)
