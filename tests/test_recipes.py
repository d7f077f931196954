"""Each model's published training recipe (pipeline/config/recipes.py): the settings as the
reference sheet gives them, the whole-window loss, Beniaguev's epoch schedule scaled to the
steps, NAdam, overrides, and a real `train --recipe` run that records its recipe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from pipeline.cli import main
from pipeline.config.recipes import beniaguev_epoch, schedule_at
from pipeline.config.training import SettingError, TrainSettings, resolve_settings
from pipeline.filenames import TRAIN_METRICS
from pipeline.protocol import SOMA_SCALE
from pipeline.training.loop import init_kernels, make_optimizer, window_losses
from surrogates import BEST_CHECKPOINT, LAST_CHECKPOINT, build, read_checkpoint
from tests.synthetic import synthetic_shard_root

SEGMENTS = 8


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_shard_root(tmp_path_factory.mktemp("shards"),
                                {"train": range(4), "valid": range(100, 102)}, SEGMENTS, 1000)


def test_the_elm_recipe_is_the_reference_sheets() -> None:
    s = resolve_settings("elm", {})
    assert (s.recipe, s.batch_size, s.window_ms, s.min_start_ms, s.burn_in_ms) == \
        ("elm", 8, 500, 500, 0)
    assert (s.lr, s.lr_final_fraction, s.schedule, s.optimizer) == (5e-4, 0.0, "cosine", "adam")
    assert (s.w_spike, s.w_soma, s.soma_clip_mv) == (0.5, 0.5, -55.0)
    assert (s.grad_clip, s.precision, s.l2, s.init_scale) == (0.0, "fp32", 0.0, 0.0)
    # cosine decay from 5e-4 to 0 over all steps, fixed weights
    assert schedule_at(s, 0) == pytest.approx((5e-4, 0.5, 0.5))
    assert schedule_at(s, s.steps // 2) == pytest.approx((2.5e-4, 0.5, 0.5))
    assert schedule_at(s, s.steps)[0] == pytest.approx(0.0, abs=1e-15)


def test_the_elm_recipes_loss_covers_the_whole_window() -> None:
    settings = resolve_settings("elm", {"window_ms": 300})
    model = build("lstm", num_exc=2, num_inh=2, hidden_size=2)
    y = torch.zeros(2, 300, 2)
    y[..., 0] = -5.0  # confident "no spike"
    batch = {"spikes": torch.zeros(2, 300), "soma_mv": torch.full((2, 300), -67.7)}
    before = window_losses(y, batch, model, settings)
    changed = {"spikes": batch["spikes"].clone(), "soma_mv": batch["soma_mv"].clone()}
    changed["spikes"][:, :150] = 1.0  # only inside the first 150 ms
    changed["soma_mv"][:, :150] = -60.0
    after = window_losses(y, changed, model, settings)
    assert float(after.spike) > float(before.spike) and float(after.soma) > float(before.soma)
    # ...which our default (recipe none: a 150 ms burn-in) leaves out of the loss
    ours = resolve_settings("none", {"window_ms": 300})
    assert float(window_losses(y, changed, model, ours).total) == \
        pytest.approx(float(window_losses(y, batch, model, ours).total))


@pytest.mark.parametrize("steps", [25_000, 500])
def test_the_tcn_schedule_gives_the_sheets_epochs_scaled_to_the_steps(steps: int) -> None:
    s = resolve_settings("tcn_beniaguev", {"steps": steps})
    sheet = {0: (1e-4, 1.0, 0.02), 39: (1e-4, 1.0, 0.02), 40: (3e-5, 2.0, 0.01),
             80: (1e-5, 4.0, 0.01), 120: (3e-6, 8.0, 0.01), 160: (1e-6, 9.0, 0.003),
             249: (1e-6, 9.0, 0.003)}
    epoch_length = steps / 250
    for epoch, (lr, w_spike, w_soma_mv) in sheet.items():
        for step in (int(epoch * epoch_length), int((epoch + 1) * epoch_length) - 1):
            assert beniaguev_epoch(step, steps) == epoch
            # the soma weight on our 0.1 scale: the sheet's (mV scale) / SOMA_SCALE**2
            assert schedule_at(s, step) == pytest.approx(
                (lr, w_spike, w_soma_mv / SOMA_SCALE ** 2), rel=1e-9), (epoch, step)
    assert beniaguev_epoch(steps * 10, steps) == 249


def test_the_tcn_recipe_uses_nadam_l2_init_scale_and_fp32() -> None:
    s = resolve_settings("tcn_beniaguev", {})
    assert (s.steps, s.batch_size, s.window_ms, s.precision, s.grad_clip) == \
        (25_000, 8, 400, "fp32", 0.0)
    assert (s.optimizer, s.l2, s.init_scale, s.schedule) == \
        ("nadam", 1e-8, 0.002, "beniaguev_epochs")
    torch.manual_seed(0)
    model = build("tcn", num_exc=4, num_inh=4, channels=5, kernel_sizes=[7, 3])
    head = model.spike_head.weight.clone()
    init_kernels(model, s.init_scale)
    for conv in model.convs:
        weight = conv.weight.detach()
        assert float(weight.abs().max()) <= 2 * 0.002
        assert float(weight.std()) == pytest.approx(0.002 * 0.88, rel=0.3)  # cut at 2 std
    assert torch.equal(model.spike_head.weight, head)  # the heads keep their own init
    optimizer, scheduler = make_optimizer(model, s)
    assert isinstance(optimizer, torch.optim.NAdam)
    kernels, rest = optimizer.param_groups
    assert kernels["weight_decay"] == pytest.approx(2e-8) and rest["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in kernels["params"]) and all(p.dim() < 2 for p in rest["params"])
    assert isinstance(make_optimizer(model, resolve_settings("elm", {}))[0], torch.optim.Adam)


def test_overrides_win_over_the_recipe(tmp_path: Path) -> None:
    s = resolve_settings("tcn_beniaguev", {"lr": 1e-3, "steps": 1000, "window_ms": None,
                                           "optimizer": "adam"})
    assert (s.lr, s.steps, s.window_ms, s.optimizer, s.recipe) == \
        (1e-3, 1000, 400, "adam", "tcn_beniaguev")
    assert schedule_at(s, 160)[0] == pytest.approx(3e-4)  # epoch 40; --lr scales the table
    assert resolve_settings("none", {}) == TrainSettings()
    with pytest.raises(SettingError) as err:
        resolve_settings("nope", {})
    assert err.value.field == "recipe"


def test_train_with_the_tcn_recipe_runs_and_records_it(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "tcn"
    params = tmp_path / "params.yaml"  # null keys leave the recipe's value; given ones win
    params.write_text("train:\n  window_ms: null\n  val_windows: 2\n  device: cpu\n")
    assert main(["train", "--params", str(params), "--data", str(shards), "--model", "tcn",
                 "--out", str(out), "--recipe", "tcn_beniaguev", "--steps", "4",
                 "--val-every", "2", "--set", "channels=4", "kernel_sizes=[5,3]"]) == 0
    metrics = json.loads((out / TRAIN_METRICS).read_text())
    assert metrics["recipe"] == "tcn_beniaguev" and metrics["steps"] == 4
    assert read_checkpoint(out / BEST_CHECKPOINT)["extra"]["recipe"] == "tcn_beniaguev"
    assert read_checkpoint(out / LAST_CHECKPOINT)["extra"]["recipe"] == "tcn_beniaguev"
    settings = read_checkpoint(out / LAST_CHECKPOINT)["extra"]["spec"]["settings"]
    assert (settings["recipe"], settings["optimizer"], settings["window_ms"],
            settings["steps"], settings["val_windows"]) == ("tcn_beniaguev", "nadam", 400, 4, 2)


def test_check_params_takes_each_models_recipe(tmp_path: Path) -> None:
    import yaml

    from pipeline.config.checks import check_params
    from pipeline.errors import UserError
    from tests.test_params import ROOT

    published = check_params(ROOT / "configs" / "published.yaml")
    assert {m["model"]: m["recipe"] for m in published["models"]} == {
        "branch_elm": "elm", "elm": "elm", "tcn": "tcn_beniaguev", "lstm": "elm"}
    assert {m["recipe"] for m in check_params(ROOT / "params.yaml")["models"]} == {"none"}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    cases = {"models.0.recipe: missing key": lambda p: p["models"][0].pop("recipe"),
             "models.1.recipe": lambda p: p["models"][1].update(recipe="adam"),
             "train.optimizer": lambda p: p["train"].update(optimizer="sgd"),
             # a null burn-in is recipe none's default, 150 ms, longer than this window
             "train.burn_in_ms: must be in [0, window_ms)": lambda p: p["train"].update(
                 window_ms=100, burn_in_ms=None)}
    for expected, change in cases.items():
        bad = yaml.safe_load(yaml.safe_dump(params))
        change(bad)
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(UserError, match=re.escape(expected)):
            check_params(path)


def test_a_resumed_tcn_recipe_run_equals_an_uninterrupted_one(shards: Path,
                                                               tmp_path: Path) -> None:
    from pipeline.training.run import train

    settings = resolve_settings("tcn_beniaguev", {"steps": 6, "batch_size": 2, "window_ms": 200,
                                                  "val_every": 3, "val_windows": 2})
    config = {"channels": 4, "kernel_sizes": [5, 3]}
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(shards, "tcn", whole, settings, config, "cpu", show_progress=False)
    train(shards, "tcn", split, settings, config, "cpu", show_progress=False, stop_at=2)
    train(shards, "tcn", split, settings, config, "cpu", resume=True, show_progress=False)
    a = read_checkpoint(whole / LAST_CHECKPOINT)["state_dict"]
    b = read_checkpoint(split / LAST_CHECKPOINT)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
