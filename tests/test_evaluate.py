"""`neurosurrogate evaluate` end to end on real data sets and models, the overlapping-window
prediction it relies on, and its bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve
from torch import nn

import surrogates
from pipeline.cli import main
from pipeline.datasets.contract import output_bins
from pipeline.datasets.dataset import Dataset, write_dataset
from pipeline.datasets.shards import read_shard
from pipeline.evaluation.predict import Span, predict_windows, window_plan
from tests.conftest import error_lines, tree_state
from tests.synthetic import synthetic_batch

SEGMENTS = 6
DURATION = 820  # windows of 200 with stride 150 do not divide it: the last one moves back
PROTOCOL = ["--window-ms", "200", "--burn-in-ms", "50", "--skip-ms", "100", "--device", "cpu"]
# Spike bins after 100 ms of simulations 0..7 (synthetic, seed 1, 20 Hz): 6 0 7 10 17 3 1 4
MAX_SPIKES = 8


def small_tcn(seed: int = 0, num_exc: int = SEGMENTS) -> surrogates.Surrogate:
    """A TCN with receptive field 8 ms, much shorter than the 50 ms burn-in."""
    torch.manual_seed(seed)
    return surrogates.build("tcn", num_exc=num_exc, num_inh=num_exc, channels=4,
                            kernel_sizes=(5, 4)).eval()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("evaluate") / "test"
    write_dataset(folder, [synthetic_batch(ids, num_segments=SEGMENTS, duration_ms=DURATION,
                                           seed=1, rate_hz=20.0)
                           for ids in ([0, 1, 2, 3, 4], [5, 6, 7])],
                  {"made_by": "test", "neuron_wall_s_per_sim": 2.0})
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs") / "tcn-run"
    folder.mkdir()
    surrogates.save(small_tcn(0), folder / "best.pt")
    surrogates.save(small_tcn(1), folder / "last.pt")
    return folder


def one_error(capsys) -> str:
    (line,) = error_lines(capsys.readouterr().err)
    return line


# ------------------------------------------------------------- overlapping windows


def test_window_plan_hand_computed() -> None:
    # int(2 + (1000 - 500) / 350) = 3 windows on the stride, the last zero-padded past 1000
    assert [(s.start, s.keep_from, s.keep_to) for s in window_plan(1000, 500, 150)] == [
        (0, 0, 500), (350, 500, 850), (700, 850, 1000)]
    # 6 s as published: int(2 + 5500 / 350) = 17 windows, the last from 5600
    plan = window_plan(6000, 500, 150)
    assert len(plan) == 17 and plan[-1] == Span(5600, 5750, 6000)
    # (T - W) / S whole: the published count ends on an empty window, which is left out
    assert [(s.start, s.keep_from, s.keep_to) for s in window_plan(850, 500, 150)] == [
        (0, 0, 500), (350, 500, 850)]
    assert [(s.start, s.keep_from, s.keep_to) for s in window_plan(300, 500, 150)] == [
        (0, 0, 300)]


@pytest.mark.parametrize("duration, window, burn_in", [
    (6000, 500, 150), (820, 200, 50), (700, 350, 0), (501, 500, 499), (10, 3, 2)])
def test_window_plan_places_every_bin_once(duration: int, window: int, burn_in: int) -> None:
    plan = window_plan(duration, window, burn_in)
    covered = np.zeros(duration, dtype=int)
    for i, span in enumerate(plan):
        covered[span.keep_from:span.keep_to] += 1
        assert 0 <= span.start < duration and span.start % (window - burn_in) == 0
        assert span.start <= span.keep_from < span.keep_to <= span.start + window
        if i > 0:
            assert span.keep_from - span.start >= burn_in  # burn-in is discarded
            assert span.keep_from == plan[i - 1].keep_to
    np.testing.assert_array_equal(covered, 1)


class Probe(nn.Module):
    """Outputs, per step, the window's first input value and the step's place in it."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(x))
        place = torch.arange(x.shape[1], dtype=x.dtype).expand(len(x), -1)
        return torch.stack([x[:, :1, 0].expand(-1, x.shape[1]), place], dim=-1)


