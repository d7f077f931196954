"""Writing a report folder: every input read and checked first, then the figures, report.md
and report.html written under temporary names and renamed together, so that a failing run
leaves an earlier report whole and bad input leaves --out alone."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from pipeline.errors import UserError
from pipeline.filenames import (
    REPORT_HTML,
    REPORT_MARKDOWN,
    REPORT_SWEEP_PREFIX,
    REPORT_TRACES_FIGURE,
)
from pipeline.reporting.draw import (
    draw_figures,
    report_figures,
    shared_simulation,
)
from pipeline.reporting.evaluations import Evaluation, load_evaluations
from pipeline.reporting.render import render_html, render_markdown
from pipeline.reporting.resolution import neighbour_notes, small_data_note
from pipeline.reporting.sweep_section import (
    SweepSection,
    draw_sweep_figures,
    read_sweep_section,
)
from pipeline.reporting.tables import rank
from pipeline.runtime.files import atomic_path


def _notes(ranked: Sequence[Evaluation], no_traces: str | None) -> list[str]:
    """What the reader must know before comparing the figures."""
    notes = [no_traces] if no_traces else []
    small = small_data_note(ranked)
    notes += [small] if small else []
    notes += neighbour_notes(ranked)
    protocols = {str(ev.metrics.get("protocol", "n/a")) for ev in ranked}
    if len(protocols) > 1:
        notes.append(f"The rows were scored by different evaluators ({', '.join(sorted(protocols))}"
                     "); their figures differ in definition, not only in model.")
    sims = {ev.metrics.get("num_sims") for ev in ranked}
    if len(sims) > 1:
        notes.append("The evaluations cover different numbers of simulations "
                     f"({', '.join(str(s) for s in sorted(sims, key=str))}); compare their "
                     "figures with care.")
    return notes


def _remove_stale(out: Path, written: set[str]) -> None:
    """Figures of an earlier report that this one does not have would mislead."""
    stale = [] if REPORT_TRACES_FIGURE in written else [out / REPORT_TRACES_FIGURE]
    stale += [p for p in out.glob(f"{REPORT_SWEEP_PREFIX}*.png") if p.name not in written]
    for path in stale:
        path.unlink(missing_ok=True)


def build_report(folders: Sequence[Path], out: Path, sweep_dir: Path | None = None
                 ) -> tuple[list[Evaluation], Path, Path]:
    """Write the report of the evaluation `folders` (and of the sweep in `sweep_dir`) into
    `out`; return the ranked evaluations and the paths of report.md and report.html."""
    ranked = rank(load_evaluations(folders))
    sweep: SweepSection | None = None if sweep_dir is None else read_sweep_section(sweep_dir)
    trace_sim, no_traces = shared_simulation(ranked)
    notes = _notes(ranked, no_traces)
    if out.exists() and not out.is_dir():
        raise UserError(out, "exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    figures = report_figures(trace_sim)
    every_figure = [*figures, *(sweep.figures if sweep is not None else [])]
    md_path, html_path = out / REPORT_MARKDOWN, out / REPORT_HTML
    with ExitStack() as stack:
        tmp = {name: stack.enter_context(atomic_path(out / name))
               for name in [*(f.file for f in every_figure), md_path.name, html_path.name]}
        draw_figures(ranked, trace_sim, tmp)
        if sweep is not None:
            draw_sweep_figures(sweep, tmp)
        images = {f.file: tmp[f.file].read_bytes() for f in every_figure}
        tmp[md_path.name].write_text(render_markdown(ranked, figures, notes, sweep),
                                     encoding="utf-8")
        tmp[html_path.name].write_text(render_html(ranked, figures, images, notes, sweep),
                                       encoding="utf-8")
    _remove_stale(out, {f.file for f in every_figure})
    return ranked, md_path, html_path
