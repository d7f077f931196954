"""Split parameter budgets between more and more complex ELM units: a sweep of elm_network.

For every budget P of --budgets and every (N, k_e) of --units x --complexities, the
connectivity k_c = round((P - 2) / N - c(k_e)) spends the rest of P (c: a unit's own
parameters, docs/elm-network.md); points whose exact count is off by more than --tolerance, or
whose k_c is below --min-connectivity or above what a unit can read, are left out. Each point
is trained with the train stage (DIR/train, selected on DIR/valid) and scored with the
evaluate stage on DIR/<--eval-split>, into OUT/points/P<budget>/<point>/{model,eval,log.txt}.

On the CPU the points run in parallel on Dask workers (--workers, --scheduler; --workers 0
runs them here, one after another); on a GPU (--device cuda, or auto with one visible) one
after another in this process, or --workers N at a time sharing the GPU (the small kernels of
an ELM network leave most of it idle). Finished points (eval/metrics.json) are not redone and an
interrupted point resumes from its last checkpoint, so the same command continues a sweep.
Writes OUT/points.csv (every point), OUT/sweep.md (tables, optimum per budget, the power-law
fit of the frontier), OUT/frontier.png and OUT/plane_<budget>.png.
"""



from __future__ import annotations

import contextlib
import json
import math
import os
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.runtime.files import write_text_atomic
from pipeline.sweep.analysis import (
    DEFAULT_COMPLEXITIES,
    DEFAULT_MIN_CONNECTIVITY,
    DEFAULT_TOLERANCE,
    DEFAULT_UNITS,
    GridPoint,
    budget_grid,
)
from pipeline.sweep.outputs import NO_BUDGETS, write_outputs
from pipeline.training.settings import TrainSettings

MODEL = "elm_network"


SETTINGS_NAME = "sweep.json"


GRID_KEYS = ("num_units", "complexity", "connectivity")


EVAL_SPLITS = ("test", "valid")


@dataclass(frozen=True)
class PointJob:
    """Everything a worker needs to train and score one point (plain data: it is pickled)."""

    point: GridPoint
    data: str
    folder: str
    model_settings: dict[str, Any]
    train: dict[str, Any]
    eval_split: str
    eval_batch_size: int
    device: str
    one_thread: bool = False  # one torch thread: a Dask worker per core


