"""The figures of the evaluate and report stages: ROC curves, trace comparisons and AUC
against parameter count; and the figure making every figure shares (the sweep's own are in
pipeline.sweep.figures).

Figures are drawn on matplotlib's Agg canvas without pyplot, so no global backend state
or display is needed and the functions are safe to call from any process. Every PNG is
written atomically: a crash mid-save never leaves half an image behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.protocol import FPR_POINTS
from pipeline.reporting.tables import percent
from pipeline.runtime.files import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from pipeline.reporting.published import PublishedResult

DPI = 110
MIN_LOG_FPR = 1e-5
MAX_CURVE_POINTS = 4000  # a ROC over millions of bins is thinned to this before drawing


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path) -> None:
    """Write the PNG under a temporary name, then rename it into place."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def thin_curve(fpr: np.ndarray, tpr: np.ndarray,
               max_points: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most about `max_points` points of a ROC curve, spread evenly on both a linear
    and a log FPR scale, so the picture is unchanged on either axis but cheap to draw."""
    fpr = np.asarray(fpr, dtype=np.float64)
    tpr = np.asarray(tpr, dtype=np.float64)
    if fpr.shape != tpr.shape or fpr.ndim != 1:
        raise ValueError(f"fpr and tpr must be 1-d and equally long, got {fpr.shape} and "
                         f"{tpr.shape}")
    if len(fpr) <= max_points:
        return fpr, tpr
    half = max_points // 2
    targets = np.concatenate([np.linspace(0.0, 1.0, half),
                              np.geomspace(MIN_LOG_FPR, 1.0, half)])
    # A ROC is sorted by FPR; for each target keep the last point at or below it (the
    # highest TPR reached there) and the first point above it, so steps stay steps.
    right = np.searchsorted(fpr, targets, side="right")
    keep = np.unique(np.concatenate([[0, len(fpr) - 1], np.clip(right - 1, 0, len(fpr) - 1),
                                     np.clip(right, 0, len(fpr) - 1)]))
    return fpr[keep], tpr[keep]


def _roc_axes(ax: Axes, log: bool) -> None:
    if log:
        ax.set_xscale("log")
        ax.set_xlim(MIN_LOG_FPR, 1.0)
        ax.axvline(FPR_POINTS[0], color="0.5", linestyle=":", linewidth=1)
        ax.text(FPR_POINTS[0], 0.02, f" {percent(FPR_POINTS[0])} FPR", color="0.4", fontsize=8,
                rotation=90, va="bottom", ha="right")
        ax.set_title("low false-positive rates (log axis)", fontsize=10)
    else:
        ax.set_xlim(0.0, 1.0)
        ax.plot([0, 1], [0, 1], color="0.8", linewidth=1, linestyle="--")
        ax.set_title("full curve", fontsize=10)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.grid(True, alpha=0.3)


def save_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path: Path,
             title: str = "") -> None:
    """Overlaid spike ROC curves (label -> (fpr, tpr, auc)), on a linear and a log FPR axis:
    the useful operating points of a spike detector lie at very low FPR."""
    fig = new_figure(11.0, 4.6)
    linear, logged = fig.subplots(1, 2)
    for ax, log in ((linear, False), (logged, True)):
        _roc_axes(ax, log)
    for label, (fpr, tpr, auc) in curves.items():
        fpr, tpr = thin_curve(fpr, tpr)
        (line,) = linear.plot(fpr, tpr, linewidth=1.5, label=f"{label} (AUC {auc:.4f})")
        visible = fpr > 0  # zero has no place on a log axis
        logged.plot(fpr[visible], tpr[visible], linewidth=1.5, color=line.get_color())
    if curves:
        linear.legend(loc="lower right", fontsize=8)
    fig.suptitle(title or "spike prediction ROC")
    save_figure(fig, path)


def _spike_times(time_ms: np.ndarray, truth_spikes: np.ndarray) -> np.ndarray:
    """Spike times in ms from a per-bin 0/1 array aligned with `time_ms` (as predictions.h5
    stores them); any other array is taken to hold spike times already."""
    spikes = np.asarray(truth_spikes)
    if spikes.shape == time_ms.shape and np.isin(spikes, (0, 1)).all():
        return time_ms[spikes.astype(bool)]
    return spikes.astype(np.float64).ravel()


def save_traces(time_ms: np.ndarray, truth_mv: np.ndarray, truth_spikes: np.ndarray,
                predictions: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path,
                title: str = "") -> None:
    """One simulation: each prediction's soma voltage over the ground truth (top) and its
    spike probability with the true spike times marked (bottom).

    `truth_spikes` is a 0/1 array aligned with `time_ms`, or spike times in ms;
    `predictions` maps a label to (soma_mv, spike_prob), each aligned with `time_ms`.
    """
    time_ms = np.asarray(time_ms, dtype=np.float64)
    truth_mv = np.asarray(truth_mv)
    if truth_mv.shape != time_ms.shape:
        raise ValueError(f"truth_mv has shape {truth_mv.shape}, time_ms {time_ms.shape}")
    for label, (soma_mv, spike_prob) in predictions.items():
        if np.shape(soma_mv) != time_ms.shape or np.shape(spike_prob) != time_ms.shape:
            raise ValueError(f"prediction {label!r} is not aligned with time_ms "
                             f"{time_ms.shape}")
    fig = new_figure(11.0, 6.0)
    volt, prob = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    # The truth is drawn over the predictions, so a noisy prediction cannot hide it.
    volt.plot(time_ms, truth_mv, color="black", linewidth=1.3, zorder=3,
              label="NEURON (ground truth)")
    prob.set_prop_cycle(None)
    for label, (soma_mv, spike_prob) in predictions.items():
        (line,) = volt.plot(time_ms, soma_mv, linewidth=1.0, alpha=0.75, label=label)
        prob.plot(time_ms, spike_prob, linewidth=1.0, color=line.get_color(), label=label)
    times = _spike_times(time_ms, truth_spikes)
    for i, t in enumerate(times):
        prob.axvline(t, color="black", linestyle="--", linewidth=0.8, alpha=0.6,
                     label="true spike" if i == 0 else None)
    volt.set_ylabel("soma voltage (mV)")
    volt.legend(loc="upper right", fontsize=8)
    volt.grid(True, alpha=0.3)
    prob.set_ylim(-0.02, 1.02)
    prob.set_ylabel("spike probability")
    prob.set_xlabel("time (ms)")
    prob.legend(loc="upper right", fontsize=8)
    prob.grid(True, alpha=0.3)
    if len(time_ms):
        prob.set_xlim(time_ms[0], time_ms[-1])
    fig.suptitle(title or "predicted and simulated traces")
    save_figure(fig, path)


def _short_count(n: int) -> str:
    """8002 -> '8.0K', 9200000 -> '9.2M': as the papers write parameter counts."""
    for limit, suffix in ((1e6, "M"), (1e3, "K")):
        if n >= limit:
            return f"{n / limit:.1f}{suffix}"
    return str(n)


def save_auc_vs_params(points: Mapping[str, tuple[int, float, float, float]],
                       published: Sequence[PublishedResult], path: Path) -> None:
    """Spike AUC against parameter count (log axis): our models (label -> (params, auc,
    interval low, high); NaN bounds draw no bar) against the published NeuronIO figures,
    which are drawn for context only."""
    from pipeline.reporting.published import GOOD_ENOUGH_AUC

    fig = new_figure(12.0, 5.6)
    ax, key = fig.subplots(1, 2, width_ratios=(3.0, 1.0))
    if published:
        # Published points crowd near AUC 0.99: number them and list the names beside the
        # plot instead of writing labels over each other.
        ax.scatter([p.params for p in published], [p.auc for p in published], marker="^",
                   s=40, facecolors="none", edgecolors="0.45",
                   label="published NeuronIO figures")
        for i, p in enumerate(published, start=1):
            ax.annotate(str(i), (p.params, p.auc), xytext=(3, -9), textcoords="offset points",
                        fontsize=7, color="0.4")
        approx = ["~" if p.approximate else "" for p in published]
        lines = [f"{i:>2} {p.model}\n   {a}{_short_count(p.params)} params, AUC {a}{p.auc:g}"
                 f" ({p.protocol})"
                 for i, (p, a) in enumerate(zip(published, approx, strict=True), start=1)]
        key.text(0.0, 1.0, "published NeuronIO figures\n(their test set, not ours)\n\n"
                 + "\n".join(lines), transform=key.transAxes, va="top", ha="left",
                 fontsize=7, family="monospace", linespacing=1.25, color="0.25")
    key.set_axis_off()
    if points:
        n, auc, low, high = (np.array(v, dtype=np.float64) for v in zip(*points.values(),
                                                                         strict=True))
        bars = np.isfinite(low) & np.isfinite(high)
        # a percentile interval of few simulations may leave out the estimate: no bar below 0
        below = np.maximum(auc[bars] - low[bars], 0.0)
        above = np.maximum(high[bars] - auc[bars], 0.0)
        ax.errorbar(n[bars], auc[bars], yerr=[below, above],
                    fmt="none", ecolor="tab:blue", elinewidth=1.2, capsize=4, zorder=2)
        ax.scatter(n, auc, marker="o", s=60, color="tab:blue", edgecolors="black", zorder=3,
                   label="this project's models (95 % bootstrap interval)")
        for label, (n, auc, _, _) in points.items():
            ax.annotate(label, (n, auc), xytext=(6, 4), textcoords="offset points",
                        fontsize=9, color="tab:blue", weight="bold")
    ax.axhline(GOOD_ENOUGH_AUC, color="tab:green", linestyle=":", linewidth=1,
               label=f"AUC {GOOD_ENOUGH_AUC} (Beniaguev's 'good enough')")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel("spike AUC")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("spike AUC against model size")
    save_figure(fig, path)
