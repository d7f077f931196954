"""Reading the folders `neurosurrogate evaluate` writes, checked: what the report needs of
each (metrics, ROC, the index of the predictions), with the traces read only when drawn.
Every problem is a UserError naming the file, so a bad folder is one line and writes nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import UserError
from pipeline.evaluation.metrics import fpr_key
from pipeline.evaluation.predictions import PREDICTION_DATASETS
from pipeline.filenames import EVAL_CONTEXT, EVAL_METRICS, PREDICTIONS, ROC_CSV
from pipeline.protocol import FPR_POINTS

# EVAL_METRICS key -> what it must hold; "number?" may also be null (shown as n/a).
REQUIRED_METRICS = {
    "label": "text",
    "model": "text",
    "num_params": "count",
    "spike_auc": "number?",
    fpr_key(FPR_POINTS[0]): "number?",
    "soma_rmse_mv": "number?",
    "soma_explained_variance_pct": "number?",
    "speedup_vs_neuron": "number?",
}


@dataclass(frozen=True)
class Evaluation:
    """What the report needs of one evaluation folder; traces are read only when drawn."""

    folder: Path
    metrics: dict[str, Any]
    fpr: np.ndarray
    tpr: np.ndarray
    sim_ids: np.ndarray
    spike_counts: np.ndarray  # true output spikes per simulation, aligned with sim_ids
    start_ms: float
    dt_ms: float
    num_steps: int
    # evaluation.json's "bootstrap": seed, sim_ids, replicates per metric; None when the
    # evaluation has none (written before intervals existed)
    bootstrap: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return self.metrics["label"]

    def interval(self, key: str) -> tuple[float, float]:
        """The 95 % bootstrap interval of a metric; NaN bounds where there is none."""
        return self.number(f"{key}_ci_low"), self.number(f"{key}_ci_high")

    def replicates(self, key: str) -> np.ndarray | None:
        """The metric's bootstrap replicates, for paired differences."""
        if self.bootstrap is None or key not in self.bootstrap.get("replicates", {}):
            return None
        return np.asarray(self.bootstrap["replicates"][key], dtype=np.float64)

    def number(self, key: str) -> float:
        """A metric as a float; NaN when the evaluation could not compute it."""
        value = self.metrics.get(key)
        return math.nan if value is None else float(value)


def _check_metrics(path: Path, metrics: Any) -> dict[str, Any]:
    """`metrics` (read from `path`) holds every key of REQUIRED_METRICS, of its kind."""
    if not isinstance(metrics, dict):
        raise UserError(path, "is not a JSON object")
    missing = [key for key in REQUIRED_METRICS if key not in metrics]
    if missing:
        raise UserError(path, f"missing keys: {', '.join(missing)} (written by an older or "
                              f"another program? run `neurosurrogate evaluate` again)")
    for key, kind in REQUIRED_METRICS.items():
        value = metrics[key]
        if kind == "text":
            ok = isinstance(value, str) and value.strip() != ""
        elif kind == "count":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:
            ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        if not ok:
            want = {"text": "a non-empty string", "count": "a non-negative integer",
                    "number?": "a number or null"}[kind]
            raise UserError(path, f"{key!r} must be {want}, got {value!r}")
    return metrics


def read_metrics(folder: Path) -> dict[str, Any]:
    """The checked EVAL_METRICS of an evaluation folder."""
    if not folder.is_dir():
        raise UserError(folder, "no such evaluation folder")
    path = folder / EVAL_METRICS
    if not path.is_file():
        raise UserError(path, "missing: not an evaluation folder (run `neurosurrogate "
                              "evaluate` first)")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(path, f"not valid JSON ({err})") from None
    return _check_metrics(path, metrics)


