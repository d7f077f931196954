"""Train one surrogate on a sharded data set (DIR/train, validated on DIR/valid).

Writes OUT/best.pt (best validation soma RMSE, then AUC), OUT/last.pt (weights plus the
optimiser state, for --resume), OUT/train_log.csv (one row per validation, for DVC plots)
and OUT/train_metrics.json (the best validation figures). Every file is replaced
atomically, so an interrupted run loses at most the steps since its last validation, and
`--resume` continues from there to the same result as an uninterrupted run (on the CPU).

`--recipe elm|tcn_beniaguev` starts from a model's published training recipe
(pipeline/config/recipes.py; default none: our defaults); every flag given still wins. The
recipe is recorded as `recipe` in train_metrics.json and in both checkpoints' metadata.
"""


from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.config.training import (
    add_settings_arguments,
    parse_model_settings,
    settings_from_args,
)
from pipeline.runtime.devices import DEVICE_CHOICES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="sharded data set root holding DIR/train and DIR/valid")
    parser.add_argument("--model", required=True, metavar="NAME",
                        help="registered model name: elm, branch_elm, tcn, lstm, ...")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder for checkpoints and the training log")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                        help="auto: the GPU when one is visible (default)")
    parser.add_argument("--set", dest="model_settings", action="extend", nargs="*",
                        default=[], metavar="KEY=VALUE",
                        help="model config settings, e.g. --set num_memory=20 routing=random "
                             "(values are read as YAML scalars)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in OUT from its last checkpoint")
    parser.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                        help="checkpoint after this step and exit; continue later with "
                             "--resume (for time-limited cluster jobs)")
    add_settings_arguments(parser)


def run(args: argparse.Namespace) -> None:
    from pipeline.training.run import train

    train(args.data, args.model, args.out, settings_from_args(args),
          parse_model_settings(args.model_settings), args.device, args.resume,
          stop_at=args.stop_at)
