"""Source tags of a merged output: the `source` and `source_id` members written first in each record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from .jsonwrite import json_values


@dataclass(frozen=True, eq=False)
class SourceTags:
    """The `source` and `source_id` members a merged output writes first among a record's extra members.

    Attributes:
        names: The source names.
        index: (n,) each record's source, as a position in `names`.
        ids: (n,) each record's id in its source.
    """

    names: Sequence[str]
    index: np.ndarray
    ids: np.ndarray

    def columns(self, lo: int, hi: int) -> list[list[bytes] | bytes]:
        """Columns of records lo..hi for the COCO writer: `"source":<name>,"source_id":<id>`."""
        names = [b'"source":' + orjson.dumps(name) + b',"source_id":' for name in self.names]
        index = self.index[lo:hi]
        if len(index) and (index == index[0]).all():  # merged sources are contiguous: one per chunk
            return [names[int(index[0])], json_values(self.ids[lo:hi])]
        return [[names[i] for i in index.tolist()], json_values(self.ids[lo:hi])]
