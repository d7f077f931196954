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

import argparse
import contextlib
import csv
import io
import json
import math
import os
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.atomic import write_text_atomic
from pipeline.cluster import add_cluster_arguments
from pipeline.errors import UserError
from pipeline.sweep_analysis import (
    DEFAULT_COMPLEXITIES,
    DEFAULT_MIN_CONNECTIVITY,
    DEFAULT_TOLERANCE,
    DEFAULT_UNITS,
    Analysis,
    GridPoint,
    analyse,
    answer,
    budget_grid,
    fit_sentence,
    markdown_table,
    parse_budgets,
    parse_sizes,
    trend_lines,
)
from pipeline.train import add_settings_arguments
from pipeline.training import TrainSettings

MODEL = "elm_network"
SETTINGS_NAME = "sweep.json"
GRID_KEYS = ("num_units", "complexity", "connectivity")
COLUMNS = ("budget", "num_units", "complexity", "connectivity", "params", "spike_auc",
           "soma_rmse_mv", "soma_rmse_mv_raw", "val_spike_auc", "val_soma_rmse_mv",
           "train_seconds", "status")
EVAL_SPLITS = ("test", "valid")
LABELS = {"num_units": "N", "complexity": "k_e", "connectivity": "k_c"}
TITLE = "ELM network: splitting a parameter budget"
NO_BUDGETS = ("No budgets were given, so nothing was swept (the default of params.yaml; set "
              "sweep.budgets there, e.g. [1e3, 1e4, 1e5], to run it).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="shard root with train/, valid/ and the --eval-split")
    # Lists are taken comma-separated or as separate words: the second is how DVC unpacks a
    # YAML list from params.yaml (`${sweep}` in dvc.yaml).
    parser.add_argument("--budgets", nargs="*", default=[], metavar="P",
                        help="parameter budgets, e.g. 1e3,1e4,1e5; none: an empty sweep (the "
                             "outputs say so), as params.yaml's default")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--units", nargs="+", default=[str(n) for n in DEFAULT_UNITS],
                        metavar="N", help=f"numbers of units tried (default "
                                          f"{','.join(map(str, DEFAULT_UNITS))})")
    parser.add_argument("--complexities", nargs="+",
                        default=[str(k) for k in DEFAULT_COMPLEXITIES], metavar="K",
                        help=f"unit complexities k_e tried (default "
                             f"{','.join(map(str, DEFAULT_COMPLEXITIES))})")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, metavar="F",
                        help=f"largest relative miss of a budget (default {DEFAULT_TOLERANCE})")
    parser.add_argument("--min-connectivity", type=int, default=DEFAULT_MIN_CONNECTIVITY,
                        metavar="K", help=f"smallest k_c kept (default "
                                          f"{DEFAULT_MIN_CONNECTIVITY})")
    parser.add_argument("--set", dest="model_settings", action="extend", nargs="*",
                        default=[], metavar="KEY=VALUE",
                        help="other elm_network settings, e.g. recurrent_fraction=0.5 "
                             "branch_bias=0.5 update=v2")
    parser.add_argument("--eval-split", "--eval_split", choices=EVAL_SPLITS, default="test",
                        help="the split every point is scored on (default test)")
    parser.add_argument("--eval-batch-size", type=int, default=32, metavar="N")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto: the GPU when one is visible (points in sequence, or "
                             "--workers N at a time); else the CPU, points in parallel")
    add_cluster_arguments(parser)
    add_settings_arguments(parser)


# ----------------------------------------------------------------------------- one point

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

    from pipeline.evaluate import evaluate
    from pipeline.train import train

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


# ----------------------------------------------------------------------------- the sweep

def check_data(data: Path, eval_split: str) -> None:
    for part in sorted({"train", "valid", eval_split}):
        if not (data / part).is_dir():
            raise UserError(data / part, "missing: --data must be a shard root with train/, "
                                         "valid/ and test/ (made by `neurosurrogate shard`)")


def base_model_settings(data: Path, given: dict[str, Any]) -> dict[str, Any]:
    """The user's settings completed with what the data fixes (input counts; the branch of
    every segment when branch_bias asks for it)."""
    from pipeline.train import model_settings_for_data

    clash = sorted(set(given) & set(GRID_KEYS))
    if clash:
        raise UserError("--set", f"{', '.join(clash)} are set by the grid, not by --set")
    return model_settings_for_data(MODEL, given, data / "train")


def check_model_settings(settings: dict[str, Any]) -> None:
    """Fail on a bad --set before any point starts, with the model's own message."""
    from surrogates.base import make_config

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

        from pipeline.cluster import dask_client

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
    from pipeline.dataset import Dataset
    from pipeline.devices import pick_device

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


# ----------------------------------------------------------------------------- outputs

COUNT_COLUMNS = COLUMNS[:5]  # budget .. params
NUMBER_COLUMNS = COLUMNS[5:-1]  # the scores and seconds; empty where a point has none


