"""One training run from start (or its last checkpoint) to its best model: the `train` stage
and every point of the sweep call `train` here.

A run is a function of its RunSpec (data, model, model settings, TrainSettings). A
TrainingRun holds what changes as it goes (weights, optimiser and scheduler state,
`Progress`, the loss sums since the last log row) and writes all of it to LAST_CHECKPOINT,
so that a resumed run logs, selects and ends exactly as an uninterrupted one (on the CPU).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pipeline.config.training import TrainSettings
from pipeline.datasets.dataset import Dataset
from pipeline.datasets.shards import ShardReader
from pipeline.errors import UserError
from pipeline.filenames import TRAIN_LOG, TRAIN_METRICS
from pipeline.runtime.devices import pick_device
from pipeline.runtime.files import write_text_atomic
from pipeline.training.loop import (
    Losses,
    Progress,
    ValidationSet,
    init_kernels,
    is_better,
    make_optimizer,
    train_steps,
    training_windows,
    validate,
    validation_windows,
)
from pipeline.training.train_log import read_log, write_log
from pipeline.training.windows import WindowDataset
from surrogates import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    Surrogate,
    build,
    model_names,
    read_checkpoint,
    save,
)
from surrogates.errors import ModelError


@dataclass
class RunSpec:
    """What identifies a run: a resume must find exactly the same."""

    data: str
    model: str
    model_settings: dict[str, Any]
    settings: dict[str, Any]

    def comparable(self) -> dict[str, Any]:
        # The number of loader processes does not change the batches; a field a run of an
        # older version did not record had its (recipe none) default then.
        settings = {**TrainSettings().to_dict(), **self.settings}
        settings = {k: v for k, v in settings.items() if k != "num_workers"}
        return {"data": self.data, "model": self.model, "model_settings": self.model_settings,
                "settings": settings}


def wants_branches(name: str, settings: dict[str, Any]) -> bool:
    """Whether the model groups synapses by real dendritic branches with these settings."""
    if name == "branch_elm":
        return settings.get("routing") == "morphology"
    bias = settings.get("branch_bias", 0.0)
    # A bias that is no number is left to the model config to refuse.
    return name == "elm_network" and isinstance(bias, int | float) and bias > 0


def model_settings_for_data(name: str, settings: dict[str, Any], train_dir: Path
                            ) -> dict[str, Any]:
    """The user's settings completed with what the data fixes: the input sizes and, for
    morphology routing or a branch bias, the branch of every segment."""
    data = Dataset(train_dir)
    info = data.info
    full = dict(settings)
    for key, value in (("num_exc", info.num_exc), ("num_inh", info.num_inh)):
        if key in full and full[key] != value:
            raise UserError("--set", f"{key}={full[key]} does not match the data set "
                                     f"({train_dir} has {key} = {value})")
        full[key] = value
    if wants_branches(name, full) and "segment_branch" not in full:
        with ShardReader(data.shard_paths[0]) as reader:
            segments = reader.segments()
        if segments is None:
            raise UserError(train_dir, f"{name} with these settings needs segments/branch, "
                                       f"which this data set does not have (NeuronIO files "
                                       f"carry none)")
        full["segment_branch"] = [int(b) for b in segments.branch]
    return full


def shard_folders(data: Path) -> tuple[Path, Path]:
    """DIR/train and DIR/valid of the shard root `data`."""
    folders = data / "train", data / "valid"
    for folder in folders:
        if not folder.is_dir():
            raise UserError(folder, "missing: --data must be a shard root with train/ and "
                                    "valid/ (made by `neurosurrogate shard`)")
    return folders


class TrainingRun:
    """A run in progress: its model, optimiser, scheduler and `Progress`, the rows of its log
    and the training-loss sums since the last row; what LAST_CHECKPOINT holds to resume it."""

    def __init__(self, spec: RunSpec, settings: TrainSettings, model: Surrogate, out: Path,
                 device: torch.device, val_set: ValidationSet):
        self.spec, self.settings, self.model = spec, settings, model
        self.out, self.device, self.val_set = out, device, val_set
        self.last_path, self.best_path = out / LAST_CHECKPOINT, out / BEST_CHECKPOINT
        self.optimizer, self.scheduler = make_optimizer(model, settings)
        self.progress = Progress()
        self.rows: list[dict[str, Any]] = []
        # Kept in the checkpoint so that a resumed run logs the same averages.
        self.totals = {"loss": 0.0, "spike_loss": 0.0, "soma_loss": 0.0, "count": 0.0}
        self.started = time.perf_counter()

    def resume(self) -> None:
        """Continue from LAST_CHECKPOINT, which must come from a run of the same spec."""
        payload = read_checkpoint(self.last_path)
        extra = payload["extra"]
        if RunSpec(**extra["spec"]).comparable() != self.spec.comparable():
            raise UserError(self.last_path, "was written by a run with other settings; resume "
                                            "needs the same data, model and settings")
        self.model.load_state_dict(payload["state_dict"])
        self.optimizer.load_state_dict(extra["optimizer"])
        self.scheduler.load_state_dict(extra["scheduler"])
        self.progress = Progress(extra["step"], extra["seconds"], extra["best"],
                                 extra["best_step"])
        self.rows = read_log(self.out / TRAIN_LOG, self.progress.step)
        self.totals = extra["totals"]

    def elapsed(self) -> float:
        """Training seconds over all the jobs of this run so far."""
        return self.progress.seconds + time.perf_counter() - self.started

    def save_last(self) -> None:
        p = self.progress
        save(self.model, self.last_path, extra={
            "spec": self.spec.__dict__, "recipe": self.settings.recipe, "step": p.step,
            "seconds": self.elapsed(),
            "best": p.best, "best_step": p.best_step, "totals": self.totals,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()})

    def add(self, losses: Losses) -> None:
        self.totals["loss"] += losses.total.item()
        self.totals["spike_loss"] += losses.spike.item()
        self.totals["soma_loss"] += losses.soma.item()
        self.totals["count"] += 1

    def validate_and_log(self) -> None:
        """Score the validation windows, append a log row (the mean training losses since the
        last one) and keep BEST_CHECKPOINT if this step is the best so far."""
        metrics = validate(self.model, self.val_set, self.settings, self.device)
        totals, p = self.totals, self.progress
        count = max(totals.pop("count"), 1)
        self.rows.append({"step": p.step,
                          **{k: f"{v / count:.6g}" for k, v in totals.items()},
                          "lr": f"{self.scheduler.get_last_lr()[0]:.6g}",
                          **{k: f"{v:.6g}" for k, v in metrics.items()},
                          "seconds": f"{self.elapsed():.2f}"})
        totals.update(loss=0.0, spike_loss=0.0, soma_loss=0.0, count=0.0)
        if is_better(metrics, p.best):
            p.best, p.best_step = metrics, p.step
            save(self.model, self.best_path, extra={"step": p.step, **metrics,
                                                    "recipe": self.settings.recipe})
        write_log(self.out / TRAIN_LOG, self.rows)

    def run_steps(self, windows: WindowDataset, stop_at: int | None, show_progress: bool
                  ) -> None:
        """Train up to the last step, or `stop_at`: validate every val_every steps and
        checkpoint then and at `stop_at`."""
        settings, progress = self.settings, self.progress
        self.started = time.perf_counter()
        bar = tqdm(total=settings.steps, initial=progress.step, disable=not show_progress,
                   desc=f"train {self.spec.model}", unit="step", dynamic_ncols=True)
        last_seen = time.perf_counter()
        for losses in train_steps(self.model, windows, settings, self.device, self.optimizer,
                                  self.scheduler, progress):
            self.add(losses)
            now = time.perf_counter()
            bar.update(1)
            bar.set_postfix(loss=f"{losses.total.item():.4f}",
                            windows_s=f"{settings.batch_size / max(now - last_seen, 1e-9):.0f}",
                            refresh=False)  # the bar redraws at its own pace
            last_seen = now
            due = progress.step % settings.val_every == 0 or progress.step == settings.steps
            if due:
                self.validate_and_log()
            if due or progress.step == stop_at:
                self.save_last()
            if progress.step == stop_at:
                break
        bar.close()
        progress.seconds = self.elapsed()

    def finish(self) -> dict[str, Any]:
        """Write TRAIN_METRICS (the best validation figures) and return them."""
        p, model = self.progress, self.model
        result = {"model": self.spec.model, "recipe": self.settings.recipe,
                  "num_params": model.num_params(), "steps": p.step,
                  "best_step": p.best_step, **p.best, "train_seconds": round(p.seconds, 2),
                  "device": str(self.device)}
        write_text_atomic(self.out / TRAIN_METRICS, json.dumps(result, indent=1))
        print(f"{self.out}: best step {p.best_step} of {p.step}, validation soma RMSE "
              f"{p.best['val_soma_rmse_mv']:.3f} mV, AUC {p.best['val_spike_auc']:.4f}; "
              f"{model.num_params():,} parameters")
        return result


def build_model(name: str, settings: dict[str, Any]) -> Surrogate:
    """A fresh model from --model and --set, its errors naming the flag at fault."""
    if name not in model_names():
        raise UserError("--model", f"unknown model {name!r}; known: {', '.join(model_names())}")
    try:
        return build(name, **settings)
    except ModelError as err:
        raise ModelError(err.problem, where="--set") from None


def train(data: Path, model_name: str, out: Path, settings: TrainSettings,
          model_settings: dict[str, Any] | None = None, device_name: str = "auto",
          resume: bool = False, show_progress: bool = True,
          stop_at: int | None = None) -> dict[str, Any]:
    """Train and return the best validation figures; with `stop_at`, checkpoint after that
    step and return early (for runs split across jobs of a time-limited cluster queue)."""
    data, out = Path(data), Path(out)
    device = pick_device(device_name)
    train_dir, valid_dir = shard_folders(data)
    spec = RunSpec(str(data.resolve()), model_name,
                   model_settings_for_data(model_name, model_settings or {}, train_dir),
                   settings.to_dict())
    torch.manual_seed(settings.seed)
    model = build_model(model_name, spec.model_settings)
    init_kernels(model, settings.init_scale)
    if (out / LAST_CHECKPOINT).exists() and not resume:
        raise UserError(out, "already holds a training run: pass --resume to continue it, or "
                             "choose another --out")
    windows = training_windows(train_dir, settings)
    val_set = ValidationSet.from_windows(validation_windows(valid_dir, settings))
    model.to(device)
    run = TrainingRun(spec, settings, model, out, device, val_set)
    if resume and run.last_path.exists():
        run.resume()
    out.mkdir(parents=True, exist_ok=True)
    run.run_steps(windows, stop_at, show_progress)
    if run.progress.step < settings.steps:
        print(f"{out}: stopped at step {run.progress.step} of {settings.steps}; continue "
              f"with --resume")
        return {"model": model_name, "steps": run.progress.step, "stopped": True}
    return run.finish()
