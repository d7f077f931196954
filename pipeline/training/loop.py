"""The training loop: random windows, the published loss, Adam (or NAdam) on a schedule of
learning rates and loss weights (pipeline.config.recipes: cosine, or Beniaguev's epochs).

Everything a run depends on is in `TrainSettings`, the model config and the data, and the
loader's window k is a pure function of (seed, k), so a run stopped at a checkpoint and
resumed replays exactly the batches, learning rates and optimiser steps the uninterrupted
run would have (bit-identical on the CPU, which `tests/test_train.py` checks).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.config.recipes import SCHEDULES, schedule_at
from pipeline.config.training import TrainSettings
from pipeline.evaluation.metrics import soma_scores, spike_scores
from pipeline.training.windows import WindowDataset, window_loader
from surrogates.base import Surrogate


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
                  settings: TrainSettings, weights: tuple[float, float] | None = None
                  ) -> Losses:
    """w_spike * BCE-with-logits + w_soma * MSE over the bins after the burn-in (all bins
    with burn_in_ms 0); `weights` (w_spike, w_soma) replace the settings' (a schedule's)."""
    w_spike, w_soma = weights if weights is not None else (settings.w_spike, settings.w_soma)
    keep = slice(settings.burn_in_ms, None)
    y = y[:, keep].float()
    spike = F.binary_cross_entropy_with_logits(y[..., 0], batch["spikes"][:, keep])
    target = soma_target(batch["soma_mv"][:, keep], model, settings.soma_clip_mv)
    soma = F.mse_loss(y[..., 1], target)
    return Losses(w_spike * spike + w_soma * soma, spike, soma)


def lr_factor(step: int, settings: TrainSettings) -> float:
    """The schedule's learning rate at `step` over settings.lr (cosine: decay over all
    steps, as the reference recipe)."""
    return SCHEDULES[settings.schedule](step, settings.steps, settings.lr_final_fraction)[0]


def is_kernel(param: torch.nn.Parameter) -> bool:
    """A weight matrix or convolution kernel (2+ dims): what Keras' kernel_regularizer and
    kernel_initializer act on; biases, norms and per-unit vectors are not."""
    return param.dim() >= 2


def make_optimizer(model: Surrogate, settings: TrainSettings
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """Adam or NAdam; l2 > 0 puts the kernels in a group of (coupled) weight decay 2 * l2,
    the gradient of Keras' l2 * sum(w**2), the rest in one without."""
    params = [p for p in model.parameters() if p.requires_grad]
    if settings.l2 > 0:
        groups: list[dict[str, Any]] = [
            {"params": [p for p in params if is_kernel(p)], "weight_decay": 2 * settings.l2},
            {"params": [p for p in params if not is_kernel(p)], "weight_decay": 0.0}]
    else:
        groups = [{"params": params}]
    kind = {"adam": torch.optim.Adam, "nadam": torch.optim.NAdam}[settings.optimizer]
    optimizer = kind(groups, lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  lambda step: lr_factor(step, settings))
    return optimizer, scheduler


@torch.no_grad()
def init_kernels(model: Surrogate, scale: float) -> None:
    """Every hidden kernel drawn from a normal of std `scale` cut at 2 std (Keras'
    TruncatedNormal, Beniaguev's per-layer initialiser); the output heads (`*head*`,
    `readout`) and every bias keep the model's own init. Nothing when scale is 0."""
    if scale <= 0:
        return
    for name, param in model.named_parameters():
        if is_kernel(param) and "head" not in name and "readout" not in name:
            torch.nn.init.trunc_normal_(param, std=scale, a=-2 * scale, b=2 * scale)


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
    """Loss, soma RMSE (mV, against the clipped truth, prediction not rescaled: selection
    should reward the right scale)
    and spike AUC over the bins after the burn-in. The loss weighs by w_spike and w_soma, a
    schedule's step-0 weights, so that it compares across the run."""
    was_training = model.training
    model.eval()
    keep = slice(settings.burn_in_ms, None)
    outputs = []
    for start in range(0, len(data.inputs), batch_size):
        x = data.inputs[start:start + batch_size].to(device, torch.float32)
        with autocast(device, settings.precision):
            outputs.append(model(x).float().cpu())
    model.train(was_training)
    y = torch.cat(outputs)
    losses = window_losses(y, {"spikes": data.spikes, "soma_mv": data.soma_mv}, model, settings)
    soma = soma_scores(data.soma_mv[:, keep].numpy(), model.soma_mv(y[:, keep]).numpy(),
                       clip_mv=settings.soma_clip_mv)
    try:
        auc = spike_scores(data.spikes[:, keep].numpy(),
                           torch.sigmoid(y[:, keep, 0]).numpy()).auc
    except ValueError:  # no spike in the validation windows: AUC undefined
        auc = float("nan")
    return {"val_loss": float(losses.total), "val_soma_rmse_mv": soma["soma_rmse_mv_raw"],
            "val_spike_auc": auc}


def autocast(device: torch.device, precision: str = "bf16_on_gpu") -> torch.autocast:
    """bf16 on the GPU with precision bf16_on_gpu; else (and on the CPU) full float32 (and
    bit-reproducible resumes)."""
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=device.type == "cuda" and precision == "bf16_on_gpu")


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
        with autocast(device, settings.precision):
            y = model(batch["inputs"])
        _, w_spike, w_soma = schedule_at(settings, progress.step)
        losses = window_losses(y, batch, model, settings, (w_spike, w_soma))
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

