"""The report's figures of the evaluations: which ones (with their captions), the simulation
and stretch the trace comparison shows, and drawing them (pipeline/reporting/figures.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.filenames import REPORT_AUC_FIGURE, REPORT_ROC_FIGURE, REPORT_TRACES_FIGURE
from pipeline.reporting.evaluations import Evaluation, read_traces
from pipeline.reporting.published import GOOD_ENOUGH_AUC, PUBLISHED_NEURONIO
from pipeline.reporting.render import ReportFigure
from pipeline.reporting.tables import QUOTED_FPR, percent

TRACE_WINDOW_MS = 2000.0  # a whole 6 s simulation is too dense to read at report width


def report_figures(trace_sim: int | None) -> list[ReportFigure]:
    """The figures of the evaluations, the trace comparison only with a shared simulation."""
    figures = [
        ReportFigure(REPORT_AUC_FIGURE, "Spike AUC against parameter count",
                     "Our models (circles, with their 95 % bootstrap intervals over test "
                     "simulations) against the published NeuronIO figures (triangles; "
                     "Spieler et al. 2024, scored by the elm evaluator, Beniaguev et al. 2021 "
                     "by the beniaguev one). The published points were "
                     "measured on the published NeuronIO test set, not on ours: context, not a "
                     "head-to-head comparison. The dotted line is Beniaguev's 'good enough' "
                     f"bar (AUC {GOOD_ENOUGH_AUC:g})."),
        ReportFigure(REPORT_ROC_FIGURE, "Spike ROC curves",
                     "Every model's ROC over all 1 ms bins of the test simulations; the right "
                     "panel shows low false-positive rates on a log axis, with "
                     f"{percent(QUOTED_FPR)} marked."),
    ]
    if trace_sim is not None:
        figures.append(ReportFigure(
            REPORT_TRACES_FIGURE, f"Traces of simulation {trace_sim}",
            "Predicted soma voltage over NEURON's (top) and predicted spike probability "
            "with the true spikes dashed (bottom), on the stretch of the simulation with "
            "the most spikes."))
    return figures


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


def _draw_traces(ranked: Sequence[Evaluation], trace_sim: int, path: Path) -> None:
    from pipeline.reporting import figures as plots

    first = ranked[0]
    truth = read_traces(first, trace_sim)
    time_ms = first.start_ms + first.dt_ms * np.arange(first.num_steps)
    window = trace_window(time_ms, truth["true_spikes"])
    predictions = {}
    for ev in ranked:
        rows = truth if ev is first else read_traces(ev, trace_sim)
        predictions[ev.label] = (rows["soma_mv"][window], rows["spike_prob"][window])
    plots.save_traces(time_ms[window], truth["true_soma_mv"][window],
                      truth["true_spikes"][window], predictions, path,
                      title=f"simulation {trace_sim}: predictions against NEURON")


def draw_figures(ranked: Sequence[Evaluation], trace_sim: int | None,
                 paths: dict[str, Path]) -> None:
    """Draw each figure of `report_figures(trace_sim)` to paths[its file]."""
    from pipeline.reporting import figures as plots

    plots.save_auc_vs_params(
        {ev.label: (int(ev.metrics["num_params"]), ev.number("spike_auc"),
                    *ev.interval("spike_auc"))
         for ev in ranked if not math.isnan(ev.number("spike_auc"))},
        PUBLISHED_NEURONIO, paths[REPORT_AUC_FIGURE])
    plots.save_roc({ev.label: (ev.fpr, ev.tpr, ev.number("spike_auc")) for ev in ranked},
                   paths[REPORT_ROC_FIGURE])
    if trace_sim is not None:
        _draw_traces(ranked, trace_sim, paths[REPORT_TRACES_FIGURE])
