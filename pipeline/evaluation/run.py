"""Scoring a surrogate checkpoint on one split by a published NeuronIO evaluator (the
`evaluate` stage and the sweep both call `evaluate` here).

Every simulation is predicted whole with overlapping windows whose burn-in is discarded
(pipeline/evaluation/predict.py); the evaluator (pipeline/evaluation/metrics.py: `elm` or
`beniaguev`) rescales the soma prediction over its unit, keeps simulations by their whole
spike count, drops the first skip_ms and scores the remaining 1 ms bins, with bootstrap
intervals over the kept simulations (pipeline/evaluation/bootstrap.py). The outputs (names
in pipeline/filenames.py, format in docs/data-format.md, "Evaluation outputs") are renamed
into place together at the end, so a failing run leaves earlier outputs as they were.
"""


from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.datasets.contract import input_bins, output_bins
from pipeline.datasets.dataset import Dataset
from pipeline.datasets.shards import ShardReader
from pipeline.errors import UserError
from pipeline.evaluation.bootstrap import CONFIDENCE, Replicates, bootstrap
from pipeline.evaluation.metrics import DEFINITIONS, score_simulations
from pipeline.evaluation.predict import predict_windows
from pipeline.evaluation.predictions import PREDICTION_DATASETS, Predictions, write_predictions
from pipeline.evaluation.settings import (
    CHECKPOINTS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHECKPOINT,
    DEFAULT_NUM_TRACES,
    Protocol,
)
from pipeline.filenames import (
    EVAL_CONTEXT,
    EVAL_METRICS,
    PREDICTIONS,
    ROC_CSV,
    ROC_FIGURE,
    traces_figure,
)

if TYPE_CHECKING:
    import torch

    from pipeline.evaluation.metrics import SpikeScores
    from surrogates.base import Surrogate

# What each evaluator rescales the soma prediction over. A NeuronIO test file holds 128
# simulations; a split written with sims_per_shard 128 from those files in id order has one
# file per shard, and simulated data are rescaled per shard alike.
RESCALING_UNITS = {"elm": "each shard of the split (the published ELM evaluator: each test "
                          "file of 128 simulations)",
                   "beniaguev": "the whole split, pooled"}

SPEED_BATCH = 32  # simulations per timed batch: the same for every model, so comparable


SPEED_INPUT_RATE = 0.005  # spikes per ms per input of the random timing input (5 Hz)


