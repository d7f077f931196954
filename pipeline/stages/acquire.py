"""Make the raw data set that params.yaml asks for: simulate the cell, or ingest NeuronIO files.

The first data stage of `dvc.yaml`. With `data.neuronio` set it ingests those files (with
the `ingest` section's workers); otherwise it simulates with the `simulate` section. It
prints the equivalent command and calls what that command calls, so both paths behave
exactly as the commands do by hand.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), metavar="FILE",
                        help="the params file (default params.yaml)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output data set folder")


def requested(params: dict[str, Any], out: Path) -> tuple[str, dict[str, Any]]:
    """(stage, its options) that make the raw data set; each option is the stage's flag
    of the same name."""
    if params["data"]["neuronio"]:
        stage, cluster = "ingest", params["ingest"]
        options: dict[str, Any] = {"src": Path(params["data"]["neuronio"]), "out": out}
    else:  # every key of the simulate section is a simulate flag
        stage, cluster = "simulate", params["simulate"]
        options = {"out": out, **{k: v for k, v in cluster.items()  # null: the default
                                  if k not in ("workers", "scheduler") and v is not None}}
    if cluster["scheduler"]:
        options["scheduler"] = cluster["scheduler"]
    else:
        options["workers"] = cluster["workers"]
    return stage, options


def command_line(stage: str, options: dict[str, Any]) -> str:
    """The stage's command line for these options (a switch appears only when true)."""
    flags = (f"--{name.replace('_', '-')}"
             + ("" if value is True else f" {shlex.quote(str(value))}")
             for name, value in options.items() if value is not False)
    return " ".join([f"neurosurrogate {stage}", *flags])


def run(args: argparse.Namespace) -> None:
    from pipeline.config.schema import load_params

    stage, options = requested(load_params(args.params), args.out)
    print(f"acquire: {command_line(stage, options)}")
    if stage == "ingest":
        from pipeline.acquisition.ingest import ingest

        ingest(**options)
    else:
        from pipeline.acquisition.options import SimulateOptions
        from pipeline.acquisition.simulate import simulate

        simulate(SimulateOptions(**options))
