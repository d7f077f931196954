"""The training loop: random windows, the published loss, Adam with cosine decay.

Everything a run depends on is in `TrainSettings`, the model config and the data, and the
loader's window k is a pure function of (seed, k), so a run stopped at a checkpoint and
resumed replays exactly the batches, learning rates and optimiser steps the uninterrupted
run would have (bit-identical on the CPU, which `tests/test_train.py` checks).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.metrics import soma_scores, spike_scores
from pipeline.windows import WindowDataset, window_loader
from surrogates.base import Surrogate


@dataclass(frozen=True)
class TrainSettings:
    """One training run's settings (the `train` section of params.yaml)."""

    steps: int = 2000
    batch_size: int = 8
    window_ms: int = 500
    min_start_ms: int = 500  # windows start this far into a simulation where it allows
    burn_in_ms: int = 150  # first part of each window left out of the loss
    lr: float = 5e-4
    lr_final_fraction: float = 0.0  # cosine decay from lr to lr * this at the last step
    w_spike: float = 0.5  # weight of the spike BCE
    w_soma: float = 0.5  # weight of the soma MSE (training scale)
    soma_clip_mv: float = -55.0  # soma target clipped from above, as published
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    val_every: int = 100  # validate (and checkpoint) every this many steps
    val_windows: int = 64  # fixed validation windows from the valid split
    seed: int = 0
    num_workers: int = 0  # loader processes; batches are identical for any number

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "window_ms", "val_every", "val_windows")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.burn_in_ms < self.window_ms:
            raise ValueError(f"burn_in_ms must be in [0, window_ms), got {self.burn_in_ms}")
        if self.lr <= 0 or not 0 <= self.lr_final_fraction <= 1:
            raise ValueError("need lr > 0 and 0 <= lr_final_fraction <= 1")
        if self.w_spike < 0 or self.w_soma < 0 or self.w_spike + self.w_soma == 0:
            raise ValueError("loss weights must be >= 0 and not both 0")
        if self.grad_clip < 0 or self.min_start_ms < 0 or self.num_workers < 0:
            raise ValueError("grad_clip, min_start_ms and num_workers must be >= 0")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Losses:
    total: torch.Tensor
    spike: torch.Tensor
    soma: torch.Tensor


def soma_target(soma_mv: torch.Tensor, model: Surrogate, clip_mv: float) -> torch.Tensor:
    """The voltage the model learns: clipped at the spike threshold, then scaled."""
    cfg = model.config
    return (soma_mv.clamp(max=clip_mv) - cfg.soma_offset_mv) * cfg.soma_scale


def window_losses(y: torch.Tensor, batch: dict[str, torch.Tensor], model: Surrogate,
                  settings: TrainSettings) -> Losses:
    """w_spike * BCE-with-logits + w_soma * MSE over the bins after the burn-in."""
    keep = slice(settings.burn_in_ms, None)
    y = y[:, keep].float()
    spike = F.binary_cross_entropy_with_logits(y[..., 0], batch["spikes"][:, keep])
    target = soma_target(batch["soma_mv"][:, keep], model, settings.soma_clip_mv)
    soma = F.mse_loss(y[..., 1], target)
    return Losses(settings.w_spike * spike + settings.w_soma * soma, spike, soma)


def lr_factor(step: int, settings: TrainSettings) -> float:
    """Cosine decay over all steps, as the reference recipe."""
    progress = min(step, settings.steps) / settings.steps
    floor = settings.lr_final_fraction
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: Surrogate, settings: TrainSettings
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                 lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  lambda step: lr_factor(step, settings))
    return optimizer, scheduler


@dataclass(frozen=True)
class ValidationSet:
    """A fixed set of windows from the valid split, held in memory as bits."""

    inputs: torch.Tensor  # bool [n, T, inputs]
    spikes: torch.Tensor  # float32 [n, T]
    soma_mv: torch.Tensor  # float32 [n, T]

    @classmethod
    def from_windows(cls, windows: WindowDataset) -> ValidationSet:
        items = [windows[i] for i in range(len(windows))]
        return cls(torch.stack([it["inputs"] > 0 for it in items]),
                   torch.stack([it["spikes"] for it in items]),
                   torch.stack([it["soma_mv"] for it in items]))


@torch.no_grad()
def validate(model: Surrogate, data: ValidationSet, settings: TrainSettings,
             device: torch.device, batch_size: int = 16) -> dict[str, float]:
    """Loss, soma RMSE (mV, clipped, not rescaled: selection should reward the right scale)
    and spike AUC over the bins after the burn-in."""
    was_training = model.training
    model.eval()
    keep = slice(settings.burn_in_ms, None)
    outputs = []
    for start in range(0, len(data.inputs), batch_size):
        x = data.inputs[start:start + batch_size].to(device, torch.float32)
        with autocast(device):
            outputs.append(model(x).float().cpu())
    model.train(was_training)
    y = torch.cat(outputs)
    losses = window_losses(y, {"spikes": data.spikes, "soma_mv": data.soma_mv}, model, settings)
    soma = soma_scores(data.soma_mv[:, keep].numpy(), model.soma_mv(y[:, keep]).numpy(),
                       settings.soma_clip_mv)
    try:
        auc = spike_scores(data.spikes[:, keep].numpy(),
                           torch.sigmoid(y[:, keep, 0]).numpy()).auc
    except ValueError:  # no spike in the validation windows: AUC undefined
        auc = float("nan")
    return {"val_loss": float(losses.total), "val_soma_rmse_mv": soma["soma_rmse_mv_raw"],
            "val_spike_auc": auc}


def autocast(device: torch.device) -> torch.autocast:
    """bf16 on the GPU; on the CPU full float32 (and bit-reproducible resumes)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def is_better(candidate: dict[str, float], best: dict[str, float] | None) -> bool:
    """Lower validation soma RMSE wins; AUC breaks ties."""
    if best is None:
        return True

    def key(m: dict[str, float]) -> tuple[float, float]:
        auc = m["val_spike_auc"]
        return (m["val_soma_rmse_mv"], -auc if np.isfinite(auc) else 0.0)
    return key(candidate) < key(best)


@dataclass
class Progress:
    """Where a run stands; what a checkpoint must hold besides the weights."""

    step: int = 0
    seconds: float = 0.0
    best: dict[str, float] | None = None
    best_step: int = 0


def train_steps(model: Surrogate, windows: WindowDataset, settings: TrainSettings,
                device: torch.device, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LambdaLR, progress: Progress
                ) -> Iterator[Losses]:
    """Optimiser steps from progress.step on, one per batch; yields each step's losses
    (already applied) and advances progress.step."""
    model.train()
    loader = window_loader(windows, settings.batch_size, settings.num_workers,
                           start_batch=progress.step)
    batches = iter(loader)
    while progress.step < settings.steps:
        batch = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
        with autocast(device):
            y = model(batch["inputs"])
        losses = window_losses(y, batch, model, settings)
        optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        if settings.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        scheduler.step()
        progress.step += 1
        yield losses


def training_windows(folder: Any, settings: TrainSettings) -> WindowDataset:
    """Enough random windows for every step of the run."""
    return WindowDataset(folder, settings.window_ms, settings.min_start_ms,
                         num_windows=settings.steps * settings.batch_size, seed=settings.seed)


def validation_windows(folder: Any, settings: TrainSettings) -> WindowDataset:
    # Another stream than training's: the seed is offset by a constant.
    return WindowDataset(folder, settings.window_ms, settings.min_start_ms,
                         num_windows=settings.val_windows, seed=settings.seed + 7919)

