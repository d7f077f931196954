"""Compare evaluated models: a ranked table, AUC against size, ROC curves and traces.

Reads any number of folders written by `neurosurrogate evaluate` and writes report.md
(with the figures as PNG files beside it) and a self-contained report.html (figures
embedded, no external resources) into --out. Models are ranked by spike AUC, then by
soma RMSE. The published NeuronIO figures are drawn for context only: they were measured
on the published test set, not on ours. With --sweep, a section reads the ELM-network
budget sweep written by `neurosurrogate sweep`: the optimum per budget, the frontier's
power law and whether the optimum moves towards more and more complex neurons.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import UserError
from pipeline.runtime.files import atomic_path

if TYPE_CHECKING:
    from pipeline.sweep.analysis import Analysis

METRICS_NAME = "metrics.json"
ROC_NAME = "roc.csv"
PREDICTIONS_NAME = "predictions.h5"
FIGURES = {"auc_vs_params": "auc_vs_params.png", "roc": "roc.png", "traces": "traces.png"}
TRACE_WINDOW_MS = 2000.0  # a whole 6 s simulation is too dense to read at report width

# metrics.json key -> what it must hold; "number?" may also be null (shown as n/a).
REQUIRED_METRICS = {
    "label": "text",
    "model": "text",
    "num_params": "count",
    "spike_auc": "number?",
    "tpr_at_fpr_0.0025": "number?",
    "soma_rmse_mv": "number?",
    "soma_explained_variance_pct": "number?",
    "speedup_vs_neuron": "number?",
}
PREDICTION_DATASETS = ("sim_id", "spike_prob", "soma_mv", "true_spikes", "true_soma_mv")

COLUMNS = ("rank", "model", "parameters", "AUC", "TPR at 0.25 % FPR", "RMSE (mV, rescaled)",
           "explained variance (%)", "speed-up over NEURON")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--evals", type=Path, nargs="+", required=True, metavar="DIR",
                        help="evaluation folders written by `neurosurrogate evaluate`")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder; receives report.md, report.html and the figures")
    parser.add_argument("--sweep", type=Path, default=None, metavar="DIR",
                        help="a folder written by `neurosurrogate sweep`, analysed in its own "
                             "section")


# ---------------------------------------------------------------- reading evaluations


@dataclass(frozen=True)
class Evaluation:
    """What the report needs of one evaluation folder; traces are read only when drawn."""

    folder: Path
    metrics: dict[str, Any]
    fpr: np.ndarray
    tpr: np.ndarray
    sim_ids: np.ndarray
    spike_counts: np.ndarray  # true output spikes per simulation, aligned with sim_ids
    start_ms: float
    dt_ms: float
    num_steps: int

    @property
    def label(self) -> str:
        return self.metrics["label"]

    def number(self, key: str) -> float:
        """A metric as a float; NaN when the evaluation could not compute it."""
        value = self.metrics.get(key)
        return math.nan if value is None else float(value)


def _check_metrics(path: Path, metrics: Any) -> dict[str, Any]:
    if not isinstance(metrics, dict):
        raise UserError(path, "is not a JSON object")
    missing = [key for key in REQUIRED_METRICS if key not in metrics]
    if missing:
        raise UserError(path, f"missing keys: {', '.join(missing)} (written by an older or "
                              f"another program? run `neurosurrogate evaluate` again)")
    for key, kind in REQUIRED_METRICS.items():
        value = metrics[key]
        if kind == "text":
            ok = isinstance(value, str) and value.strip() != ""
        elif kind == "count":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:
            ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        if not ok:
            want = {"text": "a non-empty string", "count": "a non-negative integer",
                    "number?": "a number or null"}[kind]
            raise UserError(path, f"{key!r} must be {want}, got {value!r}")
    return metrics


def read_metrics(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise UserError(folder, "no such evaluation folder")
    path = folder / METRICS_NAME
    if not path.is_file():
        raise UserError(path, "missing: not an evaluation folder (run `neurosurrogate "
                              "evaluate` first)")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(path, f"not valid JSON ({err})") from None
    return _check_metrics(path, metrics)


def read_roc(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise UserError(path, "missing (run `neurosurrogate evaluate` again)")
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().strip().replace(" ", "")
    if header != "fpr,tpr":
        raise UserError(path, f"header must be 'fpr,tpr', got {header!r}")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise UserError(path, f"not a two-column table of numbers ({err})") from None
    if table.shape[1] != 2 or len(table) < 2:
        raise UserError(path, f"needs at least two rows of fpr,tpr; got shape {table.shape}")
    fpr, tpr = table[:, 0], table[:, 1]
    if not (np.isfinite(table).all() and ((table >= 0) & (table <= 1)).all()
            and (np.diff(fpr) >= 0).all()):
        raise UserError(path, "rates must lie in [0, 1] with fpr in increasing order")
    return fpr, tpr


def read_prediction_index(path: Path) -> tuple[np.ndarray, np.ndarray, float, float, int]:
    """Simulation ids, true spike counts and time grid of predictions.h5, checked, without
    the traces."""
    import h5py

    if not path.is_file():
        raise UserError(path, "missing (run `neurosurrogate evaluate` again)")
    try:
        with h5py.File(path, "r") as h5:
            missing = [name for name in PREDICTION_DATASETS if name not in h5]
            if missing:
                raise UserError(path, f"missing datasets: {', '.join(missing)}")
            sim_ids = np.asarray(h5["sim_id"][()], dtype=np.int64)
            shapes = {name: h5[name].shape for name in PREDICTION_DATASETS[1:]}
            try:
                start_ms, dt_ms = float(h5.attrs["start_ms"]), float(h5.attrs["dt_ms"])
            except KeyError as err:
                raise UserError(path, f"missing attribute {err}") from None
    except OSError as err:
        raise UserError(path, f"not a readable HDF5 file ({err})") from None
    if sim_ids.ndim != 1 or len(set(shapes.values())) != 1:
        raise UserError(path, f"datasets disagree in shape: sim_id {sim_ids.shape}, "
                              + ", ".join(f"{k} {v}" for k, v in shapes.items()))
    (shape,) = set(shapes.values())
    if len(shape) != 2 or shape[0] != len(sim_ids):
        raise UserError(path, f"expected [{len(sim_ids)}, T] traces, got {shape}")
    if not dt_ms > 0:
        raise UserError(path, f"dt_ms must be positive, got {dt_ms}")
    with h5py.File(path, "r") as h5:
        counts = np.count_nonzero(h5["true_spikes"][()], axis=1)
    return sim_ids, counts, start_ms, dt_ms, shape[1]


def load_evaluation(folder: Path) -> Evaluation:
    metrics = read_metrics(folder)
    fpr, tpr = read_roc(folder / ROC_NAME)
    sim_ids, counts, start_ms, dt_ms, steps = read_prediction_index(folder / PREDICTIONS_NAME)
    return Evaluation(folder, metrics, fpr, tpr, sim_ids, counts, start_ms, dt_ms, steps)


def load_evaluations(folders: Sequence[Path]) -> list[Evaluation]:
    """Every folder checked before anything is written, so bad input leaves --out alone."""
    if not folders:
        raise UserError("--evals", "give at least one evaluation folder")
    evals = [load_evaluation(Path(f)) for f in folders]
    seen: dict[str, Path] = {}
    for ev in evals:
        if ev.label in seen and seen[ev.label].resolve() == ev.folder.resolve():
            raise UserError(ev.folder, "given twice in --evals")
        if ev.label in seen:
            raise UserError(ev.folder / METRICS_NAME,
                            f"label {ev.label!r} is also the label of {seen[ev.label]}; "
                            f"labels must tell the models apart")
        seen[ev.label] = ev.folder
    return evals


def read_traces(ev: Evaluation, sim_id: int) -> dict[str, np.ndarray]:
    """One simulation's row of every dataset in predictions.h5."""
    import h5py

    (row,) = np.flatnonzero(ev.sim_ids == sim_id)[:1]
    with h5py.File(ev.folder / PREDICTIONS_NAME, "r") as h5:
        return {name: np.asarray(h5[name][row]) for name in PREDICTION_DATASETS[1:]}


