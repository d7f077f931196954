"""Training one surrogate on a sharded data set (DIR/train, validated on DIR/valid): the
`train` stage and the sweep both call `train` here.

Writes OUT/best.pt (best validation soma RMSE, then AUC), OUT/last.pt (weights plus the
optimiser state, for --resume), OUT/train_log.csv (one row per validation, for DVC plots)
and OUT/train_metrics.json (the best validation figures). Every file is replaced
atomically, so an interrupted run loses at most the steps since its last validation, and
`--resume` continues from there to the same result as an uninterrupted run (on the CPU).
"""


from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.runtime.files import write_text_atomic
from pipeline.training.settings import TrainSettings

LOG_NAME = "train_log.csv"


METRICS_NAME = "train_metrics.json"


LOG_COLUMNS = ("step", "loss", "spike_loss", "soma_loss", "lr", "val_loss", "val_soma_rmse_mv",
               "val_spike_auc", "seconds")


def read_log(path: Path, up_to_step: int) -> list[dict[str, str]]:
    """Rows of an earlier run up to its checkpoint; later rows would be written again."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if int(row["step"]) <= up_to_step]


def write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


@dataclass
class RunSpec:
    """What identifies a run: a resume must find exactly the same."""

    data: str
    model: str
    model_settings: dict[str, Any]
    settings: dict[str, Any]

    def comparable(self) -> dict[str, Any]:
        # The number of loader processes does not change the batches.
        settings = {k: v for k, v in self.settings.items() if k != "num_workers"}
        return {"data": self.data, "model": self.model, "model_settings": self.model_settings,
                "settings": settings}


def model_settings_for_data(name: str, settings: dict[str, Any], train_dir: Path
                            ) -> dict[str, Any]:
    """The user's settings completed with what the data fixes: the input sizes and, for
    morphology routing, the branch of every segment."""
    from pipeline.datasets.contract import Dataset, ShardReader

    data = Dataset(train_dir)
    info = data.info
    full = dict(settings)
    for key, value in (("num_exc", info.num_exc), ("num_inh", info.num_inh)):
        if key in full and full[key] != value:
            raise UserError("--set", f"{key}={full[key]} does not match the data set "
                                     f"({train_dir} has {key} = {value})")
        full[key] = value
    # Models grouping synapses by real dendritic branches need every segment's branch id.
    wants_branches = {"branch_elm": full.get("routing") == "morphology",
                      "elm_network": float(full.get("branch_bias", 0.0)) > 0}
    if wants_branches.get(name, False) and "segment_branch" not in full:
        with ShardReader(data.shard_paths[0]) as reader:
            segments = reader.segments
        if segments is None:
            raise UserError(train_dir, f"{name} with these settings needs segments/branch, "
                                       f"which this data set does not have (NeuronIO files "
                                       f"carry none)")
        full["segment_branch"] = [int(b) for b in segments.branch]
    return full


def train(data: Path, model_name: str, out: Path, settings: TrainSettings,
          model_settings: dict[str, Any] | None = None, device_name: str = "auto",
          resume: bool = False, show_progress: bool = True,
          stop_at: int | None = None) -> dict[str, Any]:
    """Train and return the best validation figures; with `stop_at`, checkpoint after that
    step and return early (for runs split across jobs of a time-limited cluster queue)."""
    import torch
    from tqdm import tqdm

    from pipeline.runtime.devices import pick_device
    from pipeline.training.loop import (
        Progress,
        ValidationSet,
        is_better,
        make_optimizer,
        train_steps,
        training_windows,
        validate,
        validation_windows,
    )
    from surrogates import build, read_checkpoint, save

    data, out = Path(data), Path(out)
    device = pick_device(device_name)
    train_dir, valid_dir = data / "train", data / "valid"
    for folder in (train_dir, valid_dir):
        if not folder.is_dir():
            raise UserError(folder, "missing: --data must be a shard root with train/ and "
                                    "valid/ (made by `neurosurrogate shard`)")
    spec = RunSpec(str(data.resolve()), model_name,
                   model_settings_for_data(model_name, model_settings or {}, train_dir),
                   settings.to_dict())
    torch.manual_seed(settings.seed)
    model = build(model_name, **spec.model_settings)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if last_path.exists() and not resume:
        raise UserError(out, "already holds a training run: pass --resume to continue it, or "
                             "choose another --out")
    windows = training_windows(train_dir, settings)
    valid = validation_windows(valid_dir, settings)
    val_set = ValidationSet.from_windows(valid)
    model.to(device)
    optimizer, scheduler = make_optimizer(model, settings)
    progress = Progress()
    rows: list[dict[str, Any]] = []
    # Training-loss sums since the last log row: kept in the checkpoint so that a resumed
    # run logs the same averages as an uninterrupted one.
    totals = {"loss": 0.0, "spike_loss": 0.0, "soma_loss": 0.0, "count": 0.0}
    if resume and last_path.exists():
        payload = read_checkpoint(last_path)
        extra = payload["extra"]
        earlier = RunSpec(**extra["spec"])
        if earlier.comparable() != spec.comparable():
            raise UserError(last_path, "was written by a run with other settings; resume needs "
                                       "the same data, model and settings")
        model.load_state_dict(payload["state_dict"])
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        progress = Progress(extra["step"], extra["seconds"], extra["best"], extra["best_step"])
        rows = read_log(out / LOG_NAME, progress.step)
        totals = extra["totals"]
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()

    def elapsed() -> float:
        return progress.seconds + time.perf_counter() - started

    def save_last() -> None:
        save(model, last_path, extra={
            "spec": spec.__dict__, "step": progress.step, "seconds": elapsed(),
            "best": progress.best, "best_step": progress.best_step, "totals": totals,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})

    def validate_and_log() -> None:
        metrics = validate(model, val_set, settings, device)
        count = max(totals.pop("count"), 1)
        rows.append({"step": progress.step,
                     **{k: f"{v / count:.6g}" for k, v in totals.items()},
                     "lr": f"{scheduler.get_last_lr()[0]:.6g}",
                     **{k: f"{v:.6g}" for k, v in metrics.items()},
                     "seconds": f"{elapsed():.2f}"})
        totals.update(loss=0.0, spike_loss=0.0, soma_loss=0.0, count=0.0)
        if is_better(metrics, progress.best):
            progress.best, progress.best_step = metrics, progress.step
            save(model, best_path, extra={"step": progress.step, **metrics})
        write_log(out / LOG_NAME, rows)

    bar = tqdm(total=settings.steps, initial=progress.step, disable=not show_progress,
               desc=f"train {model_name}", unit="step", dynamic_ncols=True)
    last_seen = time.perf_counter()
    for losses in train_steps(model, windows, settings, device, optimizer, scheduler,
                              progress):
        totals["loss"] += losses.total.item()
        totals["spike_loss"] += losses.spike.item()
        totals["soma_loss"] += losses.soma.item()
        totals["count"] += 1
        now = time.perf_counter()
        bar.update(1)
        bar.set_postfix(loss=f"{losses.total.item():.4f}",
                        windows_s=f"{settings.batch_size / max(now - last_seen, 1e-9):.0f}",
                        refresh=False)  # the bar redraws at its own pace
        last_seen = now
        due = progress.step % settings.val_every == 0 or progress.step == settings.steps
        if due:
            validate_and_log()
        if due or progress.step == stop_at:
            save_last()
        if progress.step == stop_at:
            break
    bar.close()
    progress.seconds = elapsed()
    if progress.step < settings.steps:
        print(f"{out}: stopped at step {progress.step} of {settings.steps}; continue with "
              f"--resume")
        return {"model": model_name, "steps": progress.step, "stopped": True}
    result = {"model": model_name, "num_params": model.num_params(), "steps": progress.step,
              "best_step": progress.best_step, **progress.best,
              "train_seconds": round(progress.seconds, 2), "device": str(device)}
    write_text_atomic(out / METRICS_NAME, json.dumps(result, indent=1))
    print(f"{out}: best step {progress.best_step} of {progress.step}, validation soma RMSE "
          f"{progress.best['val_soma_rmse_mv']:.3f} mV, AUC "
          f"{progress.best['val_spike_auc']:.4f}; {model.num_params():,} parameters")
    return result
