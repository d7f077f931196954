"""Check params.yaml against its schema before any stage of `dvc repro` runs.

`dvc.yaml` makes this check the first stage, so an unknown key, a wrong type or an
out-of-range value stops the pipeline with one line naming the key, before NEURON starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.config.checks import check_params
from pipeline.config.schema import SCHEMA_VERSION
from pipeline.runtime.files import write_text_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("params", type=Path, nargs="?", default=Path("params.yaml"),
                        help="the params file (default params.yaml)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="write a stamp here when the file is valid (for dvc.yaml)")


def run(args: argparse.Namespace) -> None:
    check_params(args.params)
    if args.out is not None:
        # The stamp's content does not depend on the values, so a valid change of one
        # parameter reruns only the stages that use it.
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out, f"params valid against schema version {SCHEMA_VERSION}\n")
    print(f"{args.params}: valid")