# ---------------------------------------------------------------- the pure core


def rank(evals: Sequence[Evaluation]) -> list[Evaluation]:
    """Best first: highest AUC, then lowest RMSE; a missing figure ranks last."""

    def key(ev: Evaluation) -> tuple[bool, float, bool, float, str]:
        auc, rmse = ev.number("spike_auc"), ev.number("soma_rmse_mv")
        return (math.isnan(auc), -auc if not math.isnan(auc) else 0.0,
                math.isnan(rmse), rmse if not math.isnan(rmse) else 0.0, ev.label)

    return sorted(evals, key=key)


def _fmt(value: float, digits: int, suffix: str = "") -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}{suffix}"


def table_rows(ranked: Sequence[Evaluation]) -> list[tuple[str, ...]]:
    """The report's table as text cells, in COLUMNS order."""
    rows = []
    for i, ev in enumerate(ranked, start=1):
        speedup = ev.number("speedup_vs_neuron")
        rows.append((
            str(i), ev.label, f"{ev.metrics['num_params']:,}",
            _fmt(ev.number("spike_auc"), 4), _fmt(ev.number("tpr_at_fpr_0.0025"), 3),
            _fmt(ev.number("soma_rmse_mv"), 3),
            _fmt(ev.number("soma_explained_variance_pct"), 1),
            "n/a" if math.isnan(speedup) else f"{speedup:,.0f}x" if speedup >= 10
            else f"{speedup:.2f}x",
        ))
    return rows


