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
from pathlib import Path

from pipeline.filenames import REPORT_HTML, REPORT_MARKDOWN


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--evals", type=Path, nargs="+", required=True, metavar="DIR",
                        help="evaluation folders written by `neurosurrogate evaluate`")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help=f"output folder; receives {REPORT_MARKDOWN}, {REPORT_HTML} and "
                             f"the figures")
    parser.add_argument("--sweep", type=Path, default=None, metavar="DIR",
                        help="a folder written by `neurosurrogate sweep`, analysed in its own "
                             "section")


def run(args: argparse.Namespace) -> None:
    from pipeline.reporting.build import build_report
    from pipeline.reporting.tables import COLUMNS, markdown_table, table_rows

    ranked, md_path, html_path = build_report(args.evals, args.out, args.sweep)
    print(markdown_table(COLUMNS, table_rows(ranked)))
    print(f"report written to {md_path} and {html_path}")
