"""Write a data set's shards in parallel on Dask, resumably.

Each task produces one shard on a worker and writes it atomically; the client records it in
the manifest as soon as it lands, so an interrupted run keeps every finished shard and the
next run redoes only what is missing or damaged.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pipeline.datasets.contract import (
    DatasetInfo,
    Manifest,
    ShardEntry,
    SimBatch,
    shard_is_intact,
    write_manifest,
    write_shard,
)
from pipeline.errors import UserError
from pipeline.runtime.files import remove_stale_temporaries

# A producer returns the shard's simulations and extra manifest fields (may be empty).
Producer = Callable[..., tuple[SimBatch, dict[str, Any]]]


@dataclass(frozen=True)
class ShardTask:
    file: str  # shard file name inside the output folder
    produce: Producer  # a module-level function, so that Dask can ship it by reference
    args: tuple
    size: int = 1  # work units, for the progress bar (e.g. simulations)


def _run(task: ShardTask, folder: Path) -> tuple[ShardEntry, DatasetInfo, str | None]:
    batch, extra = task.produce(*task.args)
    digest = write_shard(folder / task.file, batch)
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = None
    return ShardEntry(task.file, batch.sim_id.tolist(), digest, extra), batch.info, worker


class _Recycler:
    """Restart a worker process (through its nanny) once it has done `after` units of
    work, between two of its tasks, so that slow leaks in long runs stay bounded."""

    def __init__(self, client, after: int | None):
        self.client, self.after, self.done = client, after, Counter()

    def finished(self, worker: str | None, units: int) -> None:
        if not self.after or worker is None:
            return
        self.done[worker] += units
        if self.done[worker] < self.after:
            return
        del self.done[worker]
        try:
            self.client.restart_workers([worker])
        except Exception as err:  # e.g. workers started without a nanny
            print(f"warning: cannot recycle worker {worker} ({err}); recycling disabled",
                  file=sys.stderr)
            self.after = None


def write_shards(client, folder: Path, manifest: Manifest, tasks: list[ShardTask],
                 unit: str = "shard", recycle_after: int | None = None) -> Manifest:
    """Run the tasks whose shard is missing or damaged; complete the manifest.

    At most one task per worker thread is in flight, so a worker that is recycled after
    `recycle_after` units is idle when it restarts. A worker that dies mid-task is replaced
    by its nanny and Dask reruns the task elsewhere.
    """
    from dask.distributed import as_completed

    folder = Path(folder)
    remove_stale_temporaries(folder)
    planned = {t.file for t in tasks}
    manifest.shards = [s for s in manifest.shards if s.file in planned]
    missing = [t for t in tasks if not shard_is_intact(folder, manifest.entry(t.file))]
    done = sum(t.size for t in tasks) - sum(t.size for t in missing)
    todo = iter(missing)
    if len(missing) < len(tasks):
        print(f"{folder}: {len(tasks) - len(missing)} of {len(tasks)} shards already done")
    manifest.complete = False
    write_manifest(folder, manifest)
    failures: list[UserError] = []
    running: dict = {}
    queue = as_completed()
    recycler = _Recycler(client, recycle_after)

    def submit_next() -> None:
        task = next(todo, None)
        if task is not None:
            future = client.submit(_run, task, folder, pure=False)
            running[future] = task
            queue.add(future)

    for _ in range(max(1, sum(client.nthreads().values()))):
        submit_next()
    with tqdm(total=sum(t.size for t in tasks), initial=done, unit=unit, desc=folder.name,
              file=sys.stderr, dynamic_ncols=True, smoothing=0.1) as bar:
        for future in queue:
            task = running.pop(future)
            err = future.exception()
            if isinstance(err, UserError):
                failures.append(err)
                bar.write(f"error: {err}", file=sys.stderr)
            elif err is not None:
                raise err
            else:
                entry, info, worker = future.result()
                manifest.adopt_info(info, folder / entry.file)
                manifest.put(entry)
                write_manifest(folder, manifest)
                bar.update(task.size)
                recycler.finished(worker, task.size)
            submit_next()
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
