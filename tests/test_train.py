"""The train stage: resume equality, learning something real, the log, bad input, and the
models that group synapses by real dendritic branches, trained (and swept) as the README
documents on data made by `simulate` and `shard`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import surrogates
from pipeline.cli import main
from pipeline.config.training import SettingError, TrainSettings
from pipeline.datasets.dataset import Dataset
from pipeline.datasets.shards import ShardReader
from pipeline.filenames import EVAL_CONTEXT, TRAIN_LOG, TRAIN_METRICS
from pipeline.sweep.outputs import read_points
from pipeline.training.loop import ValidationSet, soma_target, validation_windows
from pipeline.training.run import train
from pipeline.training.train_log import LOG_COLUMNS
from surrogates import BEST_CHECKPOINT, LAST_CHECKPOINT, build, read_checkpoint
from tests.conftest import error_lines, tree_state
from tests.synthetic import synthetic_shard_root

SEGMENTS = 16
SMALL_ELM = {"num_memory": 4}
SMALL_TCN = {"channels": 6, "kernel_sizes": [9, 5]}


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A learnable synthetic shard root: 10 training and 3 validation simulations."""
    return synthetic_shard_root(tmp_path_factory.mktemp("shards"),
                                {"train": range(10), "valid": range(100, 103)}, SEGMENTS, 1500)


def quick(**overrides: object) -> TrainSettings:
    base = {"steps": 12, "batch_size": 4, "window_ms": 200, "min_start_ms": 100,
            "burn_in_ms": 50, "val_every": 4, "val_windows": 6, "lr": 3e-3}
    return TrainSettings(**{**base, **overrides})


def log_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / TRAIN_LOG).open(newline="") as f:
        return list(csv.DictReader(f))


