"""The sweep's figures: spike AUC against parameters with the Pareto frontier and its power
law, and the (N, k_e) plane of every budget."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.reporting.figures import new_figure, save_figure
from pipeline.sweep.analysis import budgets_of

if TYPE_CHECKING:
    from pipeline.sweep.analysis import Analysis


def save_frontier(rows: list[dict[str, Any]], result: Analysis, path: Path) -> None:
    """Spike AUC against parameters, every point by budget, the Pareto frontier and its
    power law; right: the same as 1 - AUC on log-log axes, where the law is a line."""
    fig = new_figure(11.0, 4.6)
    linear, logged = fig.subplots(1, 2)
    scored = [r for r in rows if math.isfinite(r["spike_auc"])]
    for budget in budgets_of(scored):
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
    if scored:  # a log axis of nothing cannot be drawn (every point failed)
        logged.set_yscale("log")
    linear.legend(loc="lower right", fontsize=8)
    fig.suptitle("elm_network: spike AUC against parameters")
    save_figure(fig, path)


def save_plane(rows: list[dict[str, Any]], budget: int, path: Path) -> None:
    """Spike AUC over (N, k_e) at one budget, each point labelled with its AUC and k_c; the
    best one ringed."""
    from matplotlib.ticker import NullLocator

    fig = new_figure(6.4, 5.0)
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
    save_figure(fig, path)