def detail_rows(ranked: Sequence[Evaluation]) -> list[tuple[str, ...]]:
    """Per-evaluation context the main table leaves out (the raw RMSE, where it ran)."""
    rows = []
    for ev in ranked:
        m = ev.metrics
        rows.append((ev.label, str(m["model"]), str(m.get("num_sims", "n/a")),
                     _fmt(ev.number("tpr_at_fpr_0.01"), 3),
                     _fmt(ev.number("soma_rmse_mv_raw"), 3), _fmt(ev.number("soma_mae_mv"), 3),
                     str(m.get("device", "n/a")), str(ev.folder)))
    return rows


DETAIL_COLUMNS = ("model", "architecture", "simulations", "TPR at 1 % FPR",
                  "RMSE (mV, raw)", "MAE (mV, rescaled)", "device", "evaluation folder")


def shared_simulation(evals: Sequence[Evaluation]) -> tuple[int | None, str | None]:
    """The simulation every evaluation predicted with the most true spikes (the lowest id of
    a tie), or None with the reason there is none: a silent trace shows little."""
    common = set(evals[0].sim_ids.tolist())
    for ev in evals[1:]:
        common &= set(ev.sim_ids.tolist())
    if not common:
        return None, "The evaluations share no simulation, so no trace comparison is drawn."
    grids = {(ev.start_ms, ev.dt_ms, ev.num_steps) for ev in evals}
    if len(grids) > 1:
        return None, ("The evaluations cover their simulations on different time grids "
                      "(start, step or length), so no trace comparison is drawn.")
    counts = dict(zip(evals[0].sim_ids.tolist(), evals[0].spike_counts.tolist(), strict=True))
    return min(common, key=lambda sid: (-counts[sid], sid)), None


def trace_window(time_ms: np.ndarray, spikes: np.ndarray,
                 width_ms: float = TRACE_WINDOW_MS) -> slice:
    """The stretch of at most `width_ms` holding the most true spikes (the earliest such)."""
    steps = len(time_ms)
    if steps < 2:
        return slice(0, steps)
    width = min(steps, max(1, int(round(width_ms / (time_ms[1] - time_ms[0])))))
    counts = np.concatenate([[0], np.cumsum(spikes.astype(np.int64) != 0)])
    in_window = counts[width:] - counts[:-width]
    start = int(np.argmax(in_window))
    return slice(start, start + width)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n"
                   for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


@dataclass(frozen=True)
class ReportFigure:
    name: str  # a key of FIGURES, or sweep_frontier / sweep_plane_<budget>
    title: str
    caption: str

    @property
    def file(self) -> str:
        return FIGURES.get(self.name, f"{self.name}.png")


