"""The report's two renderings of the same content: report.md (figures as files beside it)
and a self-contained report.html (figures inline as data URIs, no external resources)."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.reporting.tables import (
    COLUMNS,
    DETAIL_COLUMNS,
    detail_rows,
    html_table,
    markdown_table,
    table_rows,
)

if TYPE_CHECKING:
    from pipeline.reporting.evaluations import Evaluation
    from pipeline.reporting.sweep_section import SweepSection

TITLE = "Surrogate comparison"
INTRO = ("Models are ranked by spike AUC, then by soma RMSE. Each row names the published "
         "evaluator that scored it (elm: the ELM paper's, soma rescaled per file; beniaguev: "
         "the TCN paper's, rescaled over the pooled test set) and the training recipe (elm, "
         "tcn_beniaguev, or none: this project's own settings). RMSE "
         "and explained variance are computed after z-scoring each prediction and rescaling "
         "it to the ground truth's mean and standard deviation, as in the published "
         "evaluations; the raw RMSE is listed under details. Brackets hold 95 % bootstrap "
         "intervals over test simulations; the notes below say which neighbours in the "
         "ranking the data resolve. Speed-up is NEURON's simulation time over the "
         "surrogate's, per simulated second.")


@dataclass(frozen=True)
class ReportFigure:
    """A figure of the report: the PNG file it is drawn to (beside report.md), its heading
    and its caption."""

    file: str
    title: str
    caption: str


def _markdown_figure(fig: ReportFigure, level: str) -> list[str]:
    return [f"{level} {fig.title}", "", f"![{fig.title}]({fig.file})", "", fig.caption, ""]


def _markdown_sweep(sweep: SweepSection) -> list[str]:
    parts = [f"## {sweep.title}", ""]
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
    return parts


def render_markdown(ranked: Sequence[Evaluation], figures: Sequence[ReportFigure],
                    notes: Sequence[str], sweep: SweepSection | None = None) -> str:
    """report.md: the ranking, the notes, the figures, the sweep section and the details."""
    parts = [f"# {TITLE}", "", INTRO, "", markdown_table(COLUMNS, table_rows(ranked)), ""]
    parts += [f"> {note}\n" for note in notes]
    for fig in figures:
        parts += _markdown_figure(fig, "##")
    if sweep is not None:
        parts += _markdown_sweep(sweep)
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


def _html_sweep(sweep: SweepSection, images: dict[str, bytes]) -> list[str]:
    parts = [f"<h2>{html.escape(sweep.title)}</h2>"]
    parts += [f"<p>{html.escape(p)}</p>" for p in sweep.before]
    if sweep.table is not None:
        parts.append(html_table(*sweep.table))
    parts += [f"<p>{html.escape(p)}</p>" for p in sweep.after]
    if sweep.items:
        parts += ["<ul>", *(f"<li>{html.escape(item)}</li>" for item in sweep.items), "</ul>"]
    for fig in sweep.figures:
        parts += _html_figure(fig, images[fig.file], "h3")
    return parts


def render_html(ranked: Sequence[Evaluation], figures: Sequence[ReportFigure],
                images: dict[str, bytes], notes: Sequence[str],
                sweep: SweepSection | None = None) -> str:
    """One file with everything inline (`images`: PNG bytes by figure file), to mail or
    archive alone."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{TITLE}</title>", f"<style>{CSS}</style>", "</head>",
             "<body>", f"<h1>{TITLE}</h1>", f"<p>{html.escape(INTRO)}</p>",
             html_table(COLUMNS, table_rows(ranked))]
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in notes]
    for fig in figures:
        parts += _html_figure(fig, images[fig.file], "h2")
    if sweep is not None:
        parts += _html_sweep(sweep, images)
    details = html_table(DETAIL_COLUMNS, detail_rows(ranked)).replace(
        "<table>", '<table class="details">', 1)
    parts += ["<h2>Details</h2>", details, "</body>", "</html>", ""]
    return "\n".join(parts)
