"""kpmerge.instances: the columnar core types `Instances` and `Images`, valid by construction."""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext as does_not_raise
from typing import Any

import numpy as np
import pytest

from kpmerge.instances import Dataset, Images, Instances


def mock_instances(n: int = 2, k: int = 3, **changes: Any) -> Instances:
    """N instances of K keypoints: keypoint (i, j) is (10 i + j, 100 + j, 2), box i is [i, i, 5, 6]."""
    i, j = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    fields: dict[str, Any] = {
        "keypoints": np.stack([10.0 * i + j, 100.0 + j, np.full((n, k), 2.0)], axis=2),
        "boxes": np.array([[r, r, 5.0, 6.0] for r in range(n)]).reshape(n, 4),
        "areas": [30.0] * n,
        "iscrowd": [0] * n,
        "image_index": [0] * n,
        "ids": list(range(1, n + 1)),
        "num_keypoints": [k] * n,
        "extra": [b""] * n,
    }
    fields.update(changes)
    return Instances(**fields)


def mock_images(m: int = 2, **changes: Any) -> Images:
    fields: dict[str, Any] = {
        "ids": list(range(1, m + 1)),
        "file_names": [f"{r}.jpg" for r in range(m)],
        "widths": [640.0] * m,
        "heights": [480.0] * m,
        "extra": [b""] * m,
    }
    fields.update(changes)
    return Images(**fields)


# --- construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expectation"),
    [
        ({}, does_not_raise()),
        (
            {"keypoints": np.zeros((2, 3))},
            pytest.raises(ValueError, match=r"^keypoints: expected shape \(N, K, 3\), got \(2, 3\)$"),
        ),
        (
            {"keypoints": np.zeros((2, 3, 2))},
            pytest.raises(ValueError, match=r"^keypoints: expected shape \(N, K, 3\), got \(2, 3, 2\)$"),
        ),
        (
            {"boxes": np.zeros((2, 3))},
            pytest.raises(ValueError, match=r"^boxes: expected shape \(2, 4\), got \(2, 3\)$"),
        ),
        (
            {"boxes": np.zeros((3, 4))},
            pytest.raises(ValueError, match=r"^boxes: expected shape \(2, 4\), got \(3, 4\)$"),
        ),
        ({"areas": [1.0]}, pytest.raises(ValueError, match=r"^areas: expected shape \(2,\), got \(1,\)$")),
        (
            {"iscrowd": [[0, 1]]},
            pytest.raises(ValueError, match=r"^iscrowd: expected shape \(2,\), got \(1, 2\)$"),
        ),
        (
            {"image_index": [0, 0, 0]},
            pytest.raises(ValueError, match=r"^image_index: expected shape \(2,\), got \(3,\)$"),
        ),
        (
            {"num_keypoints": 3},
            pytest.raises(ValueError, match=r"^num_keypoints: expected shape \(2,\), got \(\)$"),
        ),
        ({"ids": [1]}, pytest.raises(ValueError, match=r"^ids: expected 2 entries, got 1$")),
        ({"extra": [b"", b"", b""]}, pytest.raises(ValueError, match=r"^extra: expected 2 entries, got 3$")),
        (
            {"ids": "ab"},
            pytest.raises(ValueError, match=r"^ids: expected a sequence of 2 entries, got a str$"),
        ),
        (
            {"keypoints": [[["a", 1, 2]] * 3] * 2},
            pytest.raises(
                ValueError, match=r"^keypoints: expected numbers \(could not convert string to float: .a.\)$"
            ),
        ),
        ({"areas": [None, "x"]}, pytest.raises(ValueError, match=r"^areas: expected numbers \(")),
        (
            {"image_index": [0.5, 1.0]},
            pytest.raises(ValueError, match=r"^image_index: expected integers, got 0\.5$"),
        ),
        (
            {"num_keypoints": [np.nan, 1.0]},
            pytest.raises(ValueError, match=r"^num_keypoints: expected integers, got nan$"),
        ),
        ({"iscrowd": [0.0, 1.0]}, does_not_raise()),  # integral floats are integers
        ({"iscrowd": [True, False]}, does_not_raise()),
    ],
)
def test_instances_construction_is_validated(changes, expectation):
    with expectation:
        mock_instances(**changes)


