"""Runs the ELM-network budget sweep: one job per grid point, trained and scored in its own
folder, here one after another or on Dask workers, and the rows handed to
pipeline.sweep.outputs for the table, the analysis and the plots.

A job is plain data (it is pickled to a worker). Its folder OUT/points/P<budget>/<point>
holds model/ (the training run: `pipeline.training.run.train`, resumed from its last
checkpoint), eval/ (the score on the eval split: `pipeline.evaluation.run.evaluate`) and
log.txt (what both printed). A point whose evaluation is on disk is reused, so the same
command continues a sweep; a point that fails with a user error is recorded as failed and
the others go on, while any other exception is a bug and stops the sweep.

Torch-free at import, so that the stage can offer EVAL_SPLITS at `--help`: training,
evaluation and the outputs are imported where they run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.config.training import TrainSettings
from pipeline.errors import UserError
from pipeline.evaluation.settings import DEFAULT_BATCH_SIZE, Protocol
from pipeline.filenames import EVAL_METRICS, SWEEP_SETTINGS, TRAIN_METRICS
from pipeline.runtime.files import write_text_atomic
from pipeline.sweep.analysis import (
    DEFAULT_COMPLEXITIES,
    DEFAULT_MIN_CONNECTIVITY,
    DEFAULT_TOLERANCE,
    DEFAULT_UNITS,
    GridPoint,
    budget_grid,
)

MODEL = "elm_network"
GRID_KEYS = ("num_units", "complexity", "connectivity")  # set per point, never by --set
EVAL_SPLITS = ("test", "valid")
POINT_LOG = "log.txt"  # a point's training and evaluation output


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
    protocol: Protocol = Protocol()  # how the point is scored (params.yaml's evaluate)
    one_thread: bool = False  # one torch thread: a Dask worker per core

    @property
    def model_dir(self) -> Path:
        return Path(self.folder) / "model"

    @property
    def eval_dir(self) -> Path:
        return Path(self.folder) / "eval"


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


def is_finished(job: PointJob) -> bool:
    """Whether the point's training and evaluation are both on disk."""
    return (job.eval_dir / EVAL_METRICS).is_file() and (job.model_dir / TRAIN_METRICS).is_file()


def scored_row(job: PointJob, status: str) -> dict[str, Any]:
    """The row of a finished point, from its metrics on disk."""
    metrics_path = job.eval_dir / EVAL_METRICS
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    if metrics.get("num_params") != job.point.params:
        raise UserError(metrics_path, f"scores a network of {metrics.get('num_params')} "
                                      f"parameters, but the point has {job.point.params}")
    train_metrics = json.loads((job.model_dir / TRAIN_METRICS).read_text(encoding="utf-8"))
    return point_row(job.point, status, train_metrics, metrics)


def train_and_score(job: PointJob) -> None:
    """Train the point (resuming its run) unless trained, then score it."""
    from pipeline.evaluation.run import evaluate
    from pipeline.training.run import train

    if not (job.model_dir / TRAIN_METRICS).is_file():
        train(Path(job.data), MODEL, job.model_dir, TrainSettings(**job.train),
              job.model_settings, job.device, resume=True, show_progress=False)
    evaluate(Path(job.data) / job.eval_split, job.model_dir, job.eval_dir,
             protocol=job.protocol, batch_size=job.eval_batch_size, device=job.device,
             label=f"P{job.point.budget} {job.point.name}", num_traces=1)


def run_point(job: PointJob) -> dict[str, Any]:
    """Train and score one point. A user error (bad data, a diverging or impossible network)
    is recorded in the row, with its traceback in the point's log, so that one bad point does
    not stop a sweep; any other exception is a bug and propagates."""
    if job.one_thread:
        import torch

        torch.set_num_threads(1)
    Path(job.folder).mkdir(parents=True, exist_ok=True)
    with open(Path(job.folder) / POINT_LOG, "a", encoding="utf-8") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            train_and_score(job)
        except UserError as err:  # recorded, so that the other points go on
            traceback.print_exc()
            first = str(err).splitlines()[0] if str(err) else ""
            return point_row(job.point, f"failed: {type(err).__name__}: {first}")
    return scored_row(job, "trained")


def check_data(data: Path, eval_split: str) -> None:
    for part in sorted({"train", "valid", eval_split}):
        if not (data / part).is_dir():
            raise UserError(data / part, "missing: --data must be a shard root with train/, "
                                         "valid/ and test/ (made by `neurosurrogate shard`)")


def base_model_settings(data: Path, given: dict[str, Any]) -> dict[str, Any]:
    """The user's settings completed with what the data fixes (input counts; the branch of
    every segment when branch_bias asks for it), checked by the model's own config before
    any point starts."""
    from pipeline.training.run import model_settings_for_data
    from surrogates import make_config
    from surrogates.errors import ModelError

    clash = sorted(set(given) & set(GRID_KEYS))
    if clash:
        raise UserError("--set", f"{', '.join(clash)} are set by the grid, not by --set")
    full = model_settings_for_data(MODEL, given, data / "train")
    try:
        make_config(MODEL, **{**full, "num_units": 1, "complexity": 1, "connectivity": 1})
    except ModelError as err:
        raise ModelError(err.problem, where="--set") from None
    return full