def test_stitching_takes_each_bin_from_the_window_that_keeps_it() -> None:
    batch, duration = 3, 820
    # input channel 0 holds the global time plus 10000 * simulation
    x = torch.zeros(batch, duration, 2)
    x[..., 0] = torch.arange(duration) + 10000 * torch.arange(batch)[:, None]
    probe = Probe()
    y = predict_windows(probe, x, 200, 50, windows_per_pass=4)
    plan = window_plan(duration, 200, 50)
    assert sum(probe.calls) == batch * len(plan) and max(probe.calls) == 4
    start = y[..., 0] - 10000 * torch.arange(batch)[:, None]
    np.testing.assert_array_equal((start + y[..., 1]).numpy(),
                                  np.tile(np.arange(duration), (batch, 1)))
    want = np.concatenate([np.full(s.keep_to - s.keep_from, s.start) for s in plan])
    for b in range(batch):
        np.testing.assert_array_equal(start[b].numpy(), want)


def test_windowed_equals_full_sequence_when_receptive_field_fits_the_burn_in() -> None:
    model = small_tcn(3)
    x = (torch.rand(2, DURATION, 2 * SEGMENTS, generator=torch.Generator().manual_seed(0))
         < 0.05).to(torch.uint8)
    with torch.no_grad():
        full = model(x.float())
    for per_pass in (1, 5, 100):
        windowed = predict_windows(model, x, 200, 50, windows_per_pass=per_pass)
        torch.testing.assert_close(windowed, full, rtol=1e-5, atol=1e-5)
    # with a burn-in shorter than the receptive field the windows lack history
    short = predict_windows(model, x, 200, 2)
    assert not torch.allclose(short, full, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------- the stage


def test_evaluate_scores_by_the_protocol(data: Path, model_dir: Path, tmp_path: Path,
                                         capsys) -> None:
    out = tmp_path / "out"
    assert main(["evaluate", "--data", str(data), "--model-dir", str(model_dir), "--out",
                 str(out), "--max-spikes", str(MAX_SPIKES), "--num-traces", "2",
                 *PROTOCOL]) == 0
    assert "spike AUC" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "evaluation.json", "metrics.json", "predictions.h5", "roc.csv", "roc.png", "traces.png",
        "traces_1.png"]
    metrics = json.loads((out / "metrics.json").read_text())

    # the spike filter, counted independently from the shards
    truth = {}
    for path in Dataset(data).shard_paths:
        batch = read_shard(path)
        for row, sid in enumerate(batch.sim_id.tolist()):
            truth[sid] = (output_bins(batch.output_spikes_of(row), 0, DURATION),
                          batch.soma_voltage_mv[row])
    # kept by the output spikes of the whole simulation, as both published evaluators
    kept = [sid for sid, (spikes, _) in truth.items() if spikes.sum() <= MAX_SPIKES]
    assert kept == [0, 1, 2, 5, 6, 7]
    assert metrics["num_sims"] == 6 and metrics["num_sims_dropped"] == 2

    # predictions.h5 is aligned with the ground truth and with the model's own prediction
    model = surrogates.load(model_dir / "best.pt")
    with h5py.File(out / "predictions.h5") as h5:
        assert h5.attrs["start_ms"] == 100 and h5.attrs["dt_ms"] == 1
        pred = {name: h5[name][...] for name in h5}
    assert pred["sim_id"].dtype == np.int64 and pred["sim_id"].tolist() == kept
    assert pred["spike_prob"].dtype == pred["soma_mv"].dtype == np.float32
    assert pred["true_spikes"].dtype == np.uint8
    for i, sid in enumerate(kept):
        np.testing.assert_array_equal(pred["true_spikes"][i], truth[sid][0][100:])
        np.testing.assert_array_equal(pred["true_soma_mv"][i], truth[sid][1][100:])
    shard_of = {}
    x = torch.zeros(len(truth), DURATION, 2 * SEGMENTS)  # every simulation, dropped included
    for shard, path in enumerate(Dataset(data).shard_paths):
        batch = read_shard(path)
        for row, sid in enumerate(batch.sim_id.tolist()):
            shard_of[sid] = shard
            synapse, time_ms = batch.input_spikes_of(row)
            x[sid, time_ms, synapse] = 1.0
    assert sorted(truth) == list(range(len(truth)))
    with torch.no_grad():  # receptive field 8 < burn-in 50: windows change nothing
        full = model(x)
    np.testing.assert_allclose(pred["spike_prob"], torch.sigmoid(full[kept, :, 0])[:, 100:],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred["soma_mv"], model.soma_mv(full)[kept, 100:], rtol=1e-5,
                               atol=1e-4)

    # the metrics agree with scikit-learn and numpy on the stored predictions
    y, p = pred["true_spikes"].ravel(), pred["spike_prob"].ravel()
    assert metrics["spike_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=True)
    roc = np.loadtxt(out / "roc.csv", delimiter=",", skiprows=1)
    assert (out / "roc.csv").read_text().startswith("fpr,tpr\n")
    np.testing.assert_allclose(roc, np.column_stack([fpr, tpr]), rtol=1e-8)
    for target in (0.0025, 0.01):
        index = int(np.argmin(np.abs(fpr - target)))
        assert metrics[f"tpr_at_fpr_{target}"] == tpr[max(index, 1)]
        low, high = metrics[f"tpr_at_fpr_{target}_ci_low"], metrics[f"tpr_at_fpr_{target}_ci_high"]
        assert 0 <= low <= high <= 1
    assert metrics["protocol"] == "elm"
    assert metrics["spike_auc_ci_low"] <= metrics["spike_auc"] <= metrics["spike_auc_ci_high"]
    assert metrics["soma_rmse_mv_ci_low"] < metrics["soma_rmse_mv_ci_high"]
    # the ELM evaluator rescales the unclipped prediction per shard over all its simulations
    # and bins, to the clipped truth; then scores the kept simulations from 100 ms on
    whole_pred = model.soma_mv(full).numpy().astype(np.float64)
    whole_true = np.minimum(np.stack([truth[s][1] for s in sorted(truth)]), -55.0)
    rescaled_whole = np.empty_like(whole_pred)
    for shard in set(shard_of.values()):
        rows = [sid for sid in sorted(truth) if shard_of[sid] == shard]
        q, t = whole_pred[rows], whole_true[rows]
        rescaled_whole[rows] = (q - q.mean()) / q.std() * t.std() + t.mean()
    true_mv = whole_true[kept, 100:].ravel()
    raw = whole_pred[kept, 100:].ravel()
    rescaled = rescaled_whole[kept, 100:].ravel()
    assert metrics["soma_rmse_mv_raw"] == pytest.approx(np.sqrt(np.mean((raw - true_mv) ** 2)),
                                                        rel=1e-5)
    assert metrics["soma_rmse_mv"] == pytest.approx(
        np.sqrt(np.mean((rescaled - true_mv) ** 2)), rel=1e-5)
    assert metrics["soma_mae_mv"] == pytest.approx(np.mean(np.abs(rescaled - true_mv)), rel=1e-5)
    assert metrics["soma_explained_variance_pct"] == pytest.approx(
        100 * (1 - np.var(rescaled - true_mv) / np.var(true_mv)), rel=1e-5)

    # identity, settings and speed
    assert metrics["model"] == "tcn" and metrics["label"] == "tcn-run"
    assert metrics["num_params"] == model.num_params()
    context = json.loads((out / "evaluation.json").read_text())
    assert Path(context["checkpoint"]) == (model_dir / "best.pt").resolve()
    assert Path(context["data"]) == data.resolve()
    assert (context["window_ms"], context["burn_in_ms"], context["skip_ms"],
            context["max_spikes"], metrics["device"]) == (200, 50, 100, MAX_SPIKES, "cpu")
    assert metrics["sim_ms_per_s"] > 0 and metrics["neuron_wall_s_per_sim"] == 2.0
    assert metrics["speedup_vs_neuron"] == pytest.approx(
        metrics["sim_ms_per_s"] / (DURATION / 2.0))
    assert "rescaled" in context["definitions"]["soma_rmse_mv"]
    assert "not rescaled" in context["definitions"]["soma_rmse_mv_raw"]


def test_beniaguev_protocol_pools_and_adds_his_filters(data: Path, model_dir: Path,
                                                      tmp_path: Path) -> None:
    runs = {}
    for name in ("elm", "beniaguev"):
        out = tmp_path / name
        assert main(["evaluate", "--data", str(data), "--model-dir", str(model_dir), "--out",
                     str(out), "--protocol", name, "--max-spikes", str(MAX_SPIKES),
                     "--bootstrap-replicates", "50", *PROTOCOL]) == 0
        runs[name] = (json.loads((out / "metrics.json").read_text()),
                      json.loads((out / "evaluation.json").read_text()))
    (elm, elm_ctx), (ben, ben_ctx) = runs["elm"], runs["beniaguev"]
    assert (elm["protocol"], ben["protocol"]) == ("elm", "beniaguev")
    assert ben_ctx["rescaling_unit"].startswith("the whole split")
    # the test TCN's receptive field (8 ms) is under the burn-in: Beniaguev's rule keeps 50
    assert ben_ctx["burn_in_ms"] == elm_ctx["burn_in_ms"] == 50
    assert {"spike_auc_spikes_1_24", "soma_rmse_mv_spikes_0_18"} <= set(ben)
    assert not any(key.endswith("_spikes_1_24") for key in elm)
    assert ben["spike_auc"] == elm["spike_auc"]  # the spike scores do not rescale
    # two shards: per-shard and pooled rescaling differ
    assert ben["soma_rmse_mv"] != elm["soma_rmse_mv"]
    assert len(ben_ctx["bootstrap"]["replicates"]["spike_auc"]) == 50
    assert ben_ctx["bootstrap"]["sim_ids"] == elm_ctx["bootstrap"]["sim_ids"]


def test_last_checkpoint_label_and_stale_traces(data: Path, model_dir: Path,
                                                tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "traces_5.png").write_bytes(b"from an earlier run with more traces")
    assert main(["evaluate", "--data", str(data), "--model-dir", str(model_dir), "--out",
                 str(out), "--checkpoint", "last", "--label", "my tcn", "--num-traces", "1",
                 *PROTOCOL]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    context = json.loads((out / "evaluation.json").read_text())
    assert metrics["label"] == "my tcn" and context["checkpoint"].endswith("last.pt")
    assert metrics["num_sims"] == 8 and metrics["num_sims_dropped"] == 0  # 17 <= 24
    assert sorted(p.name for p in out.glob("traces*")) == ["traces.png"]
    assert not list(out.glob(".*"))  # no temporaries left


def test_wrong_input_size_is_refused(data: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    surrogates.save(small_tcn(0, num_exc=5), run / "best.pt")
    out = tmp_path / "out"
    assert main(["evaluate", "--data", str(data), "--model-dir", str(run), "--out", str(out),
                 *PROTOCOL]) == 2
    line = one_error(capsys)
    assert str(run / "best.pt") in line and "5 excitatory + 5 inhibitory" in line
    assert "6 + 6" in line
    assert not out.exists()


def test_no_simulation_left_is_refused(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "busy"  # simulations 3 and 4 fire 10 and 17 times after 100 ms
    write_dataset(folder, [synthetic_batch([3, 4], num_segments=SEGMENTS,
                                           duration_ms=DURATION, seed=1, rate_hz=20.0)], {})
    run = tmp_path / "run"
    run.mkdir()
    surrogates.save(small_tcn(), run / "best.pt")
    assert main(["evaluate", "--data", str(folder), "--model-dir", str(run), "--out",
                 str(tmp_path / "out"), "--max-spikes", "9", *PROTOCOL]) == 2
    line = one_error(capsys)
    assert "cannot score the 2 simulations" in line and "no simulation has 0 to 9 output" in line


def test_nan_predictions_are_refused_and_earlier_outputs_kept(data: Path, model_dir: Path,
                                                              tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["evaluate", "--data", str(data), "--model-dir", str(model_dir), "--out",
                 str(out), "--num-traces", "1", *PROTOCOL]) == 0
    before = tree_state(out)
    broken = small_tcn()
    with torch.no_grad():
        broken.soma_head.bias.fill_(float("nan"))
    run = tmp_path / "broken"
    run.mkdir()
    surrogates.save(broken, run / "best.pt")
    capsys.readouterr()
    assert main(["evaluate", "--data", str(data), "--model-dir", str(run), "--out", str(out),
                 *PROTOCOL]) == 2
    line = one_error(capsys)
    assert "predicts NaN" in line and str(run / "best.pt") in line
    assert tree_state(out) == before


@pytest.mark.parametrize("extra, problem", [
    (["--skip-ms", "820"], "--skip-ms: must lie in 0..819"),
    (["--burn-in-ms", "200"], "--burn-in-ms: must lie in 0..window_ms - 1"),
    (["--checkpoint", "last"], "no such checkpoint"),
    (["--max-spikes", "0", "--skip-ms", "700"], "only one class"),
])
def test_bad_settings_give_one_line(data: Path, tmp_path: Path, capsys, extra: list[str],
                                    problem: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    surrogates.save(small_tcn(), run / "best.pt")
    out = tmp_path / "out"
    assert main(["evaluate", "--data", str(data), "--model-dir", str(run), "--out", str(out),
                 *PROTOCOL, *extra]) == 2
    assert problem in one_error(capsys)
    assert not out.exists()
