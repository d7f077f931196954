"""Split a data set into train/valid/test data sets: which simulation goes where, and the
writing of the parts (the `shard` stage's work).

The hash split assigns by simulation id, the same on every machine: each id gets a rank from
a cryptographic hash of (seed, id), independent of platform and library versions; the ranked
ids are cut at the requested fractions (largest remainder, and every non-zero split gets at
least one simulation when there are enough). The folder split (`folders`) of an ingested
NeuronIO data set is the published one: each simulation goes to the split of the folder its
source file lay in (`source_folder` in the manifest). Each part is written in parallel on
Dask, as shards of `sims_per_shard` simulations ordered by id.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.datasets.contract import SimBatch, concat
from pipeline.datasets.dataset import Dataset
from pipeline.datasets.manifest import prepare_output, shard_name
from pipeline.datasets.shards import read_shard
from pipeline.datasets.writer import ShardTask, chunk, empty_dataset, write_shards
from pipeline.errors import UserError
from pipeline.filenames import MANIFEST
from pipeline.runtime.cluster import dask_client
from pipeline.runtime.files import sha256_file

SPLIT_NAMES = ("train", "valid", "test")
FOLDER_SPLIT = "folders"  # --split folders: the published NeuronIO folder split
PUBLISHED_FOLDERS = ("full_ergodic_train_batch_2..10 (train), full_ergodic_train_batch_1 "
                     "(valid), Data_test (test)")
_TRAIN_BATCH = re.compile(r"full_ergodic_train_batch_(\d+)(?!\d)")
_TEST_FOLDER = re.compile(r"Data_test(?![0-9A-Za-z])")


def is_folder_split(text: str) -> bool:
    return text.strip() == FOLDER_SPLIT


def parse_split(text: str) -> dict[str, float]:
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SPLIT_NAMES or name in fractions:
            raise UserError("--split", f"{text!r}: expected NAME=FRACTION pairs with NAME one "
                                       f"of {', '.join(SPLIT_NAMES)}, each once")
        try:
            fractions[name] = float(value)
        except ValueError:
            raise UserError("--split", f"{text!r}: {value!r} is not a number") from None
        if not 0 <= fractions[name] <= 1:
            raise UserError("--split", f"{text!r}: fraction {value} outside [0, 1]")
    if abs(sum(fractions.values()) - 1) > 1e-6:
        raise UserError("--split", f"{text!r}: fractions sum to {sum(fractions.values()):g}, "
                                   "not 1")
    return {name: fractions.get(name, 0.0) for name in SPLIT_NAMES}


def _rank_key(seed: int, sim_id: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{sim_id}".encode(), digest_size=8).digest()


def split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    exact = {k: f * n for k, f in fractions.items()}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: counts[k] - exact[k])[: n - sum(counts.values())]:
        counts[k] += 1
    for k in fractions:  # a requested split never ends up empty if it can be helped
        if fractions[k] > 0 and counts[k] == 0:
            donor = max(counts, key=lambda j: counts[j])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[k] += 1
    return counts


def assign_splits(sim_ids: np.ndarray, fractions: dict[str, float], seed: int
                  ) -> dict[str, np.ndarray]:
    """Sorted sim ids of each split."""
    ids = np.asarray(sim_ids, dtype=np.int64)
    ranked = sorted(ids.tolist(), key=lambda i: _rank_key(seed, i))
    counts = split_counts(len(ranked), fractions)
    out, start = {}, 0
    for name in fractions:
        out[name] = np.sort(np.array(ranked[start:start + counts[name]], dtype=np.int64))
        start += counts[name]
    return out


def published_split_of(folder: str) -> str | None:
    """The published split of a NeuronIO source folder (a relative path such as
    `neuronio/full_ergodic_train_batch_1`): decided by its innermost component whose name
    contains full_ergodic_train_batch_N (N = 1: valid, 2..10: train) or Data_test; None for
    any other folder (batch_10 is train, never batch_1)."""
    for name in reversed([p for p in folder.split("/") if p]):
        batch = _TRAIN_BATCH.search(name)
        if batch:
            number = int(batch.group(1))
            return "valid" if number == 1 else "train" if 2 <= number <= 10 else None
        if _TEST_FOLDER.search(name):
            return "test"
    return None


def source_folders(dataset: Dataset, where: Path) -> list[str]:
    """The NeuronIO source folder of each shard of an ingested data set, in shard order."""
    settings = dataset.manifest.settings
    if dataset.info.source != "neuronio" or settings.get("stage") != "ingest":
        made = ("simulated" if dataset.info.source == "simulated"
                else f"made by {settings.get('stage', 'an unknown stage')}")
        raise UserError(where, f"--split {FOLDER_SPLIT}: this data set was {made}; the folder "
                               "split needs one ingested from the NeuronIO folders "
                               f"({PUBLISHED_FOLDERS}); use fractions instead")
    # Data sets ingested before source_folder was recorded: the file paths of the settings
    # (relative to the ingest root, shard i = file i).
    by_shard = {shard_name(i): posixpath.dirname(f["path"])
                for i, f in enumerate(settings.get("files", []))}
    return [entry.extra.get("source_folder", by_shard.get(entry.file, ""))
            for entry in dataset.manifest.shards]


def assign_folders(dataset: Dataset, where: Path) -> dict[str, np.ndarray]:
    """Sorted sim ids of each split by the published folder split; a UserError naming the
    data set for a simulation of any other folder."""
    ids: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for entry, folder in zip(dataset.manifest.shards, source_folders(dataset, where),
                             strict=True):
        name = published_split_of(folder)
        if name is None:
            raise UserError(where, f"--split {FOLDER_SPLIT}: the {len(entry.sim_ids)} "
                                   f"simulation(s) of {entry.file} come from folder "
                                   f"{folder or '.'!r}, none of the published folders "
                                   f"{PUBLISHED_FOLDERS}")
        ids[name].extend(entry.sim_ids)
    return {name: np.sort(np.array(v, dtype=np.int64)) for name, v in ids.items()}


# ---------------------------------------------------------------------- writing the parts

def gather(sources: list[tuple[Path, list[int], list[int]]]) -> tuple[SimBatch, dict[str, Any]]:
    """Read the given rows (expected to hold the given ids) of the source shards, ordered
    by sim id."""
    parts = []
    for path, rows, ids in sources:
        part = read_shard(path, rows)
        if part.sim_id.tolist() != ids:
            raise UserError(path, "its simulations differ from those its manifest lists")
        parts.append(part)
    batch = concat(parts)
    return batch.select(np.argsort(batch.sim_id, kind="stable")), {}


def plan(dataset: Dataset, ids: np.ndarray, sims_per_shard: int) -> list[ShardTask]:
    """One task per output shard, naming the source rows it gathers."""
    where = dataset.locate()
    tasks = []
    for index, group in enumerate(chunk(ids, sims_per_shard)):
        by_shard: dict[int, list[tuple[int, int]]] = {}
        for sid in group.tolist():
            shard_index, row = where[sid]
            by_shard.setdefault(shard_index, []).append((row, sid))
        sources = []
        for k, pairs in sorted(by_shard.items()):
            pairs.sort()
            sources.append((dataset.shard_paths[k].resolve(), [r for r, _ in pairs],
                            [i for _, i in pairs]))
        tasks.append(ShardTask(shard_name(index), gather, (sources,), size=len(group)))
    return tasks


def write_splits(src: Path, out: Path, *, split: str, sims_per_shard: int, seed: int,
                 workers: int | None, scheduler: str | None) -> dict[str, int]:
    """Write OUT/train, OUT/valid and OUT/test from the data set SRC; return their sizes.

    `split` is NAME=FRACTION pairs (the hash split of `seed`) or `folders` (the published
    folder split of an ingested NeuronIO data set; the seed plays no part)."""
    folders = is_folder_split(split)
    fractions = None if folders else parse_split(split)
    if sims_per_shard < 1:
        raise UserError("--sims-per-shard", f"must be at least 1, got {sims_per_shard}")
    dataset = Dataset(Path(src))  # refuses colliding sim ids
    if folders:
        parts = assign_folders(dataset, Path(src))
        how: dict[str, Any] = {"split": FOLDER_SPLIT}
    else:
        parts = assign_splits(dataset.manifest.sim_ids, fractions, seed)
        how = {"split": fractions, "seed": seed}
    source_digest = sha256_file(Path(src) / MANIFEST)
    counts = {}
    with dask_client(workers, scheduler) as client:
        for name, ids in parts.items():
            settings = {"stage": "shard", "source_manifest_sha256": source_digest,
                        **how, "part": name, "sims_per_shard": sims_per_shard,
                        "neuron_wall_s_per_sim": dataset.manifest.neuron_wall_s_per_sim}
            folder = Path(out) / name
            manifest = prepare_output(folder, dataset.info, settings)
            if len(ids) == 0:
                empty_dataset(folder, manifest, dataset.info)
            else:
                write_shards(client, folder, manifest, plan(dataset, ids, sims_per_shard),
                             unit="sim")
            counts[name] = len(ids)
    print(f"{out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " simulations")
    return counts
