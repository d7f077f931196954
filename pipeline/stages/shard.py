"""Split a data set into train/valid/test data sets of equal-sized HDF5 shards.

The hash split (--split NAME=FRACTION,...) is a deterministic function of the simulation
ids and the seed, so it is the same on every machine. `--split folders` is the published
NeuronIO split of an ingested data set: train = full_ergodic_train_batch_2..10, valid =
full_ergodic_train_batch_1, test = Data_test, by the folder each simulation's file lay in;
a simulated data set or a file from any other folder is refused before anything is written.
Shards are written in parallel on Dask, ordered by simulation id, chunked and compressed
for reading random windows; inputs whose simulation ids collide are refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.runtime.cluster import add_cluster_arguments

DEFAULT_SPLIT = "train=0.8,valid=0.1,test=0.1"
DEFAULT_SIMS_PER_SHARD = 128


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", type=Path, required=True, metavar="DIR",
                        help="input data set (from ingest or simulate)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder; receives DIR/train, DIR/valid, DIR/test")
    parser.add_argument("--split", default=DEFAULT_SPLIT,
                        help=f"fractions per split, summing to 1 (default {DEFAULT_SPLIT}), "
                             "or 'folders': the published NeuronIO folder split of an "
                             "ingested data set (train = full_ergodic_train_batch_2..10, "
                             "valid = full_ergodic_train_batch_1, test = Data_test)")
    parser.add_argument("--sims-per-shard", type=int, default=DEFAULT_SIMS_PER_SHARD,
                        metavar="N", help=f"simulations per output shard "
                                          f"(default {DEFAULT_SIMS_PER_SHARD})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the hash split (default 0; unused by --split folders)")
    add_cluster_arguments(parser)


def run(args: argparse.Namespace) -> None:
    from pipeline.datasets.split import write_splits

    write_splits(args.src, args.out, split=args.split, sims_per_shard=args.sims_per_shard,
                 seed=args.seed, workers=args.workers, scheduler=args.scheduler)
