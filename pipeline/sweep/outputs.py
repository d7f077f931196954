"""What the ELM-network sweep writes into its folder: points.csv (every point, one row each),
sweep.md (every point, the optimum per budget, the frontier and its power-law fit, the answer),
frontier.png and one (N, k_e) plane per budget. The wording is the sweep's narrative in
pipeline/sweep/analysis.py; the report reads points.csv back with `read_points` and draws the
same figures with `draw_sweep`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import UserError
from pipeline.filenames import SWEEP_FRONTIER, SWEEP_MARKDOWN, SWEEP_POINTS, plane_figure
from pipeline.reporting.tables import markdown_table
from pipeline.runtime.files import write_text_atomic
from pipeline.sweep.analysis import (
    NO_BUDGETS,
    NOISE,
    OPTIMUM,
    PARETO,
    PLANE,
    QUESTION,
    TITLE,
    Analysis,
    analyse,
    answer,
    budgets_of,
    fit_sentence,
    trend_lines,
)

if TYPE_CHECKING:
    from pipeline.config.training import TrainSettings

COLUMNS = ("budget", "num_units", "complexity", "connectivity", "params", "spike_auc",
           "soma_rmse_mv", "soma_rmse_mv_raw", "val_spike_auc", "val_soma_rmse_mv",
           "train_seconds", "status")
LABELS = {"num_units": "N", "complexity": "k_e", "connectivity": "k_c"}
COUNT_COLUMNS = COLUMNS[:5]  # budget .. params
NUMBER_COLUMNS = COLUMNS[5:-1]  # the scores and seconds; empty where a point has none
SUMMARY_COLUMNS = COLUMNS[:7]  # budget .. soma_rmse_mv: the optimum and frontier tables

def read_points(folder: Path) -> list[dict[str, Any]]:
    """The rows of a sweep folder's points.csv, typed as `point_row` makes them."""
    path = Path(folder) / SWEEP_POINTS
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
    """points.csv's text: a missing score is an empty cell."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                         for k, v in row.items()})
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def point_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """`columns` of the points as a markdown table, headed N, k_e and k_c where those are."""
    return markdown_table([LABELS.get(c, c) for c in columns],
                          [[_cell(row.get(c, "")) for c in columns] for row in rows])


def sweep_markdown(rows: list[dict[str, Any]], result: Analysis, settings: TrainSettings,
                   eval_split: str, num_inputs: int) -> str:
    """sweep.md: every point, the optimum per budget, the frontier fit and the answer."""
    optima = list(result.optima.values())
    lines = [
        f"# {TITLE}",
        "",
        f"elm_network on {num_inputs} inputs; every point trained {settings.steps} steps "
        f"(batch {settings.batch_size}, {settings.window_ms} ms windows, lr {settings.lr:g}, "
        f"seed {settings.seed}) and scored on the {eval_split} split by the evaluate stage. "
        "Parameters: P(N, k_e, k_c) = N (k_c + 4 k_e^2 + 6 k_e + 2) + 2 "
        f"(docs/elm-network.md). {NOISE} An AUC below 0.5 marks a point whose spike output "
        "was not learned in these steps (it stays near the base rate, leaning slightly "
        "against depolarisation).",
        "",
        "## Every point", "", point_table(rows, COLUMNS), "",
        f"## {OPTIMUM}", "",
        point_table(optima, SUMMARY_COLUMNS) if optima else "No point was scored.", "",
        "## Frontier", "",
    ]
    if result.frontier:
        lines += [f"Pareto-optimal points ({PARETO}), across budgets:", "",
                  point_table(result.frontier, SUMMARY_COLUMNS), ""]
    lines += [fit_sentence(result), "", f"![AUC against parameters]({SWEEP_FRONTIER})", "",
              f"## {QUESTION}", "",
              answer(result.optima), *(f"- {line}" for line in trend_lines(result))]
    lines += ["", f"The planes below, one per budget, show {PLANE}.", ""]
    lines += [f"![budget {b}]({plane_figure(b)})" for b in budgets_of(rows)]
    return "\n".join(lines) + "\n"


def draw_sweep(rows: list[dict[str, Any]], result: Analysis, frontier: Path,
               planes: Mapping[int, Path]) -> None:
    """The frontier figure to `frontier` and the plane of every budget to planes[budget]."""
    from pipeline.sweep.figures import save_frontier, save_plane

    save_frontier(rows, result, frontier)
    for budget in budgets_of(rows):
        save_plane([r for r in rows if r["budget"] == budget], budget, planes[budget])


def write_outputs(out: Path, rows: list[dict[str, Any]], settings: TrainSettings,
                  eval_split: str, num_inputs: int) -> None:
    """points.csv, the figures and sweep.md (or, with no points, what says so)."""
    write_text_atomic(out / SWEEP_POINTS, rows_to_csv(rows))
    if not rows:
        write_text_atomic(out / SWEEP_MARKDOWN, f"# {TITLE}\n\n{NO_BUDGETS}\n")
        return
    result = analyse(rows)
    draw_sweep(rows, result, out / SWEEP_FRONTIER,
               {budget: out / plane_figure(budget) for budget in budgets_of(rows)})
    write_text_atomic(out / SWEEP_MARKDOWN,
                      sweep_markdown(rows, result, settings, eval_split, num_inputs))
