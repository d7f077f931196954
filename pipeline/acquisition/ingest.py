"""Convert published NeuronIO pickles into a data set, one shard per input file.

The files are read with the restricted unpickler of `pipeline.datasets.neuronio`, validated
and converted in parallel on Dask. Running the same request again converts only the
missing shards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipeline.datasets.contract import SimBatch
from pipeline.datasets.manifest import prepare_output, shard_name
from pipeline.datasets.neuronio import load_neuronio, neuronio_to_batch
from pipeline.datasets.writer import ShardTask, write_shards
from pipeline.errors import UserError
from pipeline.runtime.cluster import dask_client


def find_sources(src: Path) -> list[Path]:
    """SRC itself when it is a file, else every .p file below it, sorted."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise UserError(src, "no such file or folder")
    files = sorted(p for p in src.rglob("*.p") if p.is_file())
    if not files:
        raise UserError(src, "holds no NeuronIO .p files")
    return files


def source_folder(file: Path, root: Path) -> str:
    """The folder holding `file`, relative to the folder above the ingest root `root`: it
    starts with the root's own name, so the published folder of a file
    (full_ergodic_train_batch_N, Data_test) is recorded whether SRC is the folder of all
    batches, one batch folder or one file of it."""
    root = Path(os.path.abspath(root))
    return Path(os.path.abspath(file)).parent.relative_to(root.parent).as_posix()


def convert(src: Path, folder: str) -> tuple[SimBatch, dict[str, Any]]:
    """One file's shard (runs on a worker)."""
    return (neuronio_to_batch(load_neuronio(src), src),
            {"source_file": src.name, "source_folder": folder})


def ingest(src: Path, out: Path, workers: int | None = None,
           scheduler: str | None = None) -> None:
    """Make (or complete) the data set OUT from the NeuronIO file or folder SRC."""
    files = find_sources(Path(src))
    root = files[0].parent if Path(src).is_file() else Path(src)
    settings = {"stage": "ingest",
                "files": [{"path": f.relative_to(root).as_posix(), "bytes": f.stat().st_size}
                          for f in files]}
    manifest = prepare_output(out, None, settings)
    tasks = [ShardTask(shard_name(i), convert, (f.resolve(), source_folder(f, root)))
             for i, f in enumerate(files)]
    with dask_client(workers, scheduler) as client:
        manifest = write_shards(client, out, manifest, tasks, unit="file")
    print(f"{out}: {len(manifest.sim_ids)} simulations from {len(files)} file(s)")
