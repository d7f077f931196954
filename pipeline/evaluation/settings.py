"""The settings of an evaluation: the scoring protocol and the evaluate stage's defaults.

A light module (no numpy, no torch) so that `neurosurrogate evaluate --help` can show the
defaults for free; pipeline.evaluation.run, which scores, imports it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

from pipeline.errors import UserError
from pipeline.protocol import BURN_IN_MS, EVALUATORS, MAX_SPIKES, SKIP_MS, WINDOW_MS

BOOTSTRAP_REPLICATES = 1000

# Which checkpoint of a training run is scored (the files: surrogates.checkpoints).
CHECKPOINTS = ("best", "last")
DEFAULT_CHECKPOINT = "best"
DEFAULT_BATCH_SIZE = 32  # simulations read at once and windows per forward pass
DEFAULT_NUM_TRACES = 3  # simulations drawn as trace figures


@dataclass(frozen=True)
class Protocol:
    """How predictions are scored: which published evaluator, window and burn-in of the
    windowed prediction (Beniaguev's evaluator raises the burn-in to a TCN's receptive field
    + 1), the unscored start of every simulation, the spike count above which a simulation
    is dropped, and the seeded bootstrap of the intervals."""

    protocol: str = "elm"
    window_ms: int = WINDOW_MS
    burn_in_ms: int = BURN_IN_MS
    skip_ms: int = SKIP_MS
    max_spikes: int = MAX_SPIKES
    bootstrap_replicates: int = BOOTSTRAP_REPLICATES
    bootstrap_seed: int = 0

    def check(self, duration_ms: int, where: Path, flags: str = "--") -> None:
        """The protocol fits simulations of `duration_ms` (those of the split `where`); errors
        name the flags `{flags}burn-in-ms`, ... (the sweep's are --eval-burn-in-ms, ...)."""
        if not 0 <= self.burn_in_ms < self.window_ms:
            raise UserError(f"{flags}burn-in-ms", f"must lie in 0..window_ms - 1 = "
                                                  f"{self.window_ms - 1}, got {self.burn_in_ms}")
        if not 0 <= self.skip_ms < duration_ms:
            raise UserError(f"{flags}skip-ms", f"must lie in 0..{duration_ms - 1} for the "
                                               f"{duration_ms} ms simulations of {where}, "
                                               f"got {self.skip_ms}")
        if self.max_spikes < 0:
            raise UserError(f"{flags}max-spikes", f"must be at least 0, got {self.max_spikes}")
        if self.protocol not in EVALUATORS:
            raise UserError(f"{flags}protocol", f"must be one of {', '.join(EVALUATORS)}, got "
                                                f"{self.protocol!r}")
        if self.bootstrap_replicates < 1:
            raise UserError(f"{flags}bootstrap-replicates", f"must be at least 1, got "
                                                            f"{self.bootstrap_replicates}")

    def burn_in_for(self, receptive_field_ms: float | None) -> int:
        """The burn-in this evaluator uses for a model: Beniaguev's rule, min(max(receptive
        field + 1, min(150, W - 50)), 250), for a model with a finite receptive field (a TCN),
        the protocol's own otherwise."""
        if self.protocol != "beniaguev" or receptive_field_ms is None:
            return self.burn_in_ms
        rule = max(int(receptive_field_ms) + 1, min(self.burn_in_ms, self.window_ms - 50))
        return min(rule, 250)


PROTOCOL_HELP = {
    "protocol": "published evaluator: elm (soma rescaled per file, here per shard) or "
                "beniaguev (pooled over the split, TCN burn-in from its receptive field, extra "
                "spike filters)",
    "window_ms": "prediction window",
    "burn_in_ms": "discarded start of each window after the first",
    "skip_ms": "unscored start of each simulation",
    "max_spikes": "drop simulations with more output spikes (whole simulation) than this",
    "bootstrap_replicates": "resamples of the test simulations for the 95 %% intervals",
    "bootstrap_seed": "seed of the resamples (the same for every model: paired differences)",
}


def add_protocol_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """One flag per Protocol field, `--{prefix}window-ms` ...: evaluate's own, and the sweep's
    (prefix `eval-`) for scoring its points the same way."""
    for field in fields(Protocol):
        flag, text = f"--{prefix}{field.name.replace('_', '-')}", PROTOCOL_HELP[field.name]
        if field.name == "protocol":
            parser.add_argument(flag, choices=EVALUATORS, default=field.default,
                                help=f"{text} (default {field.default})")
            continue
        parser.add_argument(flag, type=int, default=field.default,
                            metavar="MS" if field.name.endswith("_ms") else "N",
                            help=f"{text} (default {field.default})")


def protocol_from_args(args: argparse.Namespace, prefix: str = "") -> Protocol:
    """The Protocol of the flags `add_protocol_arguments(parser, prefix)` added."""
    dest = prefix.replace("-", "_")
    return Protocol(**{f.name: getattr(args, dest + f.name) for f in fields(Protocol)})