def read_points(folder: Path) -> list[dict[str, Any]]:
    """The rows of a sweep folder's points.csv, typed as `point_row` makes them."""
    path = Path(folder) / "points.csv"
    if not path.is_file():
        raise UserError(path, "missing: not a sweep folder (run `neurosurrogate sweep`)")
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise UserError(path, f"header must be {','.join(COLUMNS)} (written by another "
                                  f"version? run the sweep again)")
        for line, raw in enumerate(reader, start=2):
            try:
                row: dict[str, Any] = {key: int(raw[key]) for key in COUNT_COLUMNS}
                row.update({key: float(raw[key]) if raw[key] else math.nan
                            for key in NUMBER_COLUMNS})
            except (TypeError, ValueError) as err:
                raise UserError(path, f"line {line}: {err}") from None
            row["status"] = raw["status"]
            rows.append(row)
    return rows


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                         for k, v in row.items()})
    return buffer.getvalue()


def sweep_markdown(rows: list[dict[str, Any]], result: Analysis, settings: TrainSettings,
                   eval_split: str, num_inputs: int) -> str:
    """sweep.md: every point, the optimum per budget, the frontier fit and the answer."""
    budgets = sorted({int(r["budget"]) for r in rows})
    optima = list(result.optima.values())
    lines = [
        f"# {TITLE}",
        "",
        f"elm_network on {num_inputs} inputs; every point trained {settings.steps} steps "
        f"(batch {settings.batch_size}, {settings.window_ms} ms windows, lr {settings.lr:g}, "
        f"seed {settings.seed}) and scored on the {eval_split} split by the evaluate stage. "
        "Parameters: P(N, k_e, k_c) = N (k_c + 4 k_e^2 + 6 k_e + 2) + 2 "
        "(docs/elm-network.md). One training run per point: differences of a few 1e-3 in "
        "AUC are within run-to-run noise. An AUC below 0.5 marks a point whose spike output "
        "was not learned in these steps (it stays near the base rate, leaning slightly "
        "against depolarisation).",
        "",
        "## Every point",
        "",
        markdown_table(rows, COLUMNS, LABELS),
        "",
        "## Optimum per budget (highest spike AUC)",
        "",
        markdown_table(optima, COLUMNS[:7], LABELS) if optima else "No point was scored.",
        "",
        "## Frontier",
        "",
    ]
    if result.frontier:
        lines += ["Pareto-optimal points (no point with as few or fewer parameters scores "
                  "higher), across budgets:", "",
                  markdown_table(result.frontier, COLUMNS[:7], LABELS), ""]
    lines += [fit_sentence(result), "", "![AUC against parameters](frontier.png)", "",
              "## Does the optimum move towards more and more complex neurons?", "",
              answer(result.optima), *(f"- {line}" for line in trend_lines(result))]
    lines += ["", "The planes below show spike AUC over (N, k_e) at each budget; k_c spends "
              "the rest of it.", ""]
    lines += [f"![budget {b}](plane_{b}.png)" for b in budgets]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, rows: list[dict[str, Any]], settings: TrainSettings,
                  eval_split: str, num_inputs: int) -> None:
    from pipeline.plots import save_frontier, save_plane

    write_text_atomic(out / "points.csv", rows_to_csv(rows))
    if not rows:
        write_text_atomic(out / "sweep.md", f"# {TITLE}\n\n{NO_BUDGETS}\n")
        return
    result = analyse(rows)
    save_frontier(rows, result, out / "frontier.png")
    for budget in sorted({int(r["budget"]) for r in rows}):
        save_plane([r for r in rows if r["budget"] == budget], budget,
                   out / f"plane_{budget}.png")
    write_text_atomic(out / "sweep.md",
                      sweep_markdown(rows, result, settings, eval_split, num_inputs))


# ----------------------------------------------------------------------------- the stage

def run(args: argparse.Namespace) -> None:
    from pipeline.train import parse_model_settings

    lists = {}
    for flag, words, parse in (("--budgets", args.budgets, parse_budgets),
                               ("--units", args.units, parse_sizes),
                               ("--complexities", args.complexities, parse_sizes)):
        try:
            lists[flag] = parse(",".join(words)) if words else []
        except ValueError as err:
            raise UserError(flag, str(err)) from None
    try:
        settings = TrainSettings(**{name: getattr(args, name)
                                    for name in TrainSettings.names()})
    except ValueError as err:
        raise UserError("train settings", str(err)) from None
    sweep(args.data, lists["--budgets"], args.out, settings,
          parse_model_settings(args.model_settings), lists["--units"],
          lists["--complexities"], args.tolerance, args.min_connectivity,
          args.eval_split, args.eval_batch_size, args.device, args.workers, args.scheduler)


if __name__ == "__main__":
    from pipeline.cli import stage_main

    raise SystemExit(stage_main("sweep"))
