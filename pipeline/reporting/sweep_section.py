"""The report's section on the ELM-network budget sweep: the optimum per budget, the
frontier's power law and whether the optimum moves towards more and more complex neurons.

It reads the sweep's points.csv and says what sweep.md says, in the sweep's own words
(pipeline/sweep/analysis.py), shorter: sweep.md keeps every point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.filenames import REPORT_SWEEP_PREFIX, SWEEP_FRONTIER, SWEEP_MARKDOWN, plane_figure
from pipeline.reporting.render import ReportFigure
from pipeline.reporting.tables import fmt
from pipeline.sweep.analysis import (
    NO_BUDGETS,
    NOISE,
    OPTIMUM,
    PARETO,
    PLANE,
    TITLE,
    Analysis,
    analyse,
    answer,
    budgets_of,
    fit_sentence,
    trend_lines,
)
from pipeline.sweep.outputs import draw_sweep, read_points

COLUMNS = ("budget", "N", "k_e", "k_c", "parameters", "AUC", "RMSE (mV, rescaled)")


@dataclass(frozen=True)
class SweepSection:
    """The report's reading of an ELM-network sweep, and what its figures draw."""

    title: str
    before: list[str]  # paragraphs before the table
    table: tuple[tuple[str, ...], list[tuple[str, ...]]] | None
    after: list[str]  # paragraphs after it
    items: list[str]  # a bulleted list closing the text
    figures: list[ReportFigure]
    rows: list[dict[str, Any]]  # every point
    analysis: Analysis | None  # None when nothing was swept


def frontier_file() -> str:
    return REPORT_SWEEP_PREFIX + SWEEP_FRONTIER


def plane_file(budget: int) -> str:
    return REPORT_SWEEP_PREFIX + plane_figure(budget)


def _figures(budgets: Sequence[int]) -> list[ReportFigure]:
    figures = [ReportFigure(
        frontier_file(), "Spike AUC against parameters, every sweep point",
        f"Coloured by budget; black: the Pareto frontier ({PARETO}); red: its power law, a "
        f"line on the log-log right panel.")]
    figures += [ReportFigure(plane_file(budget), f"The (N, k_e) plane at {budget:,} parameters",
                             f"Every point's {PLANE}; the best is ringed.")
                for budget in budgets]
    return figures


def sweep_section(rows: Sequence[dict[str, Any]], folder: Path) -> SweepSection:
    """The section of the sweep in `folder` whose points are `rows`."""
    rows = list(rows)
    if not rows:
        return SweepSection(TITLE, [NO_BUDGETS], None, [], [], [], rows, None)
    result = analyse(rows)
    scored = sum(math.isfinite(r["spike_auc"]) for r in rows)
    budgets = budgets_of(rows)
    intro = (f"elm_network, N units of complexity k_e reading k_c sources each, at "
             f"{len(budgets)} parameter budget(s) ({', '.join(f'{b:,}' for b in budgets)}): "
             f"{scored} of {len(rows)} points scored on the sweep's evaluation split "
             f"(every point: {folder / SWEEP_MARKDOWN}). {NOISE}")
    table = (COLUMNS, [
        (f"{budget:,}", str(r["num_units"]), str(r["complexity"]), str(r["connectivity"]),
         f"{r['params']:,}", fmt(r["spike_auc"], 4), fmt(r["soma_rmse_mv"], 3))
        for budget, r in result.optima.items()])
    return SweepSection(TITLE, [intro, f"{OPTIMUM}:"], table,
                        [fit_sentence(result), answer(result.optima)], trend_lines(result),
                        _figures(budgets), rows, result)


def read_sweep_section(folder: Path) -> SweepSection:
    """The section of the sweep folder `folder` (its points.csv checked)."""
    return sweep_section(read_points(folder), folder)


def draw_sweep_figures(section: SweepSection, paths: dict[str, Path]) -> None:
    """The section's figures, to paths[figure file]; none when nothing was swept."""
    if section.analysis is None:
        return
    draw_sweep(section.rows, section.analysis, paths[frontier_file()],
               {budget: paths[plane_file(budget)] for budget in budgets_of(section.rows)})