def read_roc(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """FPR and TPR of a ROC_CSV file, checked to be a curve."""
    if not path.is_file():
        raise UserError(path, "missing (run `neurosurrogate evaluate` again)")
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().strip().replace(" ", "")
    if header != "fpr,tpr":
        raise UserError(path, f"header must be 'fpr,tpr', got {header!r}")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise UserError(path, f"not a two-column table of numbers ({err})") from None
    if table.shape[1] != 2 or len(table) < 2:
        raise UserError(path, f"needs at least two rows of fpr,tpr; got shape {table.shape}")
    fpr, tpr = table[:, 0], table[:, 1]
    if not (np.isfinite(table).all() and ((table >= 0) & (table <= 1)).all()
            and (np.diff(fpr) >= 0).all()):
        raise UserError(path, "rates must lie in [0, 1] with fpr in increasing order")
    return fpr, tpr


def read_prediction_index(path: Path) -> tuple[np.ndarray, np.ndarray, float, float, int]:
    """Simulation ids, true spike counts and time grid of predictions.h5, checked, without
    the traces."""
    import h5py

    if not path.is_file():
        raise UserError(path, "missing (run `neurosurrogate evaluate` again)")
    try:
        with h5py.File(path, "r") as h5:
            missing = [name for name in PREDICTION_DATASETS if name not in h5]
            if missing:
                raise UserError(path, f"missing datasets: {', '.join(missing)}")
            sim_ids = np.asarray(h5["sim_id"][()], dtype=np.int64)
            shapes = {name: h5[name].shape for name in PREDICTION_DATASETS[1:]}
            try:
                start_ms, dt_ms = float(h5.attrs["start_ms"]), float(h5.attrs["dt_ms"])
            except KeyError as err:
                raise UserError(path, f"missing attribute {err}") from None
    except OSError as err:
        raise UserError(path, f"not a readable HDF5 file ({err})") from None
    if sim_ids.ndim != 1 or len(set(shapes.values())) != 1:
        raise UserError(path, f"datasets disagree in shape: sim_id {sim_ids.shape}, "
                              + ", ".join(f"{k} {v}" for k, v in shapes.items()))
    (shape,) = set(shapes.values())
    if len(shape) != 2 or shape[0] != len(sim_ids):
        raise UserError(path, f"expected [{len(sim_ids)}, T] traces, got {shape}")
    if not dt_ms > 0:
        raise UserError(path, f"dt_ms must be positive, got {dt_ms}")
    with h5py.File(path, "r") as h5:
        counts = np.count_nonzero(h5["true_spikes"][()], axis=1)
    return sim_ids, counts, start_ms, dt_ms, shape[1]


def read_bootstrap(path: Path) -> dict[str, Any] | None:
    """The bootstrap block of an EVAL_CONTEXT file, checked; None when there is none."""
    if not path.is_file():
        return None
    try:
        context = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(path, f"not valid JSON ({err})") from None
    block = context.get("bootstrap") if isinstance(context, dict) else None
    if block is None:
        return None
    reps = block.get("replicates") if isinstance(block, dict) else None
    if (not isinstance(reps, dict) or not isinstance(block.get("sim_ids"), list)
            or len({len(v) for v in reps.values() if isinstance(v, list)}) != 1
            or not all(isinstance(v, list) for v in reps.values())):
        raise UserError(path, "bootstrap: expected sim_ids and replicates of equal length "
                              "(run `neurosurrogate evaluate` again)")
    return block


def load_evaluation(folder: Path) -> Evaluation:
    """Everything the report needs of one folder but the traces."""
    metrics = read_metrics(folder)
    fpr, tpr = read_roc(folder / ROC_CSV)
    sim_ids, counts, start_ms, dt_ms, steps = read_prediction_index(folder / PREDICTIONS)
    return Evaluation(folder, metrics, fpr, tpr, sim_ids, counts, start_ms, dt_ms, steps,
                      read_bootstrap(folder / EVAL_CONTEXT))


def load_evaluations(folders: Sequence[Path]) -> list[Evaluation]:
    """Every folder checked before anything is written, so bad input leaves --out alone."""
    if not folders:
        raise UserError("--evals", "give at least one evaluation folder")
    evals = [load_evaluation(Path(f)) for f in folders]
    seen: dict[str, Path] = {}
    for ev in evals:
        if ev.label in seen and seen[ev.label].resolve() == ev.folder.resolve():
            raise UserError(ev.folder, "given twice in --evals")
        if ev.label in seen:
            raise UserError(ev.folder / EVAL_METRICS,
                            f"label {ev.label!r} is also the label of {seen[ev.label]}; "
                            f"labels must tell the models apart")
        seen[ev.label] = ev.folder
    return evals


def read_traces(ev: Evaluation, sim_id: int) -> dict[str, np.ndarray]:
    """One simulation's row of every trace dataset in PREDICTIONS."""
    import h5py

    (row,) = np.flatnonzero(ev.sim_ids == sim_id)[:1]
    with h5py.File(ev.folder / PREDICTIONS, "r") as h5:
        return {name: np.asarray(h5[name][row]) for name in PREDICTION_DATASETS[1:]}
