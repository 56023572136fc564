"""Sampling manifests (SPEC 6): dataset-level factors, per-batch ratios, epochs and ranks.

Everything here is a pure function of the manifest and (seed, epoch, source, slot or rank): draws come
from `numpy.random.Generator(PCG64(SeedSequence([seed, purpose, epoch, source])))`, never a global RNG.
The consumers of a plan (`ManifestSampler`, `write_epochs`, ...) live in `kpmerge.epochs` and can be
imported from here as well.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from .errors import KpmergeError, UsageError
from .folder import MANIFEST_VERSION
from .jsonio import read_bytes

Indices = npt.NDArray[np.int64]

_STRATA = 1
"""SeedSequence word: the stratified draws of one source (dataset-level factor)."""
_SHUFFLE = 2
"""SeedSequence word: the order of a dataset-level epoch."""
_PERMUTE = 3
"""SeedSequence word: the per-epoch permutations of one source's slots (batch plans), one per pass."""

INT64_MAX = 2**63 - 1
"""The largest seed, epoch and world size (they are written as 64-bit integers)."""
MAX_BATCH_SIZE = 1 << 20
"""The largest batch size (every batch is held, and written, whole)."""


def _rng(seed: int, purpose: int, epoch: int, source: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, purpose, epoch, source])))


def _permutation(seed: int, epoch: int, source: int, cycle: int, n: int) -> Indices:
    """Pass `cycle` through one source's n slots in `epoch` (a new order on every pass)."""
    ss = np.random.SeedSequence([seed, _PERMUTE, epoch, source, cycle])
    return np.random.Generator(np.random.PCG64(ss)).permutation(n)


def slot_counts(pool_sizes: Sequence[int], factors: Sequence[float]) -> list[int]:
    """Slots per source and epoch: `round(n * f)` with Python's rounding (as MMPose)."""
    return [round(n * f) for n, f in zip(pool_sizes, factors, strict=True)]