@pytest.mark.parametrize(
    ("changes", "expectation"),
    [
        ({}, does_not_raise()),
        (
            {"file_names": ["a.jpg"]},
            pytest.raises(ValueError, match=r"^file_names: expected 2 entries, got 1$"),
        ),
        ({"widths": [1.0]}, pytest.raises(ValueError, match=r"^widths: expected shape \(2,\), got \(1,\)$")),
        (
            {"heights": [[1.0, 2.0]]},
            pytest.raises(ValueError, match=r"^heights: expected shape \(2,\), got \(1, 2\)$"),
        ),
        ({"extra": [b""]}, pytest.raises(ValueError, match=r"^extra: expected 2 entries, got 1$")),
        ({"widths": [640, None]}, does_not_raise()),  # None is NaN: size unknown
    ],
)
def test_images_construction_is_validated(changes, expectation):
    with expectation:
        mock_images(**changes)


@pytest.mark.parametrize(
    ("field", "given", "dtype"),
    [
        ("keypoints", np.zeros((2, 3, 3), dtype=np.int32), np.float64),
        ("keypoints", [[[1, 2, 2]] * 3] * 2, np.float64),
        ("boxes", np.ones((2, 4), dtype=np.float32), np.float64),
        ("areas", [1, 2], np.float64),
        ("iscrowd", [True, False], np.int64),
        ("iscrowd", np.array([0, 1], dtype=np.uint8), np.int64),
        ("image_index", np.array([0, 1], dtype=np.int32), np.int64),
        ("num_keypoints", [3.0, -1.0], np.int64),
        ("ids", np.array([7, 8], dtype=np.int32), object),
        ("ids", ["a/human1", "a/human2"], object),
        ("extra", [b'"x":1', b""], object),
    ],
)
def test_dtypes_are_normalised(field, given, dtype):
    inst = mock_instances(**{field: given})
    value = getattr(inst, field)
    assert value.dtype == dtype
    np.testing.assert_array_equal(value.tolist(), np.asarray(given).tolist())


def test_integer_ids_become_python_ints():
    """JSON writers take Python ints, not numpy scalars."""
    inst = mock_instances(ids=np.array([7, 8], dtype=np.int64))
    assert [type(i) for i in inst.ids] == [int, int]
    assert [type(i) for i in mock_images(ids=np.array([1, 2])).ids] == [int, int]


def test_images_widths_none_is_nan():
    images = mock_images(widths=[640, None])
    assert images.widths[0] == 640 and np.isnan(images.widths[1])


# --- read-only, frozen ----------------------------------------------------------------------------

INSTANCE_FIELDS = [f.name for f in dataclasses.fields(Instances)]


@pytest.mark.parametrize("field", INSTANCE_FIELDS)
def test_instances_arrays_are_read_only(field):
    inst = mock_instances()
    with pytest.raises(ValueError, match="read-only"):
        getattr(inst, field)[0] = getattr(inst, field)[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(inst, field, None)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Images)])
def test_images_arrays_are_read_only(field):
    images = mock_images()
    with pytest.raises(ValueError, match="read-only"):
        getattr(images, field)[0] = getattr(images, field)[1]


def test_selection_results_are_read_only():
    part = mock_instances(n=4)[np.array([0, 2])]
    with pytest.raises(ValueError, match="read-only"):
        part.keypoints[0, 0, 0] = 9


# --- empty, len, k ---------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 1, 14, 17, 136])
def test_empty_keeps_k(k):
    empty = Instances.empty(k)
    assert (len(empty), empty.k) == (0, k)
    assert empty.keypoints.shape == (0, k, 3) and empty.boxes.shape == (0, 4)
    assert all(len(getattr(empty, f)) == 0 for f in INSTANCE_FIELDS)
    assert empty == Instances.empty(k)
    assert empty != Instances.empty(k + 1)
    assert empty.labelled_counts().tolist() == []


def test_images_empty():
    assert len(Images.empty()) == 0 and Images.empty() == mock_images(m=0)


@pytest.mark.parametrize(("n", "k"), [(0, 3), (1, 17), (5, 14)])
def test_len_and_k(n, k):
    inst = mock_instances(n=n, k=k)
    assert (len(inst), inst.k) == (n, k)