def point_row(point: GridPoint, status: str, train_metrics: dict[str, Any] | None = None,
              metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """One line of points.csv."""
    train_metrics, metrics = train_metrics or {}, metrics or {}
    row: dict[str, Any] = {"budget": point.budget, "num_units": point.num_units,
                           "complexity": point.complexity, "connectivity": point.connectivity,
                           "params": point.params}
    for key in ("spike_auc", "soma_rmse_mv", "soma_rmse_mv_raw"):
        row[key] = float(metrics.get(key, math.nan))
    for key in ("val_spike_auc", "val_soma_rmse_mv", "train_seconds"):
        row[key] = float(train_metrics.get(key, math.nan))
    row["status"] = status
    return row


def finished_row(job: PointJob, status: str) -> dict[str, Any] | None:
    """The row of a point whose evaluation is on disk, else None."""
    folder = Path(job.folder)
    metrics_path = folder / "eval" / "metrics.json"
    train_path = folder / "model" / "train_metrics.json"
    if not (metrics_path.is_file() and train_path.is_file()):
        return None
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    if metrics.get("num_params") != job.point.params:
        raise UserError(metrics_path, f"scores a network of {metrics.get('num_params')} "
                                      f"parameters, but the point has {job.point.params}")
    return point_row(job.point, status, json.loads(train_path.read_text(encoding="utf-8")),
                     metrics)


def run_point(job: PointJob) -> dict[str, Any]:
    """Train (resuming) and score one point; a failure is reported in the row, with its
    traceback in the point's log.txt, so that one bad point does not stop a sweep."""
    import torch

    from pipeline.evaluation.run import evaluate
    from pipeline.training.run import train

    if job.one_thread:
        torch.set_num_threads(1)
    folder = Path(job.folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "log.txt", "a", encoding="utf-8") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            if not (folder / "model" / "train_metrics.json").is_file():
                train(Path(job.data), MODEL, folder / "model", TrainSettings(**job.train),
                      job.model_settings, job.device, resume=True, show_progress=False)
            evaluate(Path(job.data) / job.eval_split, folder / "model", folder / "eval",
                     batch_size=job.eval_batch_size, device=job.device,
                     label=f"P{job.point.budget} {job.point.name}", num_traces=1)
        except Exception as err:  # recorded, so that the other points go on
            traceback.print_exc()
            first = str(err).splitlines()[0] if str(err) else ""
            return point_row(job.point, f"failed: {type(err).__name__}: {first}")
    row = finished_row(job, "trained")
    assert row is not None
    return row


def check_data(data: Path, eval_split: str) -> None:
    for part in sorted({"train", "valid", eval_split}):
        if not (data / part).is_dir():
            raise UserError(data / part, "missing: --data must be a shard root with train/, "
                                         "valid/ and test/ (made by `neurosurrogate shard`)")


def base_model_settings(data: Path, given: dict[str, Any]) -> dict[str, Any]:
    """The user's settings completed with what the data fixes (input counts; the branch of
    every segment when branch_bias asks for it)."""
    from pipeline.training.run import model_settings_for_data

    clash = sorted(set(given) & set(GRID_KEYS))
    if clash:
        raise UserError("--set", f"{', '.join(clash)} are set by the grid, not by --set")
    return model_settings_for_data(MODEL, given, data / "train")


def check_model_settings(settings: dict[str, Any]) -> None:
    """Fail on a bad --set before any point starts, with the model's own message."""
    from surrogates import make_config

    make_config(MODEL, **{**settings, "num_units": 1, "complexity": 1, "connectivity": 1})


def check_settings_file(out: Path, recorded: dict[str, Any]) -> None:
    """A sweep folder belongs to one set of data, model and training settings; more budgets
    or grid values may be added to it later."""
    path = out / SETTINGS_NAME
    if path.is_file():
        earlier = json.loads(path.read_text(encoding="utf-8"))
        if earlier != recorded:
            changed = sorted(k for k in set(earlier) | set(recorded)
                             if earlier.get(k) != recorded.get(k))
            raise UserError(out, f"holds a sweep with other {', '.join(changed)}; choose "
                                 f"another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(recorded, indent=1, sort_keys=True) + "\n")


def parallel_points(device: str, workers: int | None, scheduler: str | None) -> bool:
    """On the CPU in parallel unless --workers 0; on a GPU only when asked for."""
    if device == "cpu":
        return workers != 0
    return scheduler is not None or (workers is not None and workers > 1)


def run_jobs(jobs: list[PointJob], parallel: bool, workers: int | None,
             scheduler: str | None) -> dict[GridPoint, dict[str, Any]]:
    """The row of every job, run here in sequence or on Dask workers."""
    from tqdm import tqdm

    rows: dict[GridPoint, dict[str, Any]] = {}
    if not jobs:
        return rows
    with tqdm(total=len(jobs), desc="sweep", unit="point", dynamic_ncols=True) as bar:
        if not parallel:
            for job in jobs:
                rows[job.point] = run_point(job)
                bar.update(1)
            return rows
        from dask.distributed import as_completed

        from pipeline.runtime.cluster import dask_client

        n = workers if workers is not None else min(len(jobs), os.cpu_count() or 1)
        with dask_client(n, scheduler) as client:
            futures = client.map(run_point, [replace(j, one_thread=True) for j in jobs],
                                 pure=False)
            point_of = {future.key: job.point for future, job in zip(futures, jobs,
                                                                     strict=True)}
            for future in as_completed(futures):
                rows[point_of[future.key]] = future.result()
                bar.update(1)
    return rows


def sweep(data: Path, budgets: list[int], out: Path, settings: TrainSettings,
          model_settings: dict[str, Any] | None = None,
          units: list[int] | None = None, complexities: list[int] | None = None,
          tolerance: float = DEFAULT_TOLERANCE,
          min_connectivity: int = DEFAULT_MIN_CONNECTIVITY, eval_split: str = "test",
          eval_batch_size: int = 32, device: str = "auto", workers: int | None = None,
          scheduler: str | None = None) -> list[dict[str, Any]]:
    """Train and score every point of every budget (skipping finished ones), write the
    table, the analysis and the plots; return the rows."""
    from pipeline.datasets.contract import Dataset
    from pipeline.runtime.devices import pick_device

    data, out = Path(data).resolve(), Path(out)
    if not 0 < tolerance < 1:
        raise UserError("--tolerance", f"must lie in (0, 1), got {tolerance}")
    if min_connectivity < 1:
        raise UserError("--min-connectivity", f"must be at least 1, got {min_connectivity}")
    if eval_batch_size < 1:
        raise UserError("--eval-batch-size", f"must be at least 1, got {eval_batch_size}")
    if eval_split not in EVAL_SPLITS:
        raise UserError("--eval-split", f"must be one of {', '.join(EVAL_SPLITS)}")
    if workers is not None and workers < 0:
        raise UserError("--workers", f"must be at least 0, got {workers}")
    check_data(data, eval_split)
    full_settings = base_model_settings(data, dict(model_settings or {}))
    check_model_settings(full_settings)
    torch_device = pick_device(device).type
    num_inputs = Dataset(data / "train").info.num_inputs
    grid: list[GridPoint] = []
    for budget in budgets:
        points = budget_grid(budget, units or DEFAULT_UNITS, complexities or DEFAULT_COMPLEXITIES,
                             num_inputs, float(full_settings.get("recurrent_fraction", 0.25)),
                             tolerance, min_connectivity,
                             bool(full_settings.get("learn_tau_m", False)))
        if not points:
            raise UserError("--budgets", f"no (N, k_e) of the grid spends {budget:g} "
                                         f"parameters within {tolerance:.0%} on {num_inputs} "
                                         f"inputs; try other --units or --complexities")
        grid += points
    # As for a resumed training run, the number of loader processes does not count.
    train_settings = {k: v for k, v in settings.to_dict().items() if k != "num_workers"}
    check_settings_file(out, {"data": str(data), "model_settings": full_settings,
                              "train": train_settings, "eval_split": eval_split})
    jobs = [PointJob(point, str(data), str(out / "points" / f"P{point.budget}" / point.name),
                     {**full_settings, "num_units": point.num_units,
                      "complexity": point.complexity, "connectivity": point.connectivity},
                     settings.to_dict(), eval_split, eval_batch_size, torch_device)
            for point in grid]
    rows: dict[GridPoint, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        done = finished_row(job, "reused")
        if done is None:
            todo.append(job)
        else:
            rows[job.point] = done
    if not budgets:
        print(f"{out}: {NO_BUDGETS}")
    print(f"{out}: {len(jobs)} points over {len(budgets)} budget(s), {len(rows)} already "
          f"finished, {len(todo)} to run on {torch_device}")
    started = time.perf_counter()
    rows.update(run_jobs(todo, parallel_points(torch_device, workers, scheduler), workers,
                         scheduler))
    ordered = [rows[point] for point in grid]
    write_outputs(out, ordered, settings, eval_split, num_inputs)
    failed = [r for r in ordered if str(r["status"]).startswith("failed")]
    print(f"{out}: {len(ordered) - len(failed)} of {len(ordered)} points scored in "
          f"{time.perf_counter() - started:.0f} s; see sweep.md")
    if failed:
        raise UserError(out, f"{len(failed)} point(s) failed (status column of points.csv, "
                             f"traceback in each point's log.txt); run again to retry them")
    return ordered