def stratified_slots(n: int, m: int, seed: int, epoch: int, source: int) -> Indices:
    """(m,) positions in a pool of n, ascending: `round(n * f)` draws for a dataset-level factor f.

    With m <= n, slot j draws uniformly among the integer positions of its stratum `[j*n/m, (j+1)*n/m)`,
    i.e. `ceil(j*n/m)` .. `ceil((j+1)*n/m) - 1`: no position twice, and with m = n/2 exactly one of each
    consecutive pair. With m > n, every position appears `m // n` times and the `m % n` remaining slots
    draw the same way among `m % n` strata of the pool, so every position appears floor(m/n) or
    ceil(m/n) times (m = 2n: exactly twice). Draw k is the k-th number of the stream of (seed, epoch,
    source).
    """
    if m == 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    copies, extra = divmod(m, n) if m > n else (0, m)
    every = np.repeat(np.arange(n, dtype=np.int64), copies)
    if not extra:
        return every
    k = np.arange(extra + 1, dtype=np.int64)
    bounds = -(-k * n // extra)  # ceil(k * n / extra): stratum k is bounds[k] .. bounds[k + 1] - 1
    u = _rng(seed, _STRATA, epoch, source).random(extra)
    drawn = bounds[:-1] + np.minimum(np.floor(u * np.diff(bounds)).astype(np.int64), np.diff(bounds) - 1)
    return np.sort(np.concatenate([every, drawn]), kind="stable") if copies else drawn


def batch_counts(batch_size: int, ratios: Sequence[float], names: Sequence[str] | None = None) -> list[int]:
    """Slots per source in every batch: each gets the floor of its exact share `B * r / sum(r)`, and the
    slots left over go one each to the sources with a fractional share, larger share first (ties: the
    earlier source). B = 8 with [1, 0.5] gives [6, 2]; B = 256 gives [171, 85]; B = 10 with [1, 1, 1]
    gives [4, 3, 3]. (Ranking the leftovers by remainder, Hamilton's method, would give [5, 3] for B = 8;
    the spec asks for [6, 2], as MMPose's MultiSourceSampler gives.) Every count is within one of its share.

    Raises:
        UsageError: for negative ratios, ratios that are all 0, or a positive ratio that gets no slot
            (the message names the smallest batch size that gives every positive ratio a slot).
    """
    counts = _apportion(batch_size, ratios)
    starved = [i for i, (r, c) in enumerate(zip(ratios, counts, strict=True)) if r > 0 and c == 0]
    if starved:
        label = names[starved[0]] if names else f"#{starved[0]}"
        raise UsageError(
            f"batch ratio {ratios[starved[0]]:g} of source {label} gets no slot in a batch of {batch_size}; "
            f"the smallest batch size that gives every source a slot is {_smallest_batch(ratios)}"
        )
    return counts


def _apportion(batch_size: int, ratios: Sequence[float]) -> list[int]:
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    if any(not math.isfinite(r) or r < 0 for r in ratios):
        raise UsageError(f"batch ratios must be finite and >= 0, got {list(ratios)}")
    exact = [_decimal(r) for r in ratios]
    total = sum(exact)
    if total == 0:
        raise UsageError("at least one batch ratio must be positive")
    shares = [batch_size * r / total for r in exact]
    counts = [math.floor(s) for s in shares]
    left = batch_size - sum(counts)
    order = sorted((i for i, s in enumerate(shares) if s != counts[i]), key=lambda i: (-shares[i], i))
    for i in order[:left]:
        counts[i] += 1
    return counts


def _decimal(ratio: float) -> Fraction:
    # The ratio as written (0.1 is one tenth), not its binary float: else a share such as
    # 459 * 1.5 / 8.1 = 85 lands just under 85 and loses its slot.
    return Fraction(repr(float(ratio)))


def _smallest_batch(ratios: Sequence[float]) -> int:
    exact = [_decimal(r) for r in ratios]
    smallest = min(r for r in exact if r > 0)
    bound = math.ceil(sum(exact) / smallest)  # every share is >= 1 from here on
    for b in range(1, bound if bound <= 100_000 else 0):
        if all(c > 0 for r, c in zip(ratios, _apportion(b, ratios), strict=True) if r > 0):
            return b
    return bound


def check_rank(rank: int, world_size: int) -> None:
    """UsageError for a world size below 1 or a rank outside [0, world_size)."""
    if world_size < 1:
        raise UsageError(f"world size must be at least 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise UsageError(f"rank must be in [0, {world_size}), got {rank}")


def shard(items: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank `rank`'s share of `items` (first axis), as PyTorch's DistributedSampler: pad by wrapping
    around to a multiple of `world_size`, then take every `world_size`-th item from `rank`.

    Raises:
        UsageError: for a world size below 1 or a rank outside [0, world_size).
    """
    check_rank(rank, world_size)
    n = len(items)
    if n == 0:
        return items[:0]
    # Position i of the padded sequence is item i % n; the rank takes positions rank, rank + w, ...
    length = -(-n // world_size)
    return items[(np.arange(length, dtype=np.int64) * world_size + rank) % n]


@dataclass(frozen=True)
class SamplingOptions:
    """How a merge or combine wants its data sampled; recorded in manifest.json.

    Attributes:
        seed: Seed of every draw (>= 0).
        batch_size: Per-rank batch size of a batch composition (required with `batch_ratios`).
        factors: Dataset-level factor per source name (missing: 1.0).
        batch_ratios: Per-batch ratio per source name; empty for no batch composition.
    """

    seed: int = 0
    batch_size: int | None = None
    factors: Mapping[str, float] = field(default_factory=dict)
    batch_ratios: Mapping[str, float] = field(default_factory=dict)

    def factor(self, name: str) -> float:
        return float(self.factors.get(name, 1.0))

    def batch_ratio(self, name: str) -> float | None:
        r = self.batch_ratios.get(name)
        return None if r is None else float(r)

    def check(self, names: Sequence[str], pool_sizes: Sequence[int] | None = None) -> None:
        """Check the options against the sources (and, when given, their pool sizes).

        Raises:
            UsageError: for a negative seed, factor or ratio, batch ratios for only some sources, a
                batch size without batch ratios or the reverse, a positive ratio that gets no slot,
                or a positive ratio on a source with no slots per epoch.
        """
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UsageError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.seed > INT64_MAX:
            raise UsageError(f"seed must be below 2**63, got {self.seed!r}")
        if self.batch_size is not None and not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise UsageError(f"batch size must be in [1, {MAX_BATCH_SIZE:,}], got {self.batch_size!r}")
        for name in [*self.factors, *self.batch_ratios]:
            if name not in names:
                raise UsageError(f"no source named {name!r} (sources: {', '.join(names)})")
        for name, f in self.factors.items():
            if not math.isfinite(f) or f < 0:
                raise UsageError(f"ratio of source {name} must be finite and >= 0, got {f}")
        for name, r in self.batch_ratios.items():
            if not math.isfinite(r) or r < 0:
                raise UsageError(f"batch ratio of source {name} must be finite and >= 0, got {r}")
        if self.batch_ratios:
            missing = [n for n in names if n not in self.batch_ratios]
            if missing:
                raise UsageError(
                    f"batch ratio missing for source {missing[0]}: give one for every source or none"
                )
            if self.batch_size is None:
                raise UsageError("batch ratios need a batch size (--batch-size)")
            ratios = [self.batch_ratios[n] for n in names]
            batch_counts(self.batch_size, ratios, names)
            if pool_sizes is not None:
                slots = slot_counts(pool_sizes, [self.factor(n) for n in names])
                _check_fed(names, ratios, slots)
        elif self.batch_size is not None:
            raise UsageError("a batch size goes with batch ratios (--batch-ratio)")


def _check_fed(names: Sequence[str], ratios: Sequence[float], slots: Sequence[int]) -> None:
    for name, r, m in zip(names, ratios, slots, strict=True):
        if r > 0 and m == 0:
            raise UsageError(
                f"source {name} has batch ratio {r:g} but no trainable instance to draw "
                "(its pool times its factor rounds to 0)"
            )


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr = arr.view()
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class SamplingPlan:
    """The sampling part of a manifest: per source its pool, factor and batch ratio; seed; batch size.

    Attributes:
        names: Source names.
        pools: Per source, (n,) positions in the annotations array that may be drawn.
        factors: Dataset-level factor per source.
        batch_ratios: Per-batch ratio per source, or None for a dataset-level plan.
        seed: Seed of every draw.
        batch_size: Per-rank batch size (batch plans only).
    """

    names: tuple[str, ...]
    pools: tuple[Indices, ...]
    factors: tuple[float, ...]
    batch_ratios: tuple[float, ...] | None = None
    seed: int = 0
    batch_size: int | None = None

    def __post_init__(self) -> None:
        k = len(self.names)
        if len(self.pools) != k or len(self.factors) != k or len(self.batch_ratios or self.names) != k:
            raise UsageError("pools, factors and batch ratios must have one entry per source")
        pools = tuple(_readonly(np.asarray(p, dtype=np.int64)) for p in self.pools)
        object.__setattr__(self, "pools", pools)
        opts = SamplingOptions(
            seed=self.seed,
            batch_size=self.batch_size,
            factors=dict(zip(self.names, self.factors, strict=True)),
            batch_ratios=dict(zip(self.names, self.batch_ratios, strict=True)) if self.batch_ratios else {},
        )
        opts.check(self.names, [len(p) for p in self.pools])

    @classmethod
    def from_manifest(cls, data: Any, file: str | os.PathLike[str] | None = None) -> SamplingPlan:
        """The plan recorded in a loaded manifest.json.

        Raises:
            KpmergeError: naming the JSON path of a missing or malformed key.
            UsageError: when the recorded options cannot work (see `SamplingOptions.check`).
        """
        return _plan_from_manifest(data, file)

    @property
    def batched(self) -> bool:
        """True when every epoch is a list of batches with a fixed composition."""
        return self.batch_ratios is not None

    @property
    def slots(self) -> list[int]:
        """Slots per source and epoch after the dataset-level factor."""
        return slot_counts([len(p) for p in self.pools], self.factors)

    @property
    def counts(self) -> list[int]:
        """Slots per source in every batch (batch plans only)."""
        if self.batch_ratios is None or self.batch_size is None:
            raise UsageError("this plan has no batch composition")
        return batch_counts(self.batch_size, self.batch_ratios, self.names)

    @property
    def epoch_size(self) -> int:
        """Items per epoch before sharding: indices, or batches for a batch plan.

        A batch plan has ceil(S / B) batches, S being the slots of the sources with a positive ratio.
        """
        if self.batch_ratios is None:
            return sum(self.slots)
        fed = sum(m for m, r in zip(self.slots, self.batch_ratios, strict=True) if r > 0)
        return -(-fed // (self.batch_size or 1))

    def length(self, world_size: int = 1) -> int:
        """Items each rank gets per epoch (equal for all ranks)."""
        return -(-self.epoch_size // world_size)

    def source_slots(self, epoch: int, source: int) -> Indices:
        """(m,) annotation positions one source contributes to `epoch` (stratified, in pool order)."""
        pool = self.pools[source]
        m = self.slots[source]
        return pool[stratified_slots(len(pool), m, self.seed, epoch, source)]

    def full_epoch(self, epoch: int) -> np.ndarray:
        """The whole epoch before sharding: (L,) indices, or (L, B) batches for a batch plan.

        A dataset-level epoch is every source's slots, shuffled together. A batch plan's batch holds each
        source's count as a block, in source order; each source walks through permutations of its slots,
        a new one each time it runs out.
        """
        if epoch < 0:
            raise UsageError(f"epoch must be >= 0, got {epoch}")
        k = len(self.names)
        if self.batch_ratios is None:
            parts = [self.source_slots(epoch, i) for i in range(k)]
            drawn = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            return drawn[_rng(self.seed, _SHUFFLE, epoch).permutation(len(drawn))]
        nb = self.epoch_size
        columns = []
        for i, c in enumerate(self.counts):
            if c == 0:
                continue
            slots = self.source_slots(epoch, i)
            cycles = -(-nb * c // len(slots))
            order = np.concatenate(
                [slots[_permutation(self.seed, epoch, i, k, len(slots))] for k in range(cycles)]
            )
            columns.append(order[: nb * c].reshape(nb, c))
        return np.concatenate(columns, axis=1) if columns else np.zeros((nb, 0), dtype=np.int64)

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
        """Rank `rank`'s share of `epoch`: (L,) indices or (L, B) batches, int64."""
        return shard(self.full_epoch(epoch), rank, world_size)


def _plan_from_manifest(data: Any, file: str | os.PathLike[str] | None) -> SamplingPlan:
    def fail(where: str, message: str) -> KpmergeError:
        return KpmergeError(message, file=file, json_path=where)

    def number(value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail(where, f"expected a number, got {value!r}")
        return float(value)

    if not isinstance(data, dict) or "kpmerge_manifest" not in data:
        raise fail("$", "expected a kpmerge manifest.json (an object with kpmerge_manifest)")
    version = data["kpmerge_manifest"]
    if type(version) is not int or version != MANIFEST_VERSION:
        raise fail(
            "$.kpmerge_manifest",
            f"expected manifest version {MANIFEST_VERSION} (the one this kpmerge reads), got {version!r}",
        )
    total = data.get("annotations")
    if isinstance(total, bool) or not isinstance(total, int):
        raise fail("$.annotations", f"expected the number of annotations, got {total!r}")
    sampling = data.get("sampling")
    if not isinstance(sampling, dict):
        raise fail("$.sampling", "expected an object with seed and batch_size (written by kpmerge >= 0.1)")
    seed, batch_size = sampling.get("seed"), sampling.get("batch_size")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise fail("$.sampling.seed", f"expected an integer >= 0, got {seed!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)):
        raise fail("$.sampling.batch_size", f"expected an integer or null, got {batch_size!r}")
    sources = data.get("sources")
    if not isinstance(sources, list) or not sources:
        raise fail("$.sources", "expected a list of sources")
    names, pools, factors, ratios = [], [], [], []
    for i, src in enumerate(sources):
        where = f"$.sources[{i}]"
        if not isinstance(src, dict):
            raise fail(where, "expected an object")
        name = src.get("name")
        if not isinstance(name, str):
            raise fail(f"{where}.name", f"expected a string, got {name!r}")
        pool = src.get("pool")
        if not isinstance(pool, list) or not all(type(p) is int for p in pool):
            raise fail(f"{where}.pool", "expected a list of annotation positions (integers)")
        arr = np.asarray(pool, dtype=np.int64)
        if len(arr) and (arr.min() < 0 or arr.max() >= total):
            raise fail(f"{where}.pool", f"positions must be in [0, {total})")
        names.append(name)
        pools.append(arr)
        factors.append(number(src.get("factor"), f"{where}.factor"))
        r = src.get("batch_ratio")
        ratios.append(None if r is None else number(r, f"{where}.batch_ratio"))
    given = [r is not None for r in ratios]
    if any(given) and not all(given):
        missing = given.index(False)
        raise fail(f"$.sources[{missing}].batch_ratio", "batch ratios must be given for every source or none")
    try:
        return SamplingPlan(
            names=tuple(names),
            pools=tuple(pools),
            factors=tuple(factors),
            batch_ratios=tuple(r for r in ratios if r is not None) if all(given) else None,
            seed=seed,
            batch_size=batch_size,
        )
    except UsageError as exc:
        raise UsageError(exc.message, file=file) from None


def load_plan(manifest: str | os.PathLike[str] | Mapping[str, Any]) -> SamplingPlan:
    """The SamplingPlan of a manifest.json path or of the loaded dict."""
    if not isinstance(manifest, str | os.PathLike):
        return SamplingPlan.from_manifest(dict(manifest) if isinstance(manifest, Mapping) else manifest)
    path = Path(manifest)
    try:
        data = orjson.loads(read_bytes(path))
    except orjson.JSONDecodeError as exc:
        raise KpmergeError(f"not valid JSON: {exc}", file=path) from None
    return SamplingPlan.from_manifest(data, file=path)


_EPOCHS = (
    "FORMATS",
    "MAX_EPOCH_FILES",
    "ManifestSampler",
    "epoch_bytes",
    "epoch_file_name",
    "epoch_files",
    "parse_epochs",
    "write_epochs",
)
"""Names that moved to `kpmerge.epochs`, still importable from here."""


def __getattr__(name: str) -> Any:
    # Lazily, as kpmerge.epochs imports this module.
    if name in _EPOCHS:
        from . import epochs

        return getattr(epochs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
