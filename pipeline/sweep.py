"""Split parameter budgets between more and more complex ELM units: a sweep of elm_network.

For every budget P of --budgets and every (N, k_e) of --units x --complexities, the
connectivity k_c = round((P - 2) / N - c(k_e)) spends the rest of P (c: a unit's own
parameters, docs/elm-network.md); points whose exact count is off by more than --tolerance, or
whose k_c is below --min-connectivity or above what a unit can read, are left out. Each point
is trained with the train stage (DIR/train, selected on DIR/valid) and scored with the
evaluate stage on DIR/<--eval-split>, into OUT/points/P<budget>/<point>/{model,eval,log.txt}.

On the CPU the points run in parallel on Dask workers (--workers, --scheduler; --workers 0
runs them here, one after another); on a GPU (--device cuda, or auto with one visible) one
after another in this process. Finished points (eval/metrics.json) are not redone and an
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

import numpy as np

from pipeline.atomic import write_text_atomic
from pipeline.cluster import add_cluster_arguments
from pipeline.errors import UserError
from pipeline.sweep_analysis import (
    DEFAULT_COMPLEXITIES,
    DEFAULT_MIN_CONNECTIVITY,
    DEFAULT_TOLERANCE,
    DEFAULT_UNITS,
    GridPoint,
    PowerLaw,
    answer,
    budget_grid,
    fit_power_law,
    markdown_table,
    optimum_per_budget,
    pareto_frontier,
    parse_budgets,
    parse_sizes,
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


def _sizes(text: str) -> list[int]:
    try:
        return parse_sizes(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="shard root with train/, valid/ and the --eval-split")
    parser.add_argument("--budgets", required=True, metavar="P,P,...",
                        help="parameter budgets, e.g. 1e3,1e4,1e5")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--units", type=_sizes, default=list(DEFAULT_UNITS), metavar="N,N,...",
                        help=f"numbers of units tried (default "
                             f"{','.join(map(str, DEFAULT_UNITS))})")
    parser.add_argument("--complexities", type=_sizes, default=list(DEFAULT_COMPLEXITIES),
                        metavar="K,K,...",
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
    parser.add_argument("--eval-split", choices=EVAL_SPLITS, default="test",
                        help="the split every point is scored on (default test)")
    parser.add_argument("--eval-batch-size", type=int, default=32, metavar="N")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto: the GPU when one is visible, points in sequence; "
                             "else the CPU, points in parallel")
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
    print(f"{out}: {len(jobs)} points over {len(budgets)} budget(s), {len(rows)} already "
          f"finished, {len(todo)} to run on {torch_device}")
    started = time.perf_counter()
    rows.update(run_jobs(todo, torch_device == "cpu" and workers != 0, workers, scheduler))
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

def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                         for k, v in row.items()})
    return buffer.getvalue()


@dataclass(frozen=True)
class Analysis:
    """What sweep.md reports beyond the table."""

    frontier: list[dict[str, Any]]
    fit: PowerLaw | None
    optima: dict[int, dict[str, Any]]
    units_trend: PowerLaw | None
    complexity_trend: PowerLaw | None


def _fit_or_none(x: list[float], y: list[float]) -> PowerLaw | None:
    try:
        return fit_power_law(x, y)
    except ValueError:
        return None


def analyse(rows: list[dict[str, Any]]) -> Analysis:
    """Pareto frontier of spike AUC over parameters, its power law (1 - AUC = c P^b), the
    optimum of every budget and how N and k_e of the optimum scale with the budget."""
    scored = [r for r in rows if math.isfinite(r["spike_auc"])]
    front = [scored[i] for i in pareto_frontier([r["params"] for r in scored],
                                                [r["spike_auc"] for r in scored])]
    usable = [r for r in front if r["spike_auc"] < 1]
    fit = _fit_or_none([r["params"] for r in usable], [1 - r["spike_auc"] for r in usable])
    optima = {b: dict(r) for b, r in optimum_per_budget(scored).items()}
    budgets = [float(b) for b in optima]
    return Analysis(front, fit, optima,
                    _fit_or_none(budgets, [float(r["num_units"]) for r in optima.values()]),
                    _fit_or_none(budgets, [float(r["complexity"]) for r in optima.values()]))


def sweep_markdown(rows: list[dict[str, Any]], result: Analysis, settings: TrainSettings,
                   eval_split: str, num_inputs: int) -> str:
    """sweep.md: every point, the optimum per budget, the frontier fit and the answer."""
    budgets = sorted({int(r["budget"]) for r in rows})
    optima = list(result.optima.values())
    lines = [
        "# ELM network: splitting a parameter budget",
        "",
        f"elm_network on {num_inputs} inputs; every point trained {settings.steps} steps "
        f"(batch {settings.batch_size}, {settings.window_ms} ms windows, lr {settings.lr:g}, "
        f"seed {settings.seed}) and scored on the {eval_split} split by the evaluate stage. "
        "Parameters: P(N, k_e, k_c) = N (k_c + 4 k_e^2 + 6 k_e + 2) + 2 "
        "(docs/elm-network.md). One training run per point: differences of a few 1e-3 in "
        "AUC are within run-to-run noise.",
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
    if result.fit is not None:
        lines.append(f"Power law fitted on them: 1 - AUC = {result.fit.prefactor:.3g} P^b with "
                     f"b = {result.fit.describe()}, R^2 = {result.fit.r_squared:.3f}.")
    else:
        lines.append("Too few Pareto-optimal points for a power-law fit.")
    lines += ["", "![AUC against parameters](frontier.png)", "",
              "## Does the optimum move towards more and more complex neurons?", "",
              answer(result.optima)]
    for label, trend in (("N", result.units_trend), ("k_e", result.complexity_trend)):
        if trend is not None:
            lines.append(f"- {label} of the optimum ~ P^a with a = {trend.describe(2)}")
    lines += ["", "The planes below show spike AUC over (N, k_e) at each budget; k_c spends "
              "the rest of it.", ""]
    lines += [f"![budget {b}](plane_{b}.png)" for b in budgets]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, rows: list[dict[str, Any]], settings: TrainSettings,
                  eval_split: str, num_inputs: int) -> None:
    result = analyse(rows)
    write_text_atomic(out / "points.csv", rows_to_csv(rows))
    save_frontier(rows, result, out / "frontier.png")
    for budget in sorted({int(r["budget"]) for r in rows}):
        save_plane([r for r in rows if r["budget"] == budget], budget,
                   out / f"plane_{budget}.png")
    write_text_atomic(out / "sweep.md",
                      sweep_markdown(rows, result, settings, eval_split, num_inputs))


def save_frontier(rows: list[dict[str, Any]], result: Analysis, path: Path) -> None:
    """Spike AUC against parameters, every point by budget, the Pareto frontier and its
    power law; right: the same as 1 - AUC on log-log axes, where the law is a line."""
    from pipeline.plots import _new_figure, _save

    fig = _new_figure(11.0, 4.6)
    linear, logged = fig.subplots(1, 2)
    scored = [r for r in rows if math.isfinite(r["spike_auc"])]
    for budget in sorted({r["budget"] for r in scored}):
        mine = [r for r in scored if r["budget"] == budget]
        for ax, f in ((linear, lambda a: a), (logged, lambda a: 1 - a)):
            ax.scatter([r["params"] for r in mine], [f(r["spike_auc"]) for r in mine],
                       s=30, alpha=0.8, label=f"budget {budget:,}")
    front_p = np.array([r["params"] for r in result.frontier], dtype=np.float64)
    front_a = np.array([r["spike_auc"] for r in result.frontier])
    for ax, values in ((linear, front_a), (logged, 1 - front_a)):
        ax.plot(front_p, values, color="black", linewidth=1.2, marker="o", mfc="none",
                label="Pareto frontier")
    if result.fit is not None and len(front_p):
        grid = np.geomspace(front_p.min(), front_p.max(), 50)
        label = f"fit: 1 - AUC ~ P^{result.fit.exponent:.3f}"
        linear.plot(grid, 1 - result.fit(grid), color="tab:red", linestyle="--", label=label)
        logged.plot(grid, result.fit(grid), color="tab:red", linestyle="--", label=label)
    for ax, ylabel in ((linear, "spike AUC"), (logged, "1 - spike AUC (log)")):
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters (log)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    logged.set_yscale("log")
    linear.legend(loc="lower right", fontsize=8)
    fig.suptitle("elm_network: spike AUC against parameters")
    _save(fig, path)


def save_plane(rows: list[dict[str, Any]], budget: int, path: Path) -> None:
    """Spike AUC over (N, k_e) at one budget, each point labelled with its AUC and k_c; the
    best one ringed."""
    from matplotlib.ticker import NullLocator

    from pipeline.plots import _new_figure, _save

    fig = _new_figure(6.4, 5.0)
    ax = fig.subplots()
    scored = [r for r in rows if math.isfinite(r["spike_auc"])]
    failed = [r for r in rows if not math.isfinite(r["spike_auc"])]
    if scored:
        aucs = [r["spike_auc"] for r in scored]
        dots = ax.scatter([r["num_units"] for r in scored], [r["complexity"] for r in scored],
                          c=aucs, cmap="viridis", s=260, edgecolors="0.3", zorder=2)
        fig.colorbar(dots, ax=ax, label="spike AUC")
        best = max(scored, key=lambda r: r["spike_auc"])
        ax.scatter([best["num_units"]], [best["complexity"]], s=520, facecolors="none",
                   edgecolors="tab:red", linewidths=2, zorder=3)
        for r in scored:
            ax.annotate(f"{r['spike_auc']:.3f}\nk_c={r['connectivity']}",
                        (r["num_units"], r["complexity"]), xytext=(0, 14),
                        textcoords="offset points", ha="center", fontsize=7)
    if failed:
        ax.scatter([r["num_units"] for r in failed], [r["complexity"] for r in failed],
                   marker="x", color="tab:red", s=60)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    for axis, key in ((ax.xaxis, "num_units"), (ax.yaxis, "complexity")):
        values = sorted({r[key] for r in rows})
        axis.set_ticks(values, [str(v) for v in values])
        axis.set_minor_locator(NullLocator())
    ax.margins(0.25)
    ax.set_xlabel("units N (log)")
    ax.set_ylabel("complexity k_e (log)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"budget {budget:,} parameters (ringed: the best; x: failed)")
    _save(fig, path)


# ----------------------------------------------------------------------------- the stage

def run(args: argparse.Namespace) -> None:
    from pipeline.train import parse_model_settings

    try:
        budgets = parse_budgets(args.budgets)
    except ValueError as err:
        raise UserError("--budgets", str(err)) from None
    try:
        settings = TrainSettings(**{name: getattr(args, name)
                                    for name in TrainSettings.names()})
    except ValueError as err:
        raise UserError("train settings", str(err)) from None
    sweep(args.data, budgets, args.out, settings, parse_model_settings(args.model_settings),
          args.units, args.complexities, args.tolerance, args.min_connectivity,
          args.eval_split, args.eval_batch_size, args.device, args.workers, args.scheduler)


if __name__ == "__main__":
    from pipeline.cli import stage_main

    raise SystemExit(stage_main("sweep"))
