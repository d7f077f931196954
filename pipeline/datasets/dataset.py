"""A complete data set folder as a whole: its manifest and its shards (`Dataset`), and a
small one written in this process (`write_dataset`, for tests, benchmarks and exports)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.datasets.contract import SimBatch
from pipeline.datasets.manifest import (
    Manifest,
    ShardEntry,
    prepare_output,
    read_manifest,
    shard_is_intact,
    shard_name,
    write_manifest,
)
from pipeline.datasets.shards import ShardReader, write_shard
from pipeline.errors import UserError
from pipeline.filenames import MANIFEST


class Dataset:
    """A complete data set folder: its manifest and lazy access to its shards."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.info = self.manifest.info
        ids = self.manifest.sim_ids
        if len(np.unique(ids)) != len(ids):
            raise UserError(self.folder / MANIFEST, "sim ids collide between shards")

    @property
    def shard_paths(self) -> list[Path]:
        return [self.folder / s.file for s in self.manifest.shards]

    @property
    def num_sims(self) -> int:
        return sum(len(s.sim_ids) for s in self.manifest.shards)

    def locate(self) -> dict[int, tuple[int, int]]:
        """sim id -> (shard index, row within the shard)."""
        return {sid: (k, row) for k, s in enumerate(self.manifest.shards)
                for row, sid in enumerate(s.sim_ids)}

    def verify(self) -> None:
        """Check every shard's checksum and its sim ids against the manifest."""
        for entry in self.manifest.shards:
            path = self.folder / entry.file
            if not shard_is_intact(self.folder, entry):
                raise UserError(path, "missing or damaged (sha256 differs from the manifest)")
            with ShardReader(path) as reader:
                if reader.sim_id.tolist() != entry.sim_ids or reader.info != self.info:
                    raise UserError(path, f"content does not match {MANIFEST}")


def write_dataset(folder: Path, batches: Sequence[SimBatch], settings: dict[str, Any]
                  ) -> Manifest:
    """Write a small data set in this process (tests, benchmarks, exports)."""
    manifest = prepare_output(Path(folder), batches[0].info if batches else None, settings)
    for index, batch in enumerate(batches):
        name = shard_name(index)
        digest = write_shard(Path(folder) / name, batch)
        manifest.adopt_info(batch.info, Path(folder) / name)
        manifest.put(ShardEntry(name, batch.sim_id.tolist(), digest))
    manifest.complete = True
    write_manifest(Path(folder), manifest)
    return manifest
