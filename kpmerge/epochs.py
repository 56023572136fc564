"""The consumers of a sampling plan (SPEC 6): `ManifestSampler`, the sampler a PyTorch DataLoader takes as
`sampler=` (or `batch_sampler=`), and the epoch index files `write_epochs` writes (`.json` or `.npy`) for
trainers in other languages.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UsageError
from .jsonwrite import dumps_pretty
from .output import write_folder
from .publish import check_outside_inputs
from .sampling import INT64_MAX, SamplingPlan, check_rank, load_plan, shard

FORMATS = ("json", "npy")
MAX_EPOCH_FILES = 10_000
"""The most index files one `write_epochs` call writes (epochs times ranks)."""


class ManifestSampler:
    """The epochs of a manifest for one rank: an iterable with `__len__` and `set_epoch`.

    Pass it to a PyTorch DataLoader as `sampler=` for a dataset-level plan (it yields ints) or as
    `batch_sampler=` when the manifest sets a batch composition (it yields lists of ints). Indices are
    positions in the `annotations` array of the manifest's annotations file. Call `set_epoch(e)` before
    each epoch, as with DistributedSampler.

    Args:
        manifest: Path of manifest.json, or the loaded dict.
        rank: This process's rank.
        world_size: Number of ranks.

    Raises:
        KpmergeError: for a malformed manifest; UsageError for a rank outside [0, world_size).
    """

    def __init__(
        self, manifest: str | os.PathLike[str] | Mapping[str, Any], rank: int = 0, world_size: int = 1
    ):
        self.plan = load_plan(manifest)
        check_rank(rank, world_size)
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    @property
    def batched(self) -> bool:
        """True when the sampler yields batches (use it as `batch_sampler=`)."""
        return self.plan.batched

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch the next iteration yields."""
        if epoch < 0:
            raise UsageError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        """This rank's share of the current epoch: (L,) indices or (L, B) batches."""
        return self.plan.epoch(self.epoch, self.rank, self.world_size)

    def __len__(self) -> int:
        return self.plan.length(self.world_size)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.indices().tolist())


def parse_epochs(text: str) -> range:
    """`E` or `START:STOP` (STOP excluded, as a Python slice) as a range of epochs.

    Raises:
        UsageError: for anything else, or an empty or negative range.
    """
    start, sep, stop = text.partition(":")
    try:
        epochs = range(int(start), int(stop)) if sep else range(int(start), int(start) + 1)
    except ValueError:
        raise UsageError(f"expected an epoch E or a range START:STOP, got {text!r}") from None
    if not epochs or epochs.start < 0:
        raise UsageError(f"expected a non-empty range of epochs >= 0, got {text!r}")
    if epochs.stop - 1 > INT64_MAX:
        raise UsageError(f"expected epochs below 2**63, got {text!r}")
    return epochs


def epoch_file_name(epoch: int, rank: int, world_size: int, fmt: str) -> str:
    """`epoch_0003.rank_1_of_4.json` (or `.npy`)."""
    return f"epoch_{epoch:04d}.rank_{rank}_of_{world_size}.{fmt}"


def epoch_bytes(plan: SamplingPlan, epoch: int, rank: int, world_size: int, fmt: str) -> bytes:
    """One epoch of one rank as a file: JSON `{"epoch", "rank", "world_size", "indices" | "batches"}`,
    or `.npy` of int64: (L,) indices or (L, B) batches."""
    return _file_bytes(plan.epoch(epoch, rank, world_size), plan.batched, epoch, rank, world_size, fmt)


def _file_bytes(share: np.ndarray, batched: bool, epoch: int, rank: int, world_size: int, fmt: str) -> bytes:
    arr = share.astype("<i8")
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        return buf.getvalue()
    if fmt != "json":
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    key = "batches" if batched else "indices"
    return dumps_pretty({"epoch": epoch, "rank": rank, "world_size": world_size, key: arr.tolist()})


def epoch_files(
    manifest: str | os.PathLike[str] | Mapping[str, Any],
    epochs: Sequence[int] | range,
    ranks: Sequence[int] | None = None,
    world_size: int = 1,
    fmt: str = "json",
) -> dict[str, Callable[[], bytes]]:
    """Each epoch file's name and a function making its bytes (`ranks` None: every rank)."""
    if fmt not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    plan = load_plan(manifest)
    ranks = range(world_size) if ranks is None else ranks
    for r in ranks:
        check_rank(r, world_size)
    if any(e < 0 for e in epochs):
        raise UsageError("epochs must be >= 0")
    count = len(epochs) * len(ranks)
    if count > MAX_EPOCH_FILES:
        raise UsageError(
            f"{len(epochs):,} epochs x {len(ranks):,} ranks would be {count:,} files; at most "
            f"{MAX_EPOCH_FILES:,} are written at once (choose fewer epochs, or one rank with --rank)"
        )
    whole: dict[int, np.ndarray] = {}  # the last epoch made: every rank's share is cut from it

    def maker(e: int, r: int) -> Callable[[], bytes]:
        def make() -> bytes:
            if e not in whole:
                whole.clear()
                whole[e] = plan.full_epoch(e)
            return _file_bytes(shard(whole[e], r, world_size), plan.batched, e, r, world_size, fmt)

        return make

    return {epoch_file_name(e, r, world_size, fmt): maker(e, r) for e in epochs for r in ranks}


def write_epochs(
    manifest: str | os.PathLike[str] | Mapping[str, Any],
    out: str | os.PathLike[str],
    epochs: Sequence[int] | range,
    ranks: Sequence[int] | None = None,
    world_size: int = 1,
    fmt: str = "json",
    force: bool = False,
    published: list[Path] | None = None,
) -> list[str]:
    """Write the chosen epochs (and ranks) of a manifest into the folder `out`, atomically
    (`published` gets `out` appended once it is in place).

    Returns:
        The names of the files written.
    """
    if not isinstance(manifest, Mapping):
        check_outside_inputs(out, [manifest])
    files = epoch_files(manifest, epochs, ranks, world_size, fmt)
    write_folder(files, out, force, published)
    return list(files)
