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

import argparse
from pathlib import Path

from pipeline.config.training import (
    add_settings_arguments,
    parse_model_settings,
    settings_from_args,
)
from pipeline.errors import UserError
from pipeline.evaluation.settings import (
    DEFAULT_BATCH_SIZE,
    add_protocol_arguments,
    protocol_from_args,
)
from pipeline.runtime.cluster import add_cluster_arguments
from pipeline.runtime.devices import DEVICE_CHOICES
from pipeline.sweep.analysis import (
    DEFAULT_COMPLEXITIES,
    DEFAULT_MIN_CONNECTIVITY,
    DEFAULT_TOLERANCE,
    DEFAULT_UNITS,
)
from pipeline.sweep.runner import EVAL_SPLITS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="shard root with train/, valid/ and the --eval-split")
    # Lists are taken comma-separated or as separate words (a YAML list from --params).
    parser.add_argument("--budgets", nargs="*", default=[], metavar="P",
                        help="parameter budgets, e.g. 1e3,1e4,1e5; none: an empty sweep (the "
                             "outputs say so), as params.yaml's default")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--units", nargs="+", default=[str(n) for n in DEFAULT_UNITS],
                        metavar="N", help=f"numbers of units tried (default "
                                          f"{','.join(map(str, DEFAULT_UNITS))})")
    parser.add_argument("--complexities", nargs="+",
                        default=[str(k) for k in DEFAULT_COMPLEXITIES], metavar="K",
                        help=f"unit complexities k_e tried (default "
                             f"{','.join(map(str, DEFAULT_COMPLEXITIES))})")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, metavar="F",
                        help=f"largest relative miss of a budget (default {DEFAULT_TOLERANCE})")
    parser.add_argument("--min-connectivity", type=int, default=DEFAULT_MIN_CONNECTIVITY,
                        metavar="K", help=f"smallest k_c kept (default "
                                          f"{DEFAULT_MIN_CONNECTIVITY})")
    parser.add_argument("--set", dest="model_settings", action="extend", nargs="*",
                        default=[], metavar="KEY=VALUE",
                        help="other elm_network settings, e.g. recurrent_fraction=0.5 "
                             "branch_bias=0.5 update=v2")
    parser.add_argument("--eval-split", choices=EVAL_SPLITS, default="test",
                        help="the split every point is scored on (default test)")
    parser.add_argument("--eval-batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                        help=f"(default {DEFAULT_BATCH_SIZE})")
    # The evaluate stage's protocol, for scoring every point (params.yaml: evaluate).
    add_protocol_arguments(parser, prefix="eval-")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                        help="auto: the GPU when one is visible (points in sequence, or "
                             "--workers N at a time); else the CPU, points in parallel")
    add_cluster_arguments(parser)
    add_settings_arguments(parser)


def run(args: argparse.Namespace) -> None:
    from pipeline.sweep.analysis import parse_budgets, parse_sizes
    from pipeline.sweep.runner import sweep

    lists: dict[str, list[int]] = {}
    for flag, words, parse in (("--budgets", args.budgets, parse_budgets),
                               ("--units", args.units, parse_sizes),
                               ("--complexities", args.complexities, parse_sizes)):
        try:
            lists[flag] = parse(",".join(words)) if words else []
        except ValueError as err:
            raise UserError(flag, str(err)) from None
    sweep(args.data, lists["--budgets"], args.out, settings_from_args(args),
          parse_model_settings(args.model_settings), lists["--units"],
          lists["--complexities"], args.tolerance, args.min_connectivity,
          args.eval_split, args.eval_batch_size, args.device, args.workers, args.scheduler,
          protocol_from_args(args, prefix="eval-"))