def check_settings_file(out: Path, recorded: dict[str, Any]) -> None:
    """A sweep folder belongs to one set of data, model and training settings; more budgets
    or grid values may be added to it later."""
    path = out / SWEEP_SETTINGS
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

        from pipeline.runtime.cluster import dask_client, submit, task_result

        n = workers if workers is not None else min(len(jobs), os.cpu_count() or 1)
        with dask_client(n, scheduler) as client:
            futures = [submit(client, run_point, replace(j, one_thread=True)) for j in jobs]
            point_of = {future.key: job.point for future, job in zip(futures, jobs,
                                                                     strict=True)}
            for future in as_completed(futures):
                rows[point_of[future.key]] = task_result(future)
                bar.update(1)
    return rows


@dataclass(frozen=True)
class Grid:
    """Which (N, k_e) are tried and which of their points are kept."""

    units: tuple[int, ...] = DEFAULT_UNITS
    complexities: tuple[int, ...] = DEFAULT_COMPLEXITIES
    tolerance: float = DEFAULT_TOLERANCE
    min_connectivity: int = DEFAULT_MIN_CONNECTIVITY

    def __post_init__(self) -> None:
        if not 0 < self.tolerance < 1:
            raise UserError("--tolerance", f"must lie in (0, 1), got {self.tolerance}")
        if self.min_connectivity < 1:
            raise UserError("--min-connectivity", f"must be at least 1, got "
                                                  f"{self.min_connectivity}")

    def points(self, budgets: list[int], num_inputs: int, model_settings: dict[str, Any]
               ) -> list[GridPoint]:
        """Every point of every budget, in order; a budget no point spends is an error."""
        grid: list[GridPoint] = []
        for budget in budgets:
            points = budget_grid(budget, self.units, self.complexities, num_inputs,
                                 float(model_settings.get("recurrent_fraction", 0.25)),
                                 self.tolerance, self.min_connectivity,
                                 bool(model_settings.get("learn_tau_m", False)))
            if not points:
                raise UserError("--budgets", f"no (N, k_e) of the grid spends {budget:g} "
                                             f"parameters within {self.tolerance:.0%} on "
                                             f"{num_inputs} inputs; try other --units or "
                                             f"--complexities")
            grid += points
        return grid


def check_arguments(eval_split: str, eval_batch_size: int, workers: int | None) -> None:
    if eval_batch_size < 1:
        raise UserError("--eval-batch-size", f"must be at least 1, got {eval_batch_size}")
    if eval_split not in EVAL_SPLITS:
        raise UserError("--eval-split", f"must be one of {', '.join(EVAL_SPLITS)}")
    if workers is not None and workers < 0:
        raise UserError("--workers", f"must be at least 0, got {workers}")


def sweep(data: Path, budgets: list[int], out: Path, settings: TrainSettings,
          model_settings: dict[str, Any] | None = None,
          units: list[int] | None = None, complexities: list[int] | None = None,
          tolerance: float = DEFAULT_TOLERANCE,
          min_connectivity: int = DEFAULT_MIN_CONNECTIVITY,
          eval_split: str = "test", eval_batch_size: int = DEFAULT_BATCH_SIZE,
          device: str = "auto", workers: int | None = None,
          scheduler: str | None = None, protocol: Protocol | None = None
          ) -> list[dict[str, Any]]:
    """Train and score every point of every budget (skipping finished ones), write the
    table, the analysis and the plots; return the rows."""
    from pipeline.datasets.dataset import Dataset
    from pipeline.runtime.devices import pick_device
    from pipeline.sweep.outputs import NO_BUDGETS, write_outputs

    data, out = Path(data).resolve(), Path(out)
    grid = Grid(tuple(units or DEFAULT_UNITS), tuple(complexities or DEFAULT_COMPLEXITIES),
                tolerance, min_connectivity)
    check_arguments(eval_split, eval_batch_size, workers)
    check_data(data, eval_split)
    full_settings = base_model_settings(data, dict(model_settings or {}))
    torch_device = pick_device(device).type
    num_inputs = Dataset(data / "train").info.num_inputs
    protocol = protocol or Protocol()
    protocol.check(Dataset(data / eval_split).info.duration_ms, data / eval_split, "--eval-")
    points = grid.points(budgets, num_inputs, full_settings)
    # As for a resumed training run, the number of loader processes does not count.
    train_settings = {k: v for k, v in settings.to_dict().items() if k != "num_workers"}
    check_settings_file(out, {"data": str(data), "model_settings": full_settings,
                              "train": train_settings, "eval_split": eval_split,
                              "protocol": asdict(protocol)})
    jobs = [PointJob(point, str(data), str(out / "points" / f"P{point.budget}" / point.name),
                     {**full_settings, "num_units": point.num_units,
                      "complexity": point.complexity, "connectivity": point.connectivity},
                     settings.to_dict(), eval_split, eval_batch_size, torch_device, protocol)
            for point in points]
    rows = {job.point: scored_row(job, "reused") for job in jobs if is_finished(job)}
    todo = [job for job in jobs if job.point not in rows]
    if not budgets:
        print(f"{out}: {NO_BUDGETS}")
    print(f"{out}: {len(jobs)} points over {len(budgets)} budget(s), {len(rows)} already "
          f"finished, {len(todo)} to run on {torch_device}")
    started = time.perf_counter()
    rows.update(run_jobs(todo, parallel_points(torch_device, workers, scheduler), workers,
                         scheduler))
    ordered = [rows[point] for point in points]
    write_outputs(out, ordered, settings, eval_split, num_inputs)
    failed = [r for r in ordered if str(r["status"]).startswith("failed")]
    print(f"{out}: {len(ordered) - len(failed)} of {len(ordered)} points scored in "
          f"{time.perf_counter() - started:.0f} s; see sweep.md")
    if failed:
        raise UserError(out, f"{len(failed)} point(s) failed (status column of points.csv, "
                             f"traceback in each point's log.txt); run again to retry them")
    return ordered
