"""Write a data set's shards in parallel on Dask, resumably.

Each task produces one shard on a worker and writes it atomically; the client records it in
the manifest as soon as it lands, so an interrupted run keeps every finished shard and the
next run redoes only what is missing or damaged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pipeline.atomic import remove_stale_temporaries
from pipeline.dataset import (
    DatasetInfo,
    Manifest,
    ShardEntry,
    SimBatch,
    shard_is_intact,
    write_manifest,
    write_shard,
)
from pipeline.errors import UserError

# A producer returns the shard's simulations and extra manifest fields (may be empty).
Producer = Callable[..., tuple[SimBatch, dict[str, Any]]]


@dataclass(frozen=True)
class ShardTask:
    file: str  # shard file name inside the output folder
    produce: Producer  # a module-level function, so that Dask can ship it by reference
    args: tuple
    size: int = 1  # work units, for the progress bar (e.g. simulations)


def _run(task: ShardTask, folder: Path) -> tuple[ShardEntry, DatasetInfo]:
    batch, extra = task.produce(*task.args)
    digest = write_shard(folder / task.file, batch)
    return ShardEntry(task.file, batch.sim_id.tolist(), digest, extra), batch.info


def write_shards(client, folder: Path, manifest: Manifest, tasks: list[ShardTask],
                 unit: str = "shard") -> Manifest:
    """Run the tasks whose shard is missing or damaged; complete the manifest."""
    from dask.distributed import as_completed

    folder = Path(folder)
    remove_stale_temporaries(folder)
    planned = {t.file for t in tasks}
    manifest.shards = [s for s in manifest.shards if s.file in planned]
    todo = [t for t in tasks if not shard_is_intact(folder, manifest.entry(t.file))]
    done = sum(t.size for t in tasks) - sum(t.size for t in todo)
    if done:
        print(f"{folder}: {len(tasks) - len(todo)} of {len(tasks)} shards already done")
    manifest.complete = False
    write_manifest(folder, manifest)
    failures: list[UserError] = []
    futures = {client.submit(_run, t, folder, pure=False): t for t in todo}
    with tqdm(total=sum(t.size for t in tasks), initial=done, unit=unit, desc=folder.name,
              file=sys.stderr, dynamic_ncols=True) as bar:
        for future in as_completed(futures):
            task = futures[future]
            err = future.exception()
            if isinstance(err, UserError):
                failures.append(err)
                bar.write(f"error: {err}", file=sys.stderr)
                continue
            if err is not None:
                raise err
            entry, info = future.result()
            manifest.adopt_info(info, folder / entry.file)
            manifest.put(entry)
            write_manifest(folder, manifest)
            bar.update(task.size)
    if failures:
        more = f" (and {len(failures) - 1} more, listed above)" if len(failures) > 1 else ""
        raise UserError(failures[0].where, failures[0].problem + more)
    check_unique_sim_ids(folder, manifest)
    manifest.complete = True
    write_manifest(folder, manifest)
    return manifest


def check_unique_sim_ids(folder: Path, manifest: Manifest) -> None:
    """Refuse a data set in which two shards share a simulation id, naming both files."""
    seen: dict[int, str] = {}
    for entry in manifest.shards:
        for sid in entry.sim_ids:
            if sid in seen:
                raise UserError(folder / entry.file,
                                f"simulation id {sid} is also in {seen[sid]}: ids must be unique")
            seen[sid] = entry.file


def empty_dataset(folder: Path, manifest: Manifest, info: DatasetInfo) -> Manifest:
    """A complete data set with no simulations (e.g. a split that received none)."""
    manifest.info, manifest.shards, manifest.complete = info, [], True
    write_manifest(Path(folder), manifest)
    return manifest


def chunk(values: np.ndarray, size: int) -> list[np.ndarray]:
    return [values[i:i + size] for i in range(0, len(values), size)]
