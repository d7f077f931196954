"""A training run's settings, and how the command line makes them: the flags of every
TrainSettings field (shared by `train` and `sweep`), `--recipe` (pipeline.config.recipes) and
`--set KEY=VALUE` model settings.

Precedence of a field: a flag on the command line > its params.yaml key (null: not given) >
the recipe's value > TrainSettings' default.

Torch-free, so that `--help` and check-params need not import torch."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from typing import Any

import yaml

from pipeline.config.recipes import (
    NO_RECIPE,
    OPTIMIZERS,
    PRECISIONS,
    RECIPE_NAMES,
    SCHEDULES,
    recipe_settings,
)
from pipeline.errors import UserError
from pipeline.protocol import BURN_IN_MS, SOMA_CLIP_MV, WINDOW_MS

MIN_START_MS = 500  # training windows start this far into a simulation where it allows


class SettingError(ValueError):
    """A TrainSettings field out of its range; `field` names it, so that the command line
    can blame the flag and check-params the params.yaml key."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field} {problem}")


def flag_of(field: str) -> str:
    """The command-line flag of a TrainSettings field: batch_size -> --batch-size."""
    return "--" + field.replace("_", "-")


# The TrainSettings fields that take one of a few names, and those names.
CHOICES = {"optimizer": OPTIMIZERS, "precision": PRECISIONS, "schedule": tuple(SCHEDULES),
           "recipe": RECIPE_NAMES}


@dataclass(frozen=True)
class TrainSettings:
    """One training run's settings (the `train` section of params.yaml, but `recipe`, which is
    per model). The defaults are recipe `none`: our own choices, not a published recipe."""

    steps: int = 2000
    batch_size: int = 8
    window_ms: int = WINDOW_MS
    min_start_ms: int = MIN_START_MS
    burn_in_ms: int = BURN_IN_MS  # first part of each window left out of the loss
    lr: float = 5e-4
    lr_final_fraction: float = 0.0  # cosine decay from lr to lr * this at the last step
    w_spike: float = 0.5  # weight of the spike BCE
    w_soma: float = 0.5  # weight of the soma MSE (training scale)
    soma_clip_mv: float = SOMA_CLIP_MV  # soma target clipped from above, as published
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    val_every: int = 100  # validate (and checkpoint) every this many steps
    val_windows: int = 64  # fixed validation windows from the valid split
    seed: int = 0
    num_workers: int = 0  # loader processes; batches are identical for any number
    optimizer: str = "adam"  # adam or nadam
    l2: float = 0.0  # Keras-style L2: l2 * sum(w**2) of every kernel (2+ dims) in the loss
    init_scale: float = 0.0  # >0: hidden kernels drawn truncated-normal with this std
    precision: str = "bf16_on_gpu"  # bf16 autocast on a GPU, fp32 on the CPU; or fp32
    schedule: str = "cosine"  # lr and loss weights per step (recipes.SCHEDULES)
    recipe: str = NO_RECIPE  # the recipe the other fields started from (recorded only)

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "window_ms", "val_every", "val_windows")
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingError(name, f"must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.burn_in_ms < self.window_ms:
            raise SettingError("burn_in_ms", f"must be in [0, window_ms), got "
                                             f"{self.burn_in_ms}")
        if self.lr <= 0:
            raise SettingError("lr", f"must be > 0, got {self.lr}")
        if not 0 <= self.lr_final_fraction <= 1:
            raise SettingError("lr_final_fraction", f"must be in [0, 1], got "
                                                    f"{self.lr_final_fraction}")
        for name in ("w_spike", "w_soma", "grad_clip", "min_start_ms", "num_workers"):
            if getattr(self, name) < 0:
                raise SettingError(name, f"must be >= 0, got {getattr(self, name)}")
        if self.w_spike + self.w_soma == 0:
            raise SettingError("w_soma", "must be > 0 when w_spike is 0 (the loss would be 0)")
        for name, value in (("l2", self.l2), ("init_scale", self.init_scale)):
            if value < 0:
                raise SettingError(name, f"must be >= 0, got {value}")
        for name, known in CHOICES.items():
            if getattr(self, name) not in known:
                raise SettingError(name, f"must be one of {', '.join(known)}, got "
                                         f"{getattr(self, name)!r}")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainSettings field, `--batch-size` for `batch_size` (the key of params.yaml's
    train section, which `--params` reads), and `--recipe`. A field's flag defaults to None:
    not given, so the recipe's value or else TrainSettings' default (resolve_settings)."""
    defaults = TrainSettings()
    for name in TrainSettings.names():
        default = getattr(defaults, name)
        if name == "recipe":
            parser.add_argument("--recipe", dest="recipe", choices=RECIPE_NAMES,
                                default=NO_RECIPE,
                                help="start from this published recipe (elm: the ELM code's; "
                                     "tcn_beniaguev: Beniaguev's TCN script; none: our "
                                     "defaults, the default); flags still win")
            continue
        parser.add_argument(flag_of(name), dest=name, type=type(default), default=None,
                            choices=CHOICES.get(name), metavar=name.split("_")[-1].upper(),
                            help=(f"{' or '.join(CHOICES[name])} " if name in CHOICES
                                  else "") + f"(default {default}, or the recipe's)")


def resolve_settings(recipe: str, given: dict[str, Any]) -> TrainSettings:
    """TrainSettings from recipe `recipe` and the fields `given` explicitly (None: not given):
    given > recipe > default. A SettingError names the field at fault."""
    if recipe not in RECIPE_NAMES:
        raise SettingError("recipe", f"must be one of {', '.join(RECIPE_NAMES)}, got {recipe!r}")
    chosen = {k: v for k, v in given.items() if v is not None and k != "recipe"}
    unknown = set(chosen) - set(TrainSettings.names())
    if unknown:
        raise SettingError(sorted(unknown)[0], "is not a training setting")
    return TrainSettings(**{**recipe_settings(recipe), **chosen, "recipe": recipe})


def parse_model_settings(pairs: list[str]) -> dict[str, Any]:
    """`--set KEY=VALUE ...` as a dict, each value read as a YAML scalar."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError("--set", f"expected KEY=VALUE, got {pair!r}")
        try:
            settings[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UserError("--set", f"value of {key} is not a YAML scalar: {value!r}") from None
    return settings


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """The TrainSettings of a stage's parsed flags (add_settings_arguments): `--recipe`'s fields
    under the flags given; a value out of range is a UserError naming its flag."""
    given = {name: getattr(args, name) for name in TrainSettings.names() if name != "recipe"}
    try:
        return resolve_settings(getattr(args, "recipe", NO_RECIPE), given)
    except SettingError as err:
        raise UserError(flag_of(err.field), err.problem) from None
