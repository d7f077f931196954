"""`neurosurrogate STAGE ...`: one subcommand per pipeline stage.

Every stage module in `pipeline.stages` exposes `add_arguments(parser)` and `run(args)` and
keeps heavy imports (torch, NEURON, Dask) inside `run`, so `--help` stays instant.
`python -m pipeline STAGE` is the same command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from pipeline.config.stage_params import Section, params_defaults
from pipeline.errors import UserError

# Stage name -> the params.yaml sections its `--params FILE` reads, later ones winning where


PARAMS_SECTIONS: dict[str, tuple[str | Section, ...]] = {
    "check-params": (), "acquire": (), "simulate": ("simulate",), "ingest": ("ingest",),
    "import-elm": (), "shard": ("shard",), "train": ("train",), "evaluate": ("evaluate",),
    "report": (), "compare-cells": (),
    "sweep": ("train", "sweep", Section("evaluate", prefix="eval_", keys=(
        "protocol", "window_ms", "burn_in_ms", "skip_ms", "max_spikes", "bootstrap_replicates",
        "bootstrap_seed", "batch_size"))),
}
# Stage name -> module, in `--help` order.
STAGES: dict[str, str] = {name: f"pipeline.stages.{name.replace('-', '_')}"
                          for name in PARAMS_SECTIONS}


def _summary(module: ModuleType) -> str:
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


def _sections(name: str) -> str:
    return " and ".join(s if isinstance(s, str) else s.name for s in PARAMS_SECTIONS[name])


def _add_stage(sub: argparse._SubParsersAction, name: str, module: ModuleType
               ) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=_summary(module),
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    if PARAMS_SECTIONS[name]:
        parser.add_argument("--params", type=Path, default=None, metavar="FILE",
                            help=f"take defaults from the {_sections(name)} "
                                 f"section(s) of this params file (e.g. params.yaml); flags "
                                 f"given here still win")
    parser.set_defaults(_run=module.run, _stage=name)
    return parser


def _with_params(parser: argparse.ArgumentParser, stage: argparse.ArgumentParser,
                 argv: Sequence[str] | None, args: argparse.Namespace) -> argparse.Namespace:
    """`args` again, with the stage's params sections as defaults when --params was given."""
    if getattr(args, "params", None) is None or not PARAMS_SECTIONS[args._stage]:
        return args
    stage.set_defaults(**params_defaults(stage, args.params, PARAMS_SECTIONS[args._stage]))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="neurosurrogate",
        description="Fit learned surrogates to a detailed L5PC neuron and compare them.",
    )
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    stages = {name: _add_stage(sub, name, importlib.import_module(modname))
              for name, modname in STAGES.items()}
    args = parser.parse_args(argv)
    try:
        args = _with_params(parser, stages[args._stage], argv, args)
        args._run(args)
    except UserError as err:
        print(f"{parser.prog} {args._stage}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog} {args._stage}: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
