"""Split a data set into train/valid/test data sets of equal-sized HDF5 shards.

The split is a deterministic function of the simulation ids and the seed, so it is the
same on every machine. Shards are written in parallel on Dask, chunked and compressed
for reading random windows; inputs whose simulation ids collide are refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.datasets.contract import (
    MANIFEST_NAME,
    Dataset,
    SimBatch,
    concat,
    prepare_output,
    read_shard,
    shard_name,
)
from pipeline.datasets.split import DEFAULT_SPLIT, assign_splits, parse_split
from pipeline.datasets.writer import ShardTask, chunk, empty_dataset, write_shards
from pipeline.errors import UserError
from pipeline.runtime.cluster import add_cluster_arguments, dask_client
from pipeline.runtime.files import sha256_file

DEFAULT_SIMS_PER_SHARD = 128


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", type=Path, required=True, metavar="DIR",
                        help="input data set (from ingest or simulate)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder; receives DIR/train, DIR/valid, DIR/test")
    parser.add_argument("--split", default=DEFAULT_SPLIT,
                        help=f"fractions per split, summing to 1 (default {DEFAULT_SPLIT})")
    parser.add_argument("--sims-per-shard", type=int, default=DEFAULT_SIMS_PER_SHARD,
                        metavar="N", help=f"simulations per output shard "
                                          f"(default {DEFAULT_SIMS_PER_SHARD})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    add_cluster_arguments(parser)


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


def shard(src: Path, out: Path, split: str = DEFAULT_SPLIT,
          sims_per_shard: int = DEFAULT_SIMS_PER_SHARD, seed: int = 0,
          workers: int | None = None, scheduler: str | None = None) -> dict[str, int]:
    fractions = parse_split(split)
    if sims_per_shard < 1:
        raise UserError("--sims-per-shard", f"must be at least 1, got {sims_per_shard}")
    dataset = Dataset(Path(src))  # refuses colliding sim ids
    parts = assign_splits(dataset.manifest.sim_ids, fractions, seed)
    source_digest = sha256_file(Path(src) / MANIFEST_NAME)
    counts = {}
    with dask_client(workers, scheduler) as client:
        for name, ids in parts.items():
            settings = {"stage": "shard", "source_manifest_sha256": source_digest,
                        "split": fractions, "part": name, "seed": seed,
                        "sims_per_shard": sims_per_shard,
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


def run(args: argparse.Namespace) -> None:
    shard(args.src, args.out, args.split, args.sims_per_shard, args.seed, args.workers,
          args.scheduler)

