"""The report's tables: the ranking of the evaluations, their rows as text cells, and the one
markdown and HTML table writer (the sweep's sweep.md writes its tables with it too)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.evaluation.metrics import fpr_key
from pipeline.protocol import FPR_POINTS

if TYPE_CHECKING:
    from pipeline.reporting.evaluations import Evaluation

QUOTED_FPR, OTHER_FPR = FPR_POINTS  # the main table quotes the first, the details the other


def percent(rate: float) -> str:
    """A rate as the report writes it: 0.0025 -> '0.25 %'."""
    return f"{100 * rate:g} %"


COLUMNS = ("rank", "model", "parameters", "AUC [95 % interval]",
           f"TPR at {percent(QUOTED_FPR)} FPR [95 %]", "RMSE (mV, rescaled) [95 %]",
           "explained variance (%)", "speed-up over NEURON", "evaluator / recipe")
DETAIL_COLUMNS = ("model", "architecture", "cell", "simulations",
                  f"TPR at {percent(OTHER_FPR)} FPR",
                  "RMSE (mV, raw)", "MAE (mV, rescaled)", "device", "evaluation folder")


def rank(evals: Sequence[Evaluation]) -> list[Evaluation]:
    """Best first: highest AUC, then lowest RMSE; a missing figure ranks last."""

    def key(ev: Evaluation) -> tuple[bool, float, bool, float, str]:
        auc, rmse = ev.number("spike_auc"), ev.number("soma_rmse_mv")
        return (math.isnan(auc), -auc if not math.isnan(auc) else 0.0,
                math.isnan(rmse), rmse if not math.isnan(rmse) else 0.0, ev.label)

    return sorted(evals, key=key)


def fmt(value: float, digits: int, suffix: str = "") -> str:
    """A score with `digits` decimals, or n/a where there is none (NaN)."""
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}{suffix}"


def _speedup(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.0f}x" if value >= 10 else f"{value:.2f}x"


def with_interval(ev: Evaluation, key: str, digits: int) -> str:
    """A figure and its bootstrap interval, '0.9306 [0.8970, 0.9710]'; the figure alone
    where the evaluation has no interval."""
    low, high = ev.interval(key)
    text = fmt(ev.number(key), digits)
    if math.isnan(low) or math.isnan(high):
        return text
    return f"{text} [{low:.{digits}f}, {high:.{digits}f}]"


def table_rows(ranked: Sequence[Evaluation]) -> list[tuple[str, ...]]:
    """The report's table as text cells, in COLUMNS order."""
    return [(str(i), ev.label, f"{ev.metrics['num_params']:,}",
             with_interval(ev, "spike_auc", 4), with_interval(ev, fpr_key(QUOTED_FPR), 3),
             with_interval(ev, "soma_rmse_mv", 3),
             fmt(ev.number("soma_explained_variance_pct"), 1),
             _speedup(ev.number("speedup_vs_neuron")),
             f"{ev.metrics.get('protocol', 'n/a')} / {ev.metrics.get('recipe') or 'n/a'}")
            for i, ev in enumerate(ranked, start=1)]


def detail_rows(ranked: Sequence[Evaluation]) -> list[tuple[str, ...]]:
    """Per-evaluation context the main table leaves out (the data set's cell, the raw RMSE,
    where it ran), in DETAIL_COLUMNS order."""
    return [(ev.label, str(ev.metrics["model"]), str(ev.metrics.get("cell", "n/a")),
             str(ev.metrics.get("num_sims", "n/a")),
             fmt(ev.number(fpr_key(OTHER_FPR)), 3), fmt(ev.number("soma_rmse_mv_raw"), 3),
             fmt(ev.number("soma_mae_mv"), 3), str(ev.metrics.get("device", "n/a")),
             str(ev.folder))
            for ev in ranked]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table of text cells; a | or a line break in a cell cannot break it."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The same table as HTML, every cell escaped."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n"
                   for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"
