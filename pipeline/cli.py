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
from types import ModuleType

from pipeline.errors import UserError

# Stage name -> module. A stage is listed here only once it works.
STAGES: dict[str, str] = {name: f"pipeline.stages.{name.replace('-', '_')}" for name in (
    "check-params", "acquire", "simulate", "ingest", "import-elm", "shard", "train",
    "evaluate", "report", "sweep",
)}


def _summary(module: ModuleType) -> str:
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


def _add_stage(sub: argparse._SubParsersAction, name: str, module: ModuleType) -> None:
    parser = sub.add_parser(
        name,
        help=_summary(module),
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run, _stage=name)


def _execute(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        args._run(args)
    except UserError as err:
        print(f"{parser.prog} {args._stage}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog} {args._stage}: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="neurosurrogate",
        description="Fit learned surrogates to a detailed L5PC neuron and compare them.",
    )
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, modname in STAGES.items():
        _add_stage(sub, name, importlib.import_module(modname))
    args = parser.parse_args(argv)
    return _execute(parser, args)


if __name__ == "__main__":
    raise SystemExit(main())