# --- selection -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "rows"),
    [
        (np.array([True, False, True, False]), [0, 2]),
        (np.array([False] * 4), []),
        (np.array([3, 0]), [3, 0]),
        (np.array([1, 1]), [1, 1]),
        (np.array([], dtype=np.int64), []),
        (slice(1, 3), [1, 2]),
        (slice(None, None, -1), [3, 2, 1, 0]),
    ],
)
def test_selection_takes_whole_rows(index, rows):
    inst = mock_instances(
        n=4,
        areas=[1.0, 2.0, np.nan, 4.0],
        iscrowd=[0, 1, 0, 1],
        image_index=[0, 0, 1, 2],
        ids=["a", "b", "c", "d"],
        num_keypoints=[3, -1, 2, 0],
        extra=[b'"x":0', b'"x":1', b'"x":2', b'"x":3'],
    )
    part = inst[index]
    assert (len(part), part.k) == (len(rows), 3)
    for field in INSTANCE_FIELDS:
        want = np.asarray(getattr(inst, field))[rows] if rows else np.asarray(getattr(inst, field))[:0]
        np.testing.assert_array_equal(getattr(part, field), want, err_msg=field)
    assert part == Instances(**{f: getattr(inst, f)[rows] for f in INSTANCE_FIELDS})


def test_selection_of_a_wrong_length_mask_is_refused():
    with pytest.raises(IndexError):
        mock_instances(n=3)[np.array([True, False])]


# --- equality --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "equal"),
    [
        ({}, True),
        ({"keypoints": mock_instances().keypoints + 0.5}, False),
        ({"boxes": [[0.0, 0.0, 5.0, 6.0], [1.0, 1.0, 5.0, 7.0]]}, False),
        ({"areas": [30.0, 31.0]}, False),
        ({"iscrowd": [0, 1]}, False),
        ({"image_index": [0, 1]}, False),
        ({"ids": [1, 3]}, False),
        ({"ids": ["1", "2"]}, False),
        ({"num_keypoints": [3, -1]}, False),
        ({"extra": [b"", b'"x":1']}, False),
        ({"keypoints": mock_instances().keypoints.astype(np.float32)}, True),  # same values after normalising
        ({"ids": np.array([1, 2])}, True),
    ],
)
def test_equality_compares_every_column(changes, equal):
    assert (mock_instances() == mock_instances(**changes)) is equal
    assert (mock_instances() != mock_instances(**changes)) is not equal


def test_equality_details():
    assert mock_instances(areas=[np.nan, 1.0]) == mock_instances(areas=[np.nan, 1.0])  # NaN: area unknown
    assert mock_instances(k=3) != mock_instances(k=4)
    assert mock_instances(n=0, k=3) != mock_instances(n=0, k=4)  # no rows, other widths
    assert mock_instances() != "not instances"
    assert mock_images(widths=[np.nan, 1.0]) == mock_images(widths=[np.nan, 1.0])
    assert mock_images() != mock_images(file_names=["0.jpg", "x.jpg"])
    assert mock_images() != mock_instances()


# --- derived values --------------------------------------------------------------------------------


def test_labelled_counts_and_with_keypoints():
    kp = np.zeros((3, 4, 3))
    kp[0, :, 2] = [2, 1, 0, 2]
    kp[2, 3, 2] = 1
    inst = mock_instances(n=3, k=4, keypoints=kp)
    assert inst.labelled_counts().tolist() == [3, 0, 1]
    assert inst.labelled_counts().dtype == np.int64
    wider = inst.with_keypoints(np.zeros((3, 19, 3)))
    assert (wider.k, len(wider)) == (19, 3)
    assert wider.ids.tolist() == inst.ids.tolist()
    assert inst.k == 4  # the original is unchanged
    with pytest.raises(ValueError, match=r"keypoints: expected shape \(N, K, 3\), got \(3, 19\)"):
        inst.with_keypoints(np.zeros((3, 19)))
    with pytest.raises(ValueError, match=r"boxes: expected shape \(2, 4\), got \(3, 4\)"):
        inst.with_keypoints(np.zeros((2, 4, 3)))


def test_dataset_counts_skipped_annotations_as_read():
    ds = Dataset(images=mock_images(), instances=mock_instances(n=3), skipped={"other_category": 2})
    assert ds.annotations_read == 5
    assert Dataset(images=Images.empty(), instances=Instances.empty(17)).annotations_read == 0
