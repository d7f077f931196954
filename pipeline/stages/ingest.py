"""Convert published NeuronIO pickles into a data set (one shard per input file).

PATH is one `.p` file or a folder searched recursively. Files are read with a restricted
unpickler that refuses any global but numpy array reconstruction, validated, and converted
in parallel on Dask. Running the same command again converts only missing shards.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.runtime.cluster import add_cluster_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", type=Path, required=True, metavar="PATH",
                        help="a NeuronIO .p file or a folder searched recursively for them")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output data set folder")
    add_cluster_arguments(parser)


def run(args: argparse.Namespace) -> None:
    from pipeline.acquisition.ingest import ingest

    ingest(args.src, args.out, args.workers, args.scheduler)