def without_seconds(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = read_checkpoint(a)["state_dict"], read_checkpoint(b)["state_dict"]
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.mark.parametrize(("model", "config"), [("elm", SMALL_ELM), ("tcn", SMALL_TCN)])
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(
        shards: Path, tmp_path: Path, model: str, config: dict) -> None:
    settings = quick()
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(shards, model, whole, settings, config, "cpu", show_progress=False)
    stopped = train(shards, model, split, settings, config, "cpu", show_progress=False,
                    stop_at=6)
    assert stopped["stopped"] and stopped["steps"] == 6
    assert read_checkpoint(split / LAST_CHECKPOINT)["extra"]["step"] == 6
    train(shards, model, split, settings, config, "cpu", resume=True, show_progress=False)
    assert_same_weights(whole / LAST_CHECKPOINT, split / LAST_CHECKPOINT)
    assert_same_weights(whole / BEST_CHECKPOINT, split / BEST_CHECKPOINT)
    assert without_seconds(log_rows(whole)) == without_seconds(log_rows(split))
    assert json.loads((whole / TRAIN_METRICS).read_text())["best_step"] == \
        json.loads((split / TRAIN_METRICS).read_text())["best_step"]


def test_a_short_run_beats_the_constant_predictor(shards: Path, tmp_path: Path) -> None:
    settings = quick(steps=150, val_every=50, val_windows=12, batch_size=8, lr=1e-2)
    result = train(shards, "elm", tmp_path / "run", settings, {"num_memory": 8}, "cpu",
                   show_progress=False)
    val = ValidationSet.from_windows(validation_windows(shards / "valid", settings))
    truth = val.soma_mv[:, settings.burn_in_ms:].clamp(max=settings.soma_clip_mv)
    constant_rmse = float(truth.std(unbiased=False))  # the best constant: the mean
    assert result["val_soma_rmse_mv"] < 0.6 * constant_rmse
    assert result["val_spike_auc"] > 0.8  # a constant's AUC is 0.5
    first, last = log_rows(tmp_path / "run")[0], log_rows(tmp_path / "run")[-1]
    assert float(last["loss"]) < float(first["loss"])


def test_log_metrics_and_checkpoints(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(shards, "lstm", out, quick(steps=10, val_every=4), {"hidden_size": 5}, "cpu",
          show_progress=False)
    rows = log_rows(out)
    assert list(rows[0]) == list(LOG_COLUMNS)
    assert [int(r["step"]) for r in rows] == [4, 8, 10]
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    metrics = json.loads((out / TRAIN_METRICS).read_text())
    best = min(rows, key=lambda r: float(r["val_soma_rmse_mv"]))
    assert metrics["best_step"] == int(best["step"])
    assert metrics["num_params"] == build("lstm", num_exc=SEGMENTS, num_inh=SEGMENTS,
                                          hidden_size=5).num_params()
    assert read_checkpoint(out / BEST_CHECKPOINT)["extra"]["step"] == metrics["best_step"]


def test_loss_ignores_the_burn_in_and_clips_the_soma() -> None:
    from pipeline.training.loop import window_losses

    model = build("lstm", num_exc=2, num_inh=2, hidden_size=2)
    settings = quick(burn_in_ms=3, window_ms=6, w_spike=0.0, w_soma=1.0)
    soma = torch.tensor([[99.0, 99.0, 99.0, -40.0, -67.7, -57.7]])
    target = soma_target(soma, model, -55.0)
    assert target[0, 3:].tolist() == pytest.approx([1.27, 0.0, 1.0])
    y = torch.zeros(1, 6, 2)
    y[0, 3:, 1] = target[0, 3:]
    y[0, :3, 1] = 1e3  # wrong only inside the burn-in: no loss
    losses = window_losses(y, {"spikes": torch.zeros(1, 6), "soma_mv": soma}, model, settings)
    assert float(losses.soma) == pytest.approx(0.0, abs=1e-12)
    assert float(losses.total) == pytest.approx(0.0, abs=1e-12)


def test_cli_refuses_bad_input_with_one_line(shards: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    base = ["train", "--data", str(shards), "--model", "lstm", "--out", str(out),
            "--steps", "4", "--val-every", "2", "--val-windows", "2", "--window-ms", "100",
            "--burn-in-ms", "10", "--batch-size", "2", "--device", "cpu",
            "--set", "hidden_size=3"]
    assert main(base) == 0
    before = tree_state(out)
    capsys.readouterr()
    cases = {
        "already holds a training run": base,
        "other settings": base[:-1] + ["hidden_size=4", "--resume"],
        "--set: lstm: unknown setting(s) no_such_key": base + ["--set", "no_such_key=1"],
        "--model: unknown model 'nope'": ["train", *base[1:3], "--model", "nope", *base[5:]],
        "does not match the data set": base + ["--set", "num_exc=5"],
        "expected KEY=VALUE": base + ["--set", "oops"],
        "--burn-in-ms: must be in [0, window_ms)": base + ["--burn-in-ms", "100"],
        "--lr-final-fraction: must be in [0, 1]": base + ["--lr-final-fraction", "2"],
        "missing": ["train", "--data", str(tmp_path / "nowhere"), "--model", "lstm",
                    "--out", str(tmp_path / "other")],
    }
    for expected, argv in cases.items():
        assert main(argv) == 2, expected
        lines = error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and expected in lines[0], (expected, lines)
    assert tree_state(out) == before


def test_each_bad_setting_names_its_field() -> None:
    for field, value in (("steps", 0), ("burn_in_ms", 500), ("lr", 0.0), ("grad_clip", -1.0),
                         ("lr_final_fraction", 1.5), ("num_workers", -1)):
        with pytest.raises(SettingError) as err:
            TrainSettings(**{field: value})
        assert err.value.field == field and str(err.value).startswith(field)
    with pytest.raises(SettingError, match="w_soma must be > 0 when w_spike is 0"):
        TrainSettings(w_spike=0.0, w_soma=0.0)


# ------------------------------------------------- advertised paths, on simulated data

# 4 simulations of the built-in L5PC, 700 ms each, driven hard enough that the test split
# spikes after the 500 ms the evaluation skips: 2 train, 1 valid, 1 test.
SIMULATE = ["--num-sims", "4", "--duration-ms", "700", "--sims-per-shard", "2", "--seed", "5",
            "--exc-range", "700,1000", "--inh-offsets", "1000,0", "--workers", "2"]
QUICK_FLAGS = ["--steps", "2", "--batch-size", "2", "--window-ms", "100", "--min-start-ms", "0",
               "--burn-in-ms", "20", "--val-every", "2", "--val-windows", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shard root made by the real `simulate` and `shard` commands."""
    root = tmp_path_factory.mktemp("simulated")
    assert main(["simulate", "--out", str(root / "sim"), *SIMULATE]) == 0
    assert main(["shard", "--src", str(root / "sim"), "--out", str(root / "shards"),
                 "--split", "train=0.5,valid=0.25,test=0.25", "--sims-per-shard", "2",
                 "--workers", "1"]) == 0
    return root / "shards"


def data_branches(shards: Path) -> list[int]:
    with ShardReader(Dataset(shards / "train").shard_paths[0]) as reader:
        segments = reader.segments()
    assert segments is not None
    return segments.branch.tolist()


@pytest.mark.parametrize(("model", "settings"), [
    ("branch_elm", ["routing=morphology", "num_memory=4"]),
    ("elm_network", ["branch_bias=0.5", "num_units=4", "complexity=1", "connectivity=20"]),
])
def test_models_of_real_branches_train_on_simulated_data(simulated: Path, tmp_path: Path,
                                                         model: str, settings: list[str]) -> None:
    out = tmp_path / model
    assert main(["train", "--data", str(simulated), "--model", model, "--out", str(out),
                 *QUICK_FLAGS, "--set", *settings]) == 0
    trained = surrogates.load(out)
    assert list(trained.config.segment_branch) == data_branches(simulated)
    assert len(set(trained.config.segment_branch)) > 10  # the L5PC's dendritic branches
    assert [int(r["step"]) for r in log_rows(out)] == [2]
    assert json.loads((out / TRAIN_METRICS).read_text())["num_params"] == trained.num_params()


def test_a_sweep_point_with_a_branch_bias_on_simulated_data(simulated: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert main(["sweep", "--data", str(simulated), "--budgets", "1e3", "--units", "4",
                 "--complexities", "1", "--out", str(out), "--workers", "0", *QUICK_FLAGS,
                 "--set", "branch_bias=0.5", "--eval-skip-ms", "400",
                 "--eval-window-ms", "200", "--eval-burn-in-ms", "50"]) == 0
    (row,) = read_points(out)
    assert row["status"] == "trained" and 0 <= row["spike_auc"] <= 1
    (model_dir,) = (out / "points" / "P1000").glob("*/model")
    trained = surrogates.load(model_dir)
    assert trained.config.branch_bias == 0.5
    assert list(trained.config.segment_branch) == data_branches(simulated)
    # scored by the protocol it was given (params.yaml's evaluate, through --params)
    context = json.loads((model_dir.parent / "eval" / EVAL_CONTEXT).read_text())
    assert (context["skip_ms"], context["window_ms"], context["burn_in_ms"]) == (400, 200, 50)
