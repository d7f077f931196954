"""Convert published NeuronIO pickles into a data set (one shard per input file).

PATH is one `.p` file or a folder searched recursively. Files are read with a restricted
unpickler that refuses any global but numpy array reconstruction, validated, and converted
in parallel on Dask. Running the same command again converts only missing shards.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.datasets.contract import SimBatch, prepare_output, shard_name
from pipeline.datasets.neuronio import load_neuronio, neuronio_to_batch
from pipeline.datasets.writer import ShardTask, write_shards
from pipeline.errors import UserError
from pipeline.runtime.cluster import add_cluster_arguments, dask_client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", type=Path, required=True, metavar="PATH",
                        help="a NeuronIO .p file or a folder searched recursively for them")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output data set folder")
    add_cluster_arguments(parser)


def find_sources(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise UserError(src, "no such file or folder")
    files = sorted(p for p in src.rglob("*.p") if p.is_file())
    if not files:
        raise UserError(src, "holds no NeuronIO .p files")
    return files


def convert(src: Path) -> tuple[SimBatch, dict[str, Any]]:
    return neuronio_to_batch(load_neuronio(src), src), {"source_file": src.name}


def ingest(src: Path, out: Path, workers: int | None = None,
           scheduler: str | None = None) -> None:
    files = find_sources(Path(src))
    root = files[0].parent if Path(src).is_file() else Path(src)
    settings = {"stage": "ingest",
                "files": [{"path": f.relative_to(root).as_posix(), "bytes": f.stat().st_size}
                          for f in files]}
    manifest = prepare_output(out, None, settings)
    tasks = [ShardTask(shard_name(i), convert, (f.resolve(),)) for i, f in enumerate(files)]
    with dask_client(workers, scheduler) as client:
        manifest = write_shards(client, out, manifest, tasks, unit="file")
    print(f"{out}: {len(manifest.sim_ids)} simulations from {len(files)} file(s)")


def run(args: argparse.Namespace) -> None:
    ingest(args.src, args.out, args.workers, args.scheduler)

