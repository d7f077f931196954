"""Each model's published training recipe, as data: which TrainSettings fields it sets, and
the schedules (a step's learning rate and loss weights) that the recipes name.

`train --recipe NAME` (params.yaml: a model's `recipe:`) starts the run's settings from
RECIPES[NAME]; every field a flag or a params.yaml key gives explicitly still wins
(pipeline.config.training.resolve_settings). `none` is no recipe: TrainSettings' defaults, our
own choices (loss after a 150 ms burn-in, gradient clipping 1.0, bf16 autocast on the GPU).

Sources: ../shared/reference/surrogates.md, "Training recipe (reference)" (the ELM code) and
"TCN" (Beniaguev's fitting script). A leaf module (no torch, no pipeline imports but the
protocol numbers), so that check-params and `--help` read it for free.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pipeline.protocol import SOMA_CLIP_MV, SOMA_SCALE

NO_RECIPE = "none"
OPTIMIZERS = ("adam", "nadam")  # torch.optim.Adam, torch.optim.NAdam (Keras' Nadam)
PRECISIONS = ("bf16_on_gpu", "fp32")  # bf16 autocast on a GPU (fp32 on the CPU), or fp32

# Beniaguev's schedule: (first epoch, lr, spike BCE weight, soma MSE weight on the mV scale)
# over 250 epochs of 100 steps (25,000 steps); the dendritic-PCA weight is left out (no head).
BENIAGUEV_EPOCHS = 250
BENIAGUEV_STEPS = 25_000
BENIAGUEV_TABLE = ((0, 1e-4, 1.0, 0.02), (40, 3e-5, 2.0, 0.01), (80, 1e-5, 4.0, 0.01),
                   (120, 3e-6, 8.0, 0.01), (160, 1e-6, 9.0, 0.003))
# Our models predict the soma on the (V + 67.7) * 0.1 scale, so the MSE they see is
# SOMA_SCALE**2 times the mV-scale one: a mV-scale weight w becomes w / SOMA_SCALE**2.
MV_TO_TRAINING_SCALE = round(1.0 / SOMA_SCALE ** 2, 9)  # 100


def beniaguev_epoch(step: int, steps: int) -> int:
    """The epoch (0-249) of `step` when the 250 epochs share `steps` steps equally (100 steps
    each at the published 25,000; fewer or more when `steps` differs)."""
    return min(BENIAGUEV_EPOCHS - 1, max(0, step) * BENIAGUEV_EPOCHS // steps)


def _beniaguev_factors(step: int, steps: int) -> tuple[float, float, float]:
    """lr, spike and soma weight at `step` relative to epoch 0's (1e-4, 1.0, 0.02)."""
    epoch = beniaguev_epoch(step, steps)
    _, lr0, spike0, soma0 = BENIAGUEV_TABLE[0]
    _, lr, spike, soma = next(row for row in reversed(BENIAGUEV_TABLE) if row[0] <= epoch)
    return lr / lr0, spike / spike0, soma / soma0


def _cosine_factors(step: int, steps: int, floor: float) -> tuple[float, float, float]:
    progress = min(max(step, 0), steps) / steps
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)), 1.0, 1.0


# name -> (step, steps, lr_final_fraction) -> factors of (lr, w_spike, w_soma)
SCHEDULES: dict[str, Callable[[int, int, float], tuple[float, float, float]]] = {
    "cosine": _cosine_factors,  # lr cosine-decayed to lr * lr_final_fraction, fixed weights
    # Beniaguev's per-epoch lr and loss weights, relative to epoch 0 (so --lr, --w-spike and
    # --w-soma scale the whole table); lr_final_fraction unused
    "beniaguev_epochs": lambda step, steps, _floor: _beniaguev_factors(step, steps),
}


def schedule_at(settings: Any, step: int) -> tuple[float, float, float]:
    """(lr, w_spike, w_soma) of the optimiser step `step` (0-based) of a run with these
    TrainSettings."""
    f_lr, f_spike, f_soma = SCHEDULES[settings.schedule](step, settings.steps,
                                                         settings.lr_final_fraction)
    return settings.lr * f_lr, settings.w_spike * f_spike, settings.w_soma * f_soma


@dataclass(frozen=True)
class Recipe:
    """A published recipe: the optimiser, L2, init scale, precision and schedule it uses, and
    the other TrainSettings fields it sets (`settings`); fields it leaves out keep
    TrainSettings' defaults."""

    name: str
    source: str
    optimizer: str
    l2: float  # Keras kernel_regularizer l2(l2) on every kernel
    init_scale: float  # truncated-normal std of every hidden kernel; 0: the model's own init
    precision: str
    schedule: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def train_settings(self) -> dict[str, Any]:
        """The TrainSettings fields this recipe sets."""
        return {**self.settings, "optimizer": self.optimizer, "l2": self.l2,
                "init_scale": self.init_scale, "precision": self.precision,
                "schedule": self.schedule}


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe(
        name="elm",
        source="Spieler et al. 2024, the reference ELM training code (branch_elm, elm, lstm)",
        optimizer="adam", l2=0.0, init_scale=0.0, precision="fp32", schedule="cosine",
        settings=MappingProxyType({
            "steps": 350_000,  # ~35 epochs of ~10k batches
            "batch_size": 8, "window_ms": 500, "min_start_ms": 500,
            "burn_in_ms": 0,  # the loss covers the whole window
            "lr": 5e-4, "lr_final_fraction": 0.0,  # cosine decay to 0 over all steps
            "w_spike": 0.5, "w_soma": 0.5,  # on the (V + 67.7) * 0.1 scale, as published
            "soma_clip_mv": SOMA_CLIP_MV,
            "grad_clip": 0.0,  # no clipping
        })),
    Recipe(
        name="tcn_beniaguev",
        source="Beniaguev et al. 2021, the original TCN fitting script",
        optimizer="nadam", l2=1e-8, init_scale=0.002, precision="fp32",
        schedule="beniaguev_epochs",
        settings=MappingProxyType({
            "steps": BENIAGUEV_STEPS,  # 250 "epochs" of 100 steps
            "batch_size": 8, "window_ms": 400,
            "min_start_ms": 500,  # not in the sheet: ours
            "burn_in_ms": 0,  # the Keras loss covers every output bin
            "lr": BENIAGUEV_TABLE[0][1], "lr_final_fraction": 0.0,
            "w_spike": BENIAGUEV_TABLE[0][2],
            # 0.02 on the soma in mV (clipped, minus -67.7, not scaled by 0.1) = 2.0 on ours
            "w_soma": round(BENIAGUEV_TABLE[0][3] * MV_TO_TRAINING_SCALE, 12),
            "soma_clip_mv": SOMA_CLIP_MV,
            "grad_clip": 0.0,  # Keras' default: no clipping
        })),
)}
RECIPE_NAMES = (NO_RECIPE, *RECIPES)


def recipe_settings(name: str) -> dict[str, Any]:
    """The TrainSettings fields recipe `name` sets (none for `none`); KeyError if unknown."""
    if name == NO_RECIPE:
        return {}
    return RECIPES[name].train_settings()
