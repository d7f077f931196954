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

import csv
import io
import math
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.runtime.files import write_text_atomic
from pipeline.sweep.analysis import (
    Analysis,
    analyse,
    answer,
    fit_sentence,
    markdown_table,
    trend_lines,
)
from pipeline.training.settings import TrainSettings

COLUMNS = ("budget", "num_units", "complexity", "connectivity", "params", "spike_auc",
           "soma_rmse_mv", "soma_rmse_mv_raw", "val_spike_auc", "val_soma_rmse_mv",
           "train_seconds", "status")


LABELS = {"num_units": "N", "complexity": "k_e", "connectivity": "k_c"}


TITLE = "ELM network: splitting a parameter budget"


NO_BUDGETS = ("No budgets were given, so nothing was swept (the default of params.yaml; set "
              "sweep.budgets there, e.g. [1e3, 1e4, 1e5], to run it).")


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
    from pipeline.reporting.figures import save_frontier, save_plane

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