@dataclass(frozen=True)
class SweepSection:
    """The report's reading of an ELM-network sweep (sweep.md has every point)."""

    title: str  # sweep.md's, so both read the same
    before: list[str]  # paragraphs before the table
    table: tuple[tuple[str, ...], list[tuple[str, ...]]] | None
    after: list[str]  # paragraphs after it
    items: list[str]  # a bulleted list closing the text
    figures: list[ReportFigure]
    analysis: Analysis | None  # what the figures draw


SWEEP_COLUMNS = ("budget", "N", "k_e", "k_c", "parameters", "AUC", "RMSE (mV, rescaled)")


def sweep_section(rows: Sequence[dict[str, Any]], folder: Path) -> SweepSection:
    """Optimum per budget, the frontier's power law and the answer to whether the optimum
    moves towards more and more complex neurons."""
    from pipeline.sweep.analysis import analyse, answer, fit_sentence, trend_lines
    from pipeline.sweep.outputs import NO_BUDGETS, TITLE

    if not rows:
        return SweepSection(TITLE, [NO_BUDGETS], None, [], [], [], None)
    result = analyse(list(rows))
    scored = sum(math.isfinite(r["spike_auc"]) for r in rows)
    budgets = sorted({int(r["budget"]) for r in rows})
    intro = (f"elm_network, N units of complexity k_e reading k_c sources each, at "
             f"{len(budgets)} parameter budget(s) ({', '.join(f'{b:,}' for b in budgets)}): "
             f"{scored} of {len(rows)} points scored on the sweep's evaluation split "
             f"(every point: {folder / 'sweep.md'}). One training run per point, so AUC "
             f"differences of a few 1e-3 are noise.")
    table = (SWEEP_COLUMNS, [
        (f"{budget:,}", str(r["num_units"]), str(r["complexity"]), str(r["connectivity"]),
         f"{r['params']:,}", _fmt(r["spike_auc"], 4), _fmt(r["soma_rmse_mv"], 3))
        for budget, r in result.optima.items()])
    figures = [ReportFigure(
        "sweep_frontier", "Spike AUC against parameters, every sweep point",
        "Coloured by budget; black: the Pareto frontier (no point with as few or fewer "
        "parameters scores higher); red: its power law, a line on the log-log right panel.")]
    figures += [ReportFigure(
        f"sweep_plane_{budget}", f"The (N, k_e) plane at {budget:,} parameters",
        "Spike AUC of every point; k_c spends the rest of the budget; the best is ringed.")
        for budget in budgets]
    return SweepSection(TITLE, [intro, "The optimum of every budget (highest spike AUC):"],
                        table, [fit_sentence(result), answer(result.optima)],
                        trend_lines(result), figures, result)


def report_figures(trace_sim: int | None) -> list[ReportFigure]:
    figures = [
        ReportFigure("auc_vs_params", "Spike AUC against parameter count",
               "Our models (circles) against the published NeuronIO figures (triangles; "
               "Spieler et al. 2024, Beniaguev et al. 2021). The published points were "
               "measured on the published NeuronIO test set, not on ours: context, not a "
               "head-to-head comparison. The dotted line is Beniaguev's 'good enough' bar "
               "(AUC 0.991)."),
        ReportFigure("roc", "Spike ROC curves",
               "Every model's ROC over all 1 ms bins of the test simulations; the right "
               "panel shows low false-positive rates on a log axis, with 0.25 % marked."),
    ]
    if trace_sim is not None:
        figures.append(ReportFigure(
            "traces", f"Traces of simulation {trace_sim}",
            "Predicted soma voltage over NEURON's (top) and predicted spike probability "
            "with the true spikes dashed (bottom), on the stretch of the simulation with "
            "the most spikes."))
    return figures


INTRO = ("Models are ranked by spike AUC, then by soma RMSE. RMSE and explained variance "
         "are computed after z-scoring each prediction and rescaling it to the ground "
         "truth's mean and standard deviation, as in the published evaluations; the raw "
         "RMSE is listed under details. Speed-up is NEURON's simulation time over the "
         "surrogate's, per simulated second.")