def read_batches(data: Dataset, batch_size: int
                 ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(shard index, sim ids, inputs uint8 [n, T, inputs], spike bins [n, T], soma mV
    [n, T]) of at most `batch_size` simulations at a time: a whole split never sits in
    memory as inputs."""
    info = data.info
    for shard, path in enumerate(data.shard_paths):
        with ShardReader(path) as reader:
            for first in range(0, reader.num_sims, batch_size):
                part = list(range(first, min(first + batch_size, reader.num_sims)))
                x = np.empty((len(part), info.duration_ms, info.num_inputs), dtype=np.uint8)
                for i, row in enumerate(part):
                    synapse, time_ms = reader.input_spikes(row)
                    x[i] = input_bins(synapse, time_ms, 0, info.duration_ms, info.num_inputs)
                spikes = np.stack([output_bins(reader.output_spikes(r), 0, info.duration_ms)
                                   for r in part])
                soma = np.stack([reader.soma_voltage(r) for r in part])
                yield shard, reader.sim_id[part], x, spikes, soma


def check_inputs_fit(model: Surrogate, data: Dataset, checkpoint: Path) -> None:
    cfg, info = model.config, data.info
    if (cfg.num_exc, cfg.num_inh) != (info.num_exc, info.num_inh):
        raise UserError(checkpoint, f"the model takes {cfg.num_exc} excitatory + "
                                    f"{cfg.num_inh} inhibitory inputs, but {data.folder} has "
                                    f"{info.num_exc} + {info.num_inh}")


def predict_split(model: Surrogate, data: Dataset, protocol: Protocol, batch_size: int,
                  device: torch.device, checkpoint: Path) -> tuple[Predictions, np.ndarray]:
    """Every simulation of the split predicted whole (both evaluators rescale over all of
    them, those they then drop included), and each one's rescaling unit: its shard."""
    import torch
    from tqdm.auto import tqdm

    burn_in = protocol.burn_in_for(model.receptive_field_ms)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (*PREDICTION_DATASETS, "unit")}
    with tqdm(total=data.num_sims, unit="sim", desc="evaluate", disable=None) as bar:
        for shard, sim_id, x, spikes, soma in read_batches(data, batch_size):
            y = predict_windows(model, torch.from_numpy(x).to(device), protocol.window_ms,
                                burn_in, windows_per_pass=batch_size)
            bad = ~torch.isfinite(y).all(dim=2).all(dim=1)
            if bool(bad.any()):
                raise UserError(checkpoint, f"the model predicts NaN or infinite values "
                                            f"(simulation {int(sim_id[int(bad.nonzero()[0])])}"
                                            f" of {data.folder})")
            parts["sim_id"].append(sim_id)
            parts["unit"].append(np.full(len(sim_id), shard))
            parts["spike_prob"].append(torch.sigmoid(y[..., 0]).cpu().numpy())
            parts["soma_mv"].append(model.soma_mv(y).cpu().numpy())
            parts["true_spikes"].append(spikes.astype(np.uint8))
            parts["true_soma_mv"].append(soma)
            bar.update(len(sim_id))
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    return Predictions(sim_id=arrays["sim_id"].astype(np.int64),
                       spike_prob=arrays["spike_prob"].astype(np.float32),
                       soma_mv=arrays["soma_mv"].astype(np.float32),
                       true_spikes=arrays["true_spikes"],
                       true_soma_mv=arrays["true_soma_mv"].astype(np.float32)), arrays["unit"]


def kept_part(pred: Predictions, keep: np.ndarray, skip_ms: int) -> Predictions:
    """The kept simulations from skip_ms on: what is scored, and what PREDICTIONS holds."""
    return Predictions(sim_id=pred.sim_id[keep],
                       **{name: getattr(pred, name)[keep, skip_ms:]
                          for name in PREDICTION_DATASETS[1:]})


