"""The ELM network: its parameter budget, its connectivity, and the batched recurrence
against the per-unit, per-step definition."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from surrogates import build, load, save
from surrogates.elm_network import (
    connection_counts,
    draw_connectivity,
    param_budget,
    step_by_step,
    tau_m_grid,
)
from surrogates.errors import ModelError

SMALL = {"num_exc": 6, "num_inh": 6}


def network(**settings: object) -> torch.nn.Module:
    return build("elm_network", **{**SMALL, **settings})


@pytest.mark.parametrize(("units", "complexity", "connectivity", "fraction", "learn_tau"),
                         [(1, 1, 1, 0.25, False), (1, 3, 12, 0.25, False),
                          (2, 1, 13, 0.25, False), (5, 2, 7, 0.0, True),
                          (7, 4, 16, 0.5, False), (16, 1, 3, 0.9, True),
                          (3, 6, 9, 0.25, True)])
def test_num_params_is_the_closed_form(units: int, complexity: int, connectivity: int,
                                       fraction: float, learn_tau: bool) -> None:
    model = network(num_units=units, complexity=complexity, connectivity=connectivity,
                    recurrent_fraction=fraction, learn_tau_m=learn_tau)
    expected = units * (connectivity + 4 * complexity ** 2 + 6 * complexity + 2) + 2
    expected += units * complexity if learn_tau else 0
    assert model.num_params() == expected == param_budget(units, complexity, connectivity,
                                                          learn_tau)


def test_budget_formula_counts_every_tensor() -> None:
    """Term by term, so that the formula in the docs and the layer stay one thing."""
    n, k_e, k_c = 9, 3, 11
    model = network(num_units=n, complexity=k_e, connectivity=k_c)
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    k_ext, k_rec = connection_counts(12, n, k_c, 0.25)
    assert sizes == {"syn_ext_raw": n * k_ext, "syn_rec": n * k_rec,
                     "w_u": n * 2 * k_e, "w_q": n * 2 * k_e * k_e, "b_in": n * 2 * k_e,
                     "w_o": n * k_e * 2 * k_e, "b_o": n * k_e, "out": n * k_e,
                     "readout.weight": 2 * n, "readout.bias": 2}


@pytest.mark.parametrize(("units", "connectivity", "fraction"),
                         [(1, 5, 0.25), (4, 8, 0.25), (10, 12, 0.5), (3, 14, 0.0),
                          (20, 30, 0.25)])
def test_every_unit_reads_exactly_kc_distinct_sources_and_never_itself(
        units: int, connectivity: int, fraction: float) -> None:
    model = network(num_units=units, connectivity=connectivity, recurrent_fraction=fraction)
    sources = model.sources.numpy()
    k_ext, k_rec = connection_counts(12, units, connectivity, fraction)
    assert sources.shape == (units, connectivity) and k_ext + k_rec == connectivity
    for i, row in enumerate(sources):
        assert len(set(row.tolist())) == connectivity
        assert np.all(row[:k_ext] < 12) and np.all(row[k_ext:] >= 12)
        assert 12 + i not in row


def test_connection_counts_fill_from_units_when_inputs_run_out() -> None:
    assert connection_counts(12, 1, 5, 0.25) == (5, 0)  # one unit: no one else to read
    assert connection_counts(12, 10, 8, 0.25) == (6, 2)
    assert connection_counts(12, 10, 16, 0.0) == (12, 4)  # only 12 inputs exist
    with pytest.raises(ValueError, match="exceeds"):
        connection_counts(12, 3, 15, 0.25)


def test_connectivity_is_reproducible_from_the_seed() -> None:
    a = network(num_units=12, connectivity=6, connectivity_seed=3).sources
    b = network(num_units=12, connectivity=6, connectivity_seed=3).sources
    c = network(num_units=12, connectivity=6, connectivity_seed=4).sources
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_inputs_are_read_evenly() -> None:
    """Least-used-first: no input is read twice before every input is read once."""
    for units, k_ext in itertools.product((3, 7, 50), (1, 5, 40)):
        rows = draw_connectivity(100, units, k_ext, 0, seed=1)
        counts = np.bincount(rows.ravel(), minlength=100)
        assert counts.max() - counts.min() <= 1


def test_branch_bias_draws_from_the_home_branch() -> None:
    segment_branch = [0] * 4 + [1] * 4 + [2] * 2  # 10 segments: 20 inputs
    branch = np.array(segment_branch * 2)
    full = network(num_exc=10, num_inh=10, num_units=6, connectivity=6,
                   recurrent_fraction=0.0, branch_bias=1.0, segment_branch=segment_branch)
    for row in full.sources.numpy():
        ids = branch[row]
        home = np.bincount(ids).argmax()
        # all 6 from one branch, or all 4 inputs of the small branch plus 2 others
        assert (ids == home).sum() == min(6, (branch == home).sum())
    half = network(num_exc=10, num_inh=10, num_units=6, connectivity=6,
                   recurrent_fraction=0.0, branch_bias=0.5, segment_branch=segment_branch)
    for row in half.sources.numpy():
        assert np.bincount(branch[row]).max() >= 3
    with pytest.raises(ModelError, match="segment_branch"):
        network(num_exc=10, num_inh=10, branch_bias=0.5)


@pytest.mark.parametrize(("activation", "update", "fraction"),
                         [("relu", "v1", 0.4), ("silu", "v2", 0.4), ("relu", "v1", 0.0)])
def test_batched_recurrence_equals_the_per_unit_loop(activation: str, update: str,
                                                     fraction: float) -> None:
    """Outputs and every gradient of the fused layer equal those of the definition, which
    loops over time steps and over units."""
    torch.manual_seed(0)
    model = network(num_units=5, complexity=3, connectivity=7, recurrent_fraction=fraction,
                    mlp_activation=activation, update=update, learn_tau_m=True).double()
    with torch.no_grad():  # weights off their initial values, so nothing is accidentally 0
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = (torch.rand(3, 40, 12) < 0.2).double()
    y = model(x)
    ref = step_by_step(model.tensors(), x)
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)
    weights = torch.randn_like(y)
    grads = torch.autograd.grad((y * weights).sum(), list(model.parameters()))
    ref_grads = torch.autograd.grad((ref * weights).sum(), list(model.parameters()))
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-10, msg=name)


def test_recurrent_input_matters() -> None:
    """Units do read each other: zeroing the recurrent weights changes the output."""
    torch.manual_seed(1)
    model = network(num_units=6, complexity=2, connectivity=8, recurrent_fraction=0.5)
    x = (torch.rand(2, 30, 12) < 0.3).float()
    with torch.no_grad():
        y = model(x)
        model.syn_rec.mul_(10)
        assert not torch.allclose(y, model(x))


def test_memory_time_constants_tile_the_range() -> None:
    cfg = network(num_units=4, complexity=3, connectivity=4).config
    tau = tau_m_grid(cfg)
    assert tau.shape == (4, 3)
    flat = tau.T.reshape(-1)  # d-major: log-evenly spaced, rising
    steps = torch.diff(torch.log(flat))
    torch.testing.assert_close(steps, torch.full_like(steps, float(steps[0])))
    assert 1.0 < float(flat[0]) and float(flat[-1]) < 150.0
    single = tau_m_grid(network(num_units=8, complexity=1, connectivity=4).config)
    assert float(single.min()) < 2.0 and float(single.max()) > 80.0  # k_e = 1 spans it too


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = network(num_units=4, complexity=2, connectivity=5, connectivity_seed=2)
    save(model, tmp_path / "net.pt")
    again = load(tmp_path / "net.pt")
    x = (torch.rand(2, 20, 12) < 0.2).float()
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), again(x))
    assert torch.equal(model.sources, again.sources)


@pytest.mark.parametrize(("settings", "message"), [
    ({"connectivity": 99, "num_units": 3}, "exceeds"),
    ({"recurrent_fraction": 1.0}, "recurrent_fraction"),
    ({"complexity": 0}, ">= 1"),
    ({"update": "v3"}, "update"),
])
def test_bad_settings_are_model_errors(settings: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        network(**settings)


def test_bad_input_shape_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="expects inputs"):
        network()(torch.zeros(1, 5, 3))


@pytest.mark.slow
@pytest.mark.parametrize(("units", "complexity", "connectivity", "steps"),
                         [(4, 2, 220, 120), (64, 2, 126, 60), (256, 2, 361, 40),
                          (1024, 4, 887, 40)])
def test_trains_stably_from_1e3_to_1e6_parameters(tmp_path: Path, units: int, complexity: int,
                                                  connectivity: int, steps: int) -> None:
    """On NeuronIO-sized synthetic input (1278 inputs) every size trains: finite losses, the
    training loss at least halves, and validation beats the best constant prediction."""
    from pipeline.config.training import TrainSettings
    from pipeline.datasets.dataset import write_dataset
    from pipeline.filenames import TRAIN_LOG
    from pipeline.training.loop import ValidationSet, validation_windows
    from pipeline.training.run import train
    from tests.synthetic import synthetic_batch

    for part, ids in (("train", range(8)), ("valid", range(100, 102))):
        batch = synthetic_batch(np.array(list(ids)), num_segments=639, duration_ms=1500,
                                rate_hz=12.0)
        write_dataset(tmp_path / "data" / part, [batch], {"stage": "test", "part": part})
    settings = TrainSettings(steps=steps, batch_size=4, window_ms=300, min_start_ms=300,
                             burn_in_ms=100, lr=5e-3, val_every=steps // 4, val_windows=8)
    result = train(tmp_path / "data", "elm_network", tmp_path / "run", settings,
                   {"num_units": units, "complexity": complexity,
                    "connectivity": connectivity}, "cpu", show_progress=False)
    assert 0.9e3 < result["num_params"] < 1.1e6
    with (tmp_path / "run" / TRAIN_LOG).open() as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["loss"]) for r in rows]
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0]
    val = ValidationSet.from_windows(validation_windows(tmp_path / "data" / "valid", settings))
    truth = val.soma_mv[:, settings.burn_in_ms:].clamp(max=settings.soma_clip_mv)
    assert result["val_soma_rmse_mv"] < float(truth.std(unbiased=False))


def test_a_checkpoint_with_other_sources_is_refused(tmp_path: Path) -> None:
    model = network(num_units=4, complexity=2, connectivity=5)
    save(model, tmp_path / "net.pt")
    payload = torch.load(tmp_path / "net.pt", weights_only=True)
    payload["state_dict"]["sources"] = payload["state_dict"]["sources"].flip(0)
    torch.save(payload, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="differs from"):
        load(tmp_path / "other.pt")