def _markdown_figure(fig: ReportFigure, level: str) -> list[str]:
    return [f"{level} {fig.title}", "", f"![{fig.title}]({fig.file})", "", fig.caption, ""]


def render_markdown(ranked: Sequence[Evaluation], figures: Sequence[ReportFigure],
                    notes: Sequence[str], sweep: SweepSection | None = None) -> str:
    parts = ["# Surrogate comparison", "", INTRO, "",
             markdown_table(COLUMNS, table_rows(ranked)), ""]
    parts += [f"> {note}\n" for note in notes]
    for fig in figures:
        parts += _markdown_figure(fig, "##")
    if sweep is not None:
        parts += [f"## {sweep.title}", ""]
        for paragraph in sweep.before:
            parts += [paragraph, ""]
        if sweep.table is not None:
            parts += [markdown_table(*sweep.table), ""]
        for paragraph in sweep.after:
            parts += [paragraph, ""]
        if sweep.items:
            parts += [*(f"- {item}" for item in sweep.items), ""]
        for fig in sweep.figures:
            parts += _markdown_figure(fig, "###")
    parts += ["## Details", "", markdown_table(DETAIL_COLUMNS, detail_rows(ranked)), ""]
    return "\n".join(parts)


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; background: #fff; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #bbb; padding: 0.35em 0.7em; text-align: right; }
th { background: #eef1f5; } tbody tr:nth-child(even) { background: #f8f9fb; }
td:nth-child(2), th:nth-child(2) { text-align: left; }
td:nth-child(2) { font-weight: 600; }
table.details td { text-align: left; font-weight: normal; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.4em; }
.note { border-left: 4px solid #e0a800; background: #fff8e1; padding: 0.5em 1em; }
"""


def _html_figure(fig: ReportFigure, image: bytes, level: str) -> list[str]:
    data = base64.b64encode(image).decode("ascii")
    return [f"<{level}>{html.escape(fig.title)}</{level}>", "<figure>",
            f'<img alt="{html.escape(fig.title)}" src="data:image/png;base64,{data}">',
            f"<figcaption>{html.escape(fig.caption)}</figcaption>", "</figure>"]


def render_html(ranked: Sequence[Evaluation], figures: Sequence[ReportFigure],
                images: dict[str, bytes], notes: Sequence[str],
                sweep: SweepSection | None = None) -> str:
    """One file with everything inline (figures as data URIs), to mail or archive alone."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>Surrogate comparison</title>", f"<style>{CSS}</style>", "</head>",
             "<body>", "<h1>Surrogate comparison</h1>", f"<p>{html.escape(INTRO)}</p>",
             html_table(COLUMNS, table_rows(ranked))]
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in notes]
    for fig in figures:
        parts += _html_figure(fig, images[fig.name], "h2")
    if sweep is not None:
        parts.append(f"<h2>{html.escape(sweep.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in sweep.before]
        if sweep.table is not None:
            parts.append(html_table(*sweep.table))
        parts += [f"<p>{html.escape(p)}</p>" for p in sweep.after]
        if sweep.items:
            parts += ["<ul>", *(f"<li>{html.escape(item)}</li>" for item in sweep.items),
                      "</ul>"]
        for fig in sweep.figures:
            parts += _html_figure(fig, images[fig.name], "h3")
    details = html_table(DETAIL_COLUMNS, detail_rows(ranked)).replace(
        "<table>", '<table class="details">', 1)
    parts += ["<h2>Details</h2>", details, "</body>", "</html>", ""]
    return "\n".join(parts)


# ---------------------------------------------------------------- the stage


def draw_sweep_figures(rows: Sequence[dict[str, Any]], analysis: Analysis,
                       paths: dict[str, Path]) -> None:
    """The sweep's frontier and one (N, k_e) plane per budget, to paths[figure name]."""
    from pipeline.reporting import figures as plots

    rows = list(rows)
    plots.save_frontier(rows, analysis, paths["sweep_frontier"])
    for budget in sorted({int(r["budget"]) for r in rows}):
        plots.save_plane([r for r in rows if r["budget"] == budget], budget,
                         paths[f"sweep_plane_{budget}"])


def draw_figures(ranked: Sequence[Evaluation], trace_sim: int | None,
                 paths: dict[str, Path]) -> None:
    """Draw each figure of FIGURES to paths[its key] (traces only with a shared simulation)."""
    from pipeline.reporting import figures as plots
    from pipeline.reporting.published import PUBLISHED_NEURONIO

    plots.save_auc_vs_params(
        {ev.label: (int(ev.metrics["num_params"]), ev.number("spike_auc"))
         for ev in ranked if not math.isnan(ev.number("spike_auc"))},
        PUBLISHED_NEURONIO, paths["auc_vs_params"])
    plots.save_roc({ev.label: (ev.fpr, ev.tpr, ev.number("spike_auc")) for ev in ranked},
                   paths["roc"])
    if trace_sim is None:
        return
    first = ranked[0]
    truth = read_traces(first, trace_sim)
    time_ms = first.start_ms + first.dt_ms * np.arange(first.num_steps)
    window = trace_window(time_ms, truth["true_spikes"])
    predictions = {}
    for ev in ranked:
        rows = truth if ev is first else read_traces(ev, trace_sim)
        predictions[ev.label] = (rows["soma_mv"][window], rows["spike_prob"][window])
    plots.save_traces(time_ms[window], truth["true_soma_mv"][window],
                      truth["true_spikes"][window], predictions, paths["traces"],
                      title=f"simulation {trace_sim}: predictions against NEURON")


def build_report(folders: Sequence[Path], out: Path, sweep_dir: Path | None = None
                 ) -> tuple[list[Evaluation], Path, Path]:
    """Write the report; return the ranked evaluations and the paths of report.md and
    report.html. Nothing is written unless every input reads cleanly, and every file is
    written under a temporary name and renamed only once all are done, so a failing run
    leaves an earlier report whole."""
    from pipeline.sweep.outputs import read_points

    ranked = rank(load_evaluations(folders))
    sweep_rows = read_points(sweep_dir) if sweep_dir is not None else []
    sweep = sweep_section(sweep_rows, sweep_dir) if sweep_dir is not None else None
    trace_sim, why_not = shared_simulation(ranked)
    notes = [why_not] if why_not else []
    sims = {ev.metrics.get("num_sims") for ev in ranked}
    if len(sims) > 1:
        notes.append("The evaluations cover different numbers of simulations "
                     f"({', '.join(str(s) for s in sorted(sims, key=str))}); compare their "
                     "figures with care.")
    if out.exists() and not out.is_dir():
        raise UserError(out, "exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    figures = report_figures(trace_sim)
    every_figure = [*figures, *(sweep.figures if sweep is not None else [])]
    md_path, html_path = out / "report.md", out / "report.html"
    with ExitStack() as stack:
        tmp = {name: stack.enter_context(atomic_path(out / name))
               for name in [*(f.file for f in every_figure), md_path.name, html_path.name]}
        draw_figures(ranked, trace_sim, {f.name: tmp[f.file] for f in figures})
        if sweep is not None and sweep.analysis is not None:
            draw_sweep_figures(sweep_rows, sweep.analysis,
                               {f.name: tmp[f.file] for f in sweep.figures})
        images = {f.name: tmp[f.file].read_bytes() for f in every_figure}
        tmp[md_path.name].write_text(render_markdown(ranked, figures, notes, sweep),
                                     encoding="utf-8")
        tmp[html_path.name].write_text(render_html(ranked, figures, images, notes, sweep),
                                       encoding="utf-8")
    # Figures of an earlier report that this one does not have would mislead.
    stale = [out / FIGURES["traces"]] if trace_sim is None else []
    stale += [p for p in out.glob("sweep_*.png") if p.name not in {f.file for f in every_figure}]
    for path in stale:
        path.unlink(missing_ok=True)
    return ranked, md_path, html_path


def run(args: argparse.Namespace) -> None:
    ranked, md_path, html_path = build_report(args.evals, args.out, args.sweep)
    print(markdown_table(COLUMNS, table_rows(ranked)))
    print(f"report written to {md_path} and {html_path}")

