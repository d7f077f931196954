"""Make the raw data set that params.yaml asks for: simulate the cell, or ingest NeuronIO files.

The first data stage of `dvc.yaml`. With `data.neuronio` set it runs `ingest` on those
files; otherwise `simulate` with the `simulate` section. It only translates the params into
the stage's own command line, so both paths behave exactly as the commands do by hand.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from pipeline.config.schema import check_params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), metavar="FILE",
                        help="the params file (default params.yaml)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output data set folder")


def command_line(params: dict[str, Any], out: Path) -> tuple[str, list[str]]:
    """(stage, argv) that makes the raw data set."""
    if params["data"]["neuronio"]:
        argv = ["--src", params["data"]["neuronio"], "--out", str(out)]
        cluster = params["simulate"]
        stage = "ingest"
    else:
        sim = params["simulate"]
        argv = ["--out", str(out), "--cell", sim["cell"], "--num-sims", str(sim["num_sims"]),
                "--duration-ms", str(sim["duration_ms"]), "--seed", str(sim["seed"]),
                "--sims-per-shard", str(sim["sims_per_shard"]),
                "--exc-range", sim["exc_range"], "--inh-offsets", sim["inh_offsets"]]
        cluster = sim
        stage = "simulate"
    if cluster["scheduler"]:
        argv += ["--scheduler", cluster["scheduler"]]
    else:
        argv += ["--workers", str(cluster["workers"])]
    return stage, argv


def run(args: argparse.Namespace) -> None:
    from pipeline.cli import STAGES

    stage, argv = command_line(check_params(args.params), args.out)
    module = importlib.import_module(STAGES[stage])
    parser = argparse.ArgumentParser(prog=f"neurosurrogate {stage}")
    module.add_arguments(parser)
    print(f"acquire: neurosurrogate {stage} {' '.join(argv)}")
    module.run(parser.parse_args(argv))