def measure_speed(model: Surrogate, duration_ms: int, protocol: Protocol,
                  device: torch.device, num_sims: int = SPEED_BATCH, seed: int = 0) -> float:
    """Simulated ms per second of the windowed prediction path on `num_sims` simulations of
    random binary input (after one warm-up pass), the same for every model."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.empty(num_sims, duration_ms, model.config.num_inputs, dtype=torch.uint8)
    for i in range(num_sims):  # one simulation at a time keeps the float temporaries small
        x[i] = torch.rand(duration_ms, model.config.num_inputs, generator=gen) < SPEED_INPUT_RATE
    x = x.to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    predict_windows(model, x[:, :protocol.window_ms], protocol.window_ms, protocol.burn_in_ms,
                    windows_per_pass=SPEED_BATCH)
    sync()
    start = time.perf_counter()
    predict_windows(model, x, protocol.window_ms, protocol.burn_in_ms,
                    windows_per_pass=SPEED_BATCH)
    sync()
    return num_sims * duration_ms / (time.perf_counter() - start)


def interval_definitions(replicates: Replicates) -> dict[str, str]:
    return {f"{key}_ci_low": f"{100 * CONFIDENCE:g} % bootstrap interval of {key} (and _ci_high): "
                             f"{len(next(iter(replicates.values.values())))} resamples of the "
                             f"kept simulations with replacement, seed {replicates.seed}"
            for key in replicates.values}


def speedup_vs_neuron(sim_ms_per_s: float, duration_ms: int,
                      neuron_wall_s_per_sim: float | None) -> float | None:
    """Surrogate throughput at batch SPEED_BATCH over that of one NEURON process."""
    if neuron_wall_s_per_sim is None or neuron_wall_s_per_sim <= 0:
        return None
    return sim_ms_per_s / (duration_ms / neuron_wall_s_per_sim)


def _write_roc_csv(path: Path, fpr: np.ndarray, tpr: np.ndarray) -> None:
    np.savetxt(path, np.column_stack([fpr, tpr]), delimiter=",", header="fpr,tpr",
               comments="", fmt="%.9g")


def write_outputs(out: Path, metrics: dict[str, Any], context: dict[str, Any],
                  roc: SpikeScores, pred: Predictions,
                  label: str, num_traces: int, start_ms: int) -> list[str]:
    """Write every output under a temporary name, then rename them all (EVAL_METRICS last);
    an error on the way renames nothing. Returns the names written."""
    from pipeline.reporting.figures import save_roc, save_traces
    from pipeline.runtime.files import atomic_path

    if out.exists() and not out.is_dir():
        raise UserError(out, "exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    time_ms = np.arange(start_ms, start_ms + pred.spike_prob.shape[1], dtype=np.float64)
    traces = [traces_figure(k) for k in range(min(num_traces, len(pred.sim_id)))]
    with ExitStack() as stack:
        tmp = {name: stack.enter_context(atomic_path(out / name))
               for name in [EVAL_METRICS, EVAL_CONTEXT, ROC_CSV, PREDICTIONS, ROC_FIGURE,
                            *traces]}
        write_predictions(tmp[PREDICTIONS], pred, start_ms)
        _write_roc_csv(tmp[ROC_CSV], roc.fpr, roc.tpr)
        save_roc({label: (roc.fpr, roc.tpr, roc.auc)}, tmp[ROC_FIGURE],
                 title=f"{label}: spike ROC over {len(pred.sim_id)} simulations")
        for k, name in enumerate(traces):
            save_traces(time_ms, pred.true_soma_mv[k], pred.true_spikes[k],
                        {label: (pred.soma_mv[k], pred.spike_prob[k])}, tmp[name],
                        title=f"{label}: simulation {int(pred.sim_id[k])}")
        tmp[EVAL_CONTEXT].write_text(json.dumps(context, indent=1) + "\n", encoding="utf-8")
        tmp[EVAL_METRICS].write_text(json.dumps(metrics, indent=1, allow_nan=False) + "\n",
                                     encoding="utf-8")
    # Traces of an earlier run with a larger --num-traces (traces_figure(k) of a larger k)
    # would no longer match.
    for stale in out.glob("traces_*.png"):
        if stale.name not in traces:
            stale.unlink()
    return list(tmp)


def evaluate(data_dir: Path, model_dir: Path, out: Path, checkpoint: str = DEFAULT_CHECKPOINT,
             protocol: Protocol | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
             device: str = "auto", label: str | None = None,
             num_traces: int = DEFAULT_NUM_TRACES) -> dict[str, Any]:
    """Score the `checkpoint` of `model_dir` on the split `data_dir`; return what
    EVAL_METRICS holds."""
    from pipeline.runtime.devices import pick_device
    from surrogates.checkpoints import (
        BEST_CHECKPOINT,
        LAST_CHECKPOINT,
        model_from,
        read_checkpoint,
    )

    protocol = protocol or Protocol()
    if checkpoint not in CHECKPOINTS:
        raise UserError("--checkpoint", f"must be one of {', '.join(CHECKPOINTS)}, "
                                        f"got {checkpoint!r}")
    if batch_size < 1:
        raise UserError("--batch-size", f"must be at least 1, got {batch_size}")
    if num_traces < 0:
        raise UserError("--num-traces", f"must be at least 0, got {num_traces}")
    data = Dataset(Path(data_dir))
    duration = data.info.duration_ms
    protocol.check(duration, data.folder)
    torch_device = pick_device(device)
    ckpt = Path(model_dir) / {"best": BEST_CHECKPOINT, "last": LAST_CHECKPOINT}[checkpoint]
    payload = read_checkpoint(ckpt)  # once: the model, and the run's recorded recipe
    model = model_from(payload, ckpt, torch_device)
    check_inputs_fit(model, data, ckpt)

    whole, units = predict_split(model, data, protocol, batch_size, torch_device, ckpt)
    try:
        scored = score_simulations(whole.true_spikes, whole.spike_prob, whole.true_soma_mv,
                                   whole.soma_mv, units, protocol.protocol, protocol.skip_ms,
                                   protocol.max_spikes)
    except ValueError as err:
        raise UserError(data.folder, f"cannot score the {data.num_sims} simulations of the "
                                     f"split: {err}") from None
    pred = kept_part(whole, scored.keep, protocol.skip_ms)
    flat, roc, dropped = scored.metrics, scored.roc, int(np.count_nonzero(~scored.keep))
    replicates = bootstrap(pred.true_spikes, pred.spike_prob, pred.true_soma_mv,
                           scored.rescaled_mv[scored.keep, protocol.skip_ms:],
                           protocol.bootstrap_seed, protocol.bootstrap_replicates)
    intervals = {f"{key}_{end}": value if np.isfinite(value) else None
                 for key in replicates.values
                 for end, value in zip(("ci_low", "ci_high"), replicates.interval(key),
                                       strict=True)}
    sim_ms_per_s = measure_speed(model, duration, protocol, torch_device)
    neuron_wall = data.manifest.neuron_wall_s_per_sim
    label = label or Path(model_dir).resolve().name
    # metrics.json holds what `dvc metrics show` should tabulate (scores and the model's
    # identity); evaluation.json the provenance, the protocol and the definitions.
    metrics: dict[str, Any] = {
        "model": model.name, "label": label, "cell": data.info.cell,
        "num_params": model.num_params(), "protocol": protocol.protocol,
        # the recipe training recorded (null: a checkpoint from elsewhere, or older)
        "recipe": payload.get("extra", {}).get("recipe"),
        **flat, **intervals,
        "num_sims": len(pred.sim_id), "num_sims_dropped": dropped,
        "num_spikes": int(pred.true_spikes.sum()),
        "sim_ms_per_s": sim_ms_per_s,
        "speedup_vs_neuron": speedup_vs_neuron(sim_ms_per_s, duration, neuron_wall),
        "neuron_wall_s_per_sim": neuron_wall, "device": str(torch_device),
    }
    context: dict[str, Any] = {
        "data": str(data.folder.resolve()), "checkpoint": str(ckpt.resolve()),
        **asdict(protocol), "burn_in_ms": protocol.burn_in_for(model.receptive_field_ms),
        "rescaling_unit": RESCALING_UNITS[protocol.protocol],
        "duration_ms": duration, "speed_batch": SPEED_BATCH,
        # The same seed and the same kept simulations give every model the same
        # resamples: the report pairs them to say whether two models differ.
        "bootstrap": {"seed": replicates.seed, "sim_ids": pred.sim_id.tolist(),
                      "confidence": CONFIDENCE,
                      # a resample without spikes has no AUC: null
                      "replicates": {k: [None if np.isnan(x) else float(x) for x in v]
                                     for k, v in replicates.values.items()}},
        "definitions": {**DEFINITIONS, **interval_definitions(replicates),
                        "sim_ms_per_s": f"simulated ms per second of windowed prediction "
                                        f"of {SPEED_BATCH} simulations at once on this device",
                        "speedup_vs_neuron": "sim_ms_per_s / (duration_ms / "
                                             "neuron_wall_s_per_sim): against one NEURON "
                                             "process"},
    }
    write_outputs(Path(out), metrics, context, roc, pred, label, num_traces, protocol.skip_ms)
    print(f"{out}: {label} on {len(pred.sim_id)} simulations: spike AUC {flat['spike_auc']:.4f}"
          f", soma RMSE {flat['soma_rmse_mv']:.3f} mV (rescaled), "
          f"{sim_ms_per_s:,.0f} simulated ms/s")
    return metrics
