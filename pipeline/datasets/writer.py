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

from pipeline.datasets.contract import DatasetInfo, SimBatch
from pipeline.datasets.manifest import Manifest, ShardEntry, shard_is_intact, write_manifest
from pipeline.datasets.shards import write_shard
from pipeline.errors import UserError
from pipeline.runtime.cluster import submit, task_result
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
    by its nanny and Dask reruns the task elsewhere. A task that stops with a UserError
    leaves its shard out; the others still run, and the run then fails with that error.
    """
    folder = Path(folder)
    remove_stale_temporaries(folder)
    planned = {t.file for t in tasks}
    manifest.shards = [s for s in manifest.shards if s.file in planned]
    missing = [t for t in tasks if not shard_is_intact(folder, manifest.entry(t.file))]
    if len(missing) < len(tasks):
        print(f"{folder}: {len(tasks) - len(missing)} of {len(tasks)} shards already done")
    manifest.complete = False
    write_manifest(folder, manifest)
    failures = _run_tasks(client, folder, manifest, tasks, missing, unit,
                          _Recycler(client, recycle_after))
    if failures:
        raise _one_error(failures)
    check_unique_sim_ids(folder, manifest)
    manifest.complete = True
    write_manifest(folder, manifest)
    return manifest


def _run_tasks(client, folder: Path, manifest: Manifest, tasks: list[ShardTask],
               missing: list[ShardTask], unit: str, recycler: _Recycler) -> list[UserError]:
    """Run `missing` on the cluster, recording each shard as it lands; return the errors."""
    from dask.distributed import as_completed

    done = sum(t.size for t in tasks) - sum(t.size for t in missing)
    todo = iter(missing)
    failures: list[UserError] = []
    running: dict = {}
    queue = as_completed()

    def submit_next() -> None:
        task = next(todo, None)
        if task is not None:
            future = submit(client, _run, task, folder)
            running[future] = task
            queue.add(future)

    for _ in range(max(1, sum(client.nthreads().values()))):
        submit_next()
    # The bar is drawn on a terminal only, and wiped there when the run fails, so that a
    # failure ends with nothing but its one error line.
    with tqdm(total=sum(t.size for t in tasks), initial=done, unit=unit, desc=folder.name,
              file=sys.stderr, dynamic_ncols=True, smoothing=0.1, disable=None) as bar:
        for future in queue:
            task = running.pop(future)
            try:
                entry, info, worker = task_result(future)
            except UserError as err:
                failures.append(err)
            else:
                manifest.adopt_info(info, folder / entry.file)
                manifest.put(entry)
                write_manifest(folder, manifest)
                bar.update(task.size)
                recycler.finished(worker, task.size)
            submit_next()
        bar.leave = not failures
    return failures


def _one_error(failures: list[UserError]) -> UserError:
    """The first failure, to be shown as the run's one error line; different ones after it
    are listed above it (the same error from many tasks, e.g. a broken cell, counts once)."""
    distinct: dict[str, UserError] = {}
    for err in failures:
        distinct.setdefault(str(err), err)
    first, *others = distinct.values()
    if not others:
        return first
    for err in others:
        print(f"error: {err}", file=sys.stderr)
    return UserError(first.where, f"{first.problem} (and {len(others)} more, listed above)")


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
