"""Score a surrogate checkpoint on one split by a published NeuronIO evaluator.

`--protocol elm` (the default) is the ELM paper's evaluator, `beniaguev` that of the TCN
paper (definitions: pipeline/evaluation/metrics.py). Writes metrics.json (with 95 % bootstrap
intervals), evaluation.json, roc.csv, predictions.h5, roc.png and traces*.png into --out
(docs/data-format.md, "Evaluation outputs"); all of them are renamed into place together at
the end, so a failing run leaves earlier outputs as they were.
"""


from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.evaluation.settings import (
    CHECKPOINTS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHECKPOINT,
    DEFAULT_NUM_TRACES,
    add_protocol_arguments,
    protocol_from_args,
)
from pipeline.filenames import EVAL_METRICS
from pipeline.runtime.devices import DEVICE_CHOICES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="the split to score, e.g. SHARDS/test")
    parser.add_argument("--model-dir", type=Path, required=True, metavar="DIR",
                        help="folder of a training run (best.pt, last.pt)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    parser.add_argument("--checkpoint", choices=CHECKPOINTS, default=DEFAULT_CHECKPOINT,
                        help=f"which checkpoint of --model-dir (default {DEFAULT_CHECKPOINT})")
    add_protocol_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                        help=f"simulations read at once and windows per forward pass "
                             f"(default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                        help="auto (the default) takes the GPU when one is visible")
    parser.add_argument("--label", default=None,
                        help=f"name of the model in plots and {EVAL_METRICS} "
                             f"(default: the model dir's name)")
    parser.add_argument("--num-traces", type=int, default=DEFAULT_NUM_TRACES, metavar="N",
                        help=f"simulations drawn as traces (default {DEFAULT_NUM_TRACES})")


def run(args: argparse.Namespace) -> None:
    from pipeline.evaluation.run import evaluate

    evaluate(args.data, args.model_dir, args.out, args.checkpoint, protocol_from_args(args),
             args.batch_size, args.device, args.label, args.num_traces)
