"""The Dask client every parallel stage uses: a local cluster of worker processes, or an
existing scheduler. One place, so that all stages scale out the same way."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.errors import UserError


def add_cluster_arguments(parser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes of a local Dask cluster (default: one per core)")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="use the existing Dask cluster at ADDRESS (e.g. tcp://host:8786)")


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None,
                quiet: bool = False) -> Iterator:
    """A distributed Client; local clusters use one single-threaded process per worker
    because NEURON and h5py are not thread-safe and release no GIL worth sharing."""
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as err:
            raise UserError(scheduler, f"cannot reach the Dask scheduler ({err})") from None
        with client:
            yield client
        return
    n = workers if workers is not None else (os.cpu_count() or 1)
    if n < 1:
        raise UserError("--workers", f"must be at least 1, got {n}")
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        if not quiet:
            print(f"Dask: {n} local worker process(es); dashboard {client.dashboard_link}")
        yield client
