"""The Dask client every parallel stage uses: a local cluster of worker processes, or an
existing scheduler. One place, so that all stages scale out the same way.

Tasks that may raise a UserError go through `submit` and `task_result`: the error travels
back as the task's value and is raised again here, in the client. Dask therefore never
sees a failed task, so its workers log no "Compute Failed" with a traceback, and the
command line prints the error as its one line. A bug still fails the task and keeps its
traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class _Refused:
    """What a task returns instead of raising the UserError that stopped it."""

    error: UserError


def _returning_user_errors(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except UserError as err:
        return _Refused(err)


def submit(client, fn: Callable[..., Any], *args: Any) -> Any:
    """client.submit(fn, *args) (never cached: each call runs), for a task whose UserError
    `task_result` raises in the client."""
    return client.submit(_returning_user_errors, fn, *args, pure=False)


def task_result(future) -> Any:
    """The value of a task started by `submit`; raises the UserError it stopped with, and a
    bug's exception with its traceback (as Future.result does)."""
    value = future.result()
    if isinstance(value, _Refused):
        raise value.error
    return value
