"""The two published evaluators (../shared/reference/neuronio.md, "The two published
evaluators"), each written out here from the sheet, against score_simulations; the old
definition, written out too, against the new where the issue's table says they differ; and
the bootstrap intervals against brute-force resampling."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    explained_variance_score,
    mean_absolute_error,
    mean_squared_error,
    roc_auc_score,
    roc_curve,
)

from pipeline.evaluation.bootstrap import bootstrap, paired_difference, resample_counts
from pipeline.evaluation.metrics import score_simulations
from pipeline.evaluation.settings import Protocol

SKIP, MAX_SPIKES = 100, 24


def sheet_evaluator(y, p, v_true, v_pred, files, pooled: bool, lo=0, hi=MAX_SPIKES):
    """The sheet, step by step: rescale the unclipped prediction to the clipped target over
    ALL bins of ALL simulations of each file (or of all files pooled), then keep
    simulations whose WHOLE spike count is in [lo, hi], drop the first SKIP ms, score."""
    target = np.minimum(v_true, -55.0) - (-67.7)
    pred = v_pred - (-67.7)
    rescaled = np.empty_like(pred)
    for f in ([np.unique(files)] if pooled else [[u] for u in np.unique(files)]):
        rows = np.isin(files, f)
        z = (pred[rows] - pred[rows].mean()) / pred[rows].std()
        rescaled[rows] = z * target[rows].std() + target[rows].mean()
    counts = y.sum(axis=1)
    keep = (counts >= lo) & (counts <= hi)
    yk, pk = y[keep][:, SKIP:].ravel(), p[keep][:, SKIP:].ravel()
    tk, rk = target[keep][:, SKIP:].ravel(), rescaled[keep][:, SKIP:].ravel()
    fpr, tpr, _ = roc_curve(yk, pk)
    out = {"spike_auc": roc_auc_score(yk, pk),
           "soma_rmse_mv": np.sqrt(mean_squared_error(tk, rk)),
           "soma_mae_mv": mean_absolute_error(tk, rk),
           "soma_explained_variance_pct": 100 * explained_variance_score(tk, rk)}
    for f in (0.0025, 0.01):
        i = np.argmin(np.abs(fpr - f))
        out[f"tpr_at_fpr_{f:g}"] = tpr[1 if i == 0 else i]
    return out


def old_definition(y, p, v_true, v_pred):
    """Before issue 16: filter on spikes after SKIP, prediction clipped at -55 mV, rescaled
    over the kept simulations' kept bins only."""
    keep = y[:, SKIP:].sum(axis=1) <= MAX_SPIKES
    true = np.minimum(v_true[keep][:, SKIP:], -55.0).ravel()
    raw = np.minimum(v_pred[keep][:, SKIP:], -55.0).ravel()
    rescaled = (raw - raw.mean()) / raw.std() * true.std() + true.mean()
    return {"spike_auc": roc_auc_score(y[keep][:, SKIP:].ravel(), p[keep][:, SKIP:].ravel()),
            "soma_rmse_mv": np.sqrt(np.mean((rescaled - true) ** 2)), "num_kept": keep.sum()}


@pytest.fixture(scope="module")
def predictions():
    """Two files of four simulations of 600 ms; a file-dependent offset and gain in the
    prediction, so that per-file and pooled rescaling differ; one simulation with 26 spikes
    of which 3 lie in the first SKIP ms (kept by the old filter, dropped by the new), one
    spike-free simulation, a prediction that rises above -55 mV at spikes."""
    rng = np.random.default_rng(7)
    n, t = 8, 600
    files = np.repeat([0, 1], 4)
    y = np.zeros((n, t), dtype=np.uint8)
    for i, count in enumerate([3, 5, 26, 8, 0, 12, 4, 20]):
        y[i, rng.choice(np.arange(SKIP, t), count, replace=False)] = 1
    y[2, :SKIP] = 0
    y[2, [10, 40, 70]] = 1
    y[2, np.flatnonzero(y[2, SKIP:])[:3] + SKIP] = 0  # 26 in all, 23 after SKIP
    v_true = -70 + 4 * rng.standard_normal((n, t)) + 30 * y
    gain = np.where(files == 0, 1.0, 2.5)[:, None]
    v_pred = (v_true + 2 * rng.standard_normal((n, t)) + 3) * gain - 10 * files[:, None]
    p = np.clip(0.5 * y + 0.6 * rng.random((n, t)), 0, 1)
    assert y[2].sum() == 26 and y[2, SKIP:].sum() == 23
    return y, p, v_true, v_pred, files


@pytest.mark.parametrize("evaluator", ["elm", "beniaguev"])
def test_each_evaluator_equals_the_sheet(predictions, evaluator: str) -> None:
    y, p, v_true, v_pred, files = predictions
    got = score_simulations(y, p, v_true, v_pred, files, evaluator, SKIP, MAX_SPIKES)
    want = sheet_evaluator(y, p, v_true, v_pred, files, pooled=evaluator == "beniaguev")
    for key, value in want.items():
        assert got.metrics[key] == pytest.approx(value, abs=1e-9), key
    np.testing.assert_array_equal(got.keep, y.sum(axis=1) <= MAX_SPIKES)


def test_beniaguev_reports_his_extra_filters(predictions) -> None:
    y, p, v_true, v_pred, files = predictions
    got = score_simulations(y, p, v_true, v_pred, files, "beniaguev", SKIP, MAX_SPIKES).metrics
    for lo, hi in ((1, 24), (0, 18)):
        want = sheet_evaluator(y, p, v_true, v_pred, files, True, lo, hi)
        for key, value in want.items():
            assert got[f"{key}_spikes_{lo}_{hi}"] == pytest.approx(value, abs=1e-9)
    elm = score_simulations(y, p, v_true, v_pred, files, "elm", SKIP, MAX_SPIKES).metrics
    assert not any(key.endswith("_spikes_1_24") for key in elm)


def test_old_and_new_definitions_differ_where_the_table_says(predictions) -> None:
    y, p, v_true, v_pred, files = predictions
    old = old_definition(y, p, v_true, v_pred)
    new = score_simulations(y, p, v_true, v_pred, files, "elm", SKIP, MAX_SPIKES)
    pooled = score_simulations(y, p, v_true, v_pred, files, "beniaguev", SKIP, MAX_SPIKES)
    assert old["num_kept"] == 8 and new.keep.sum() == 7  # the whole-simulation count
    assert abs(old["spike_auc"] - new.metrics["spike_auc"]) > 1e-4
    assert abs(old["soma_rmse_mv"] - new.metrics["soma_rmse_mv"]) > 0.05
    # per file and pooled rescaling differ when files differ in offset and gain
    assert abs(new.metrics["soma_rmse_mv"] - pooled.metrics["soma_rmse_mv"]) > 0.05
    assert new.metrics["spike_auc"] == pooled.metrics["spike_auc"]


def test_beniaguev_burn_in_follows_the_receptive_field() -> None:
    elm, beniaguev = Protocol(), Protocol(protocol="beniaguev")
    assert elm.burn_in_for(153) == 150  # the ELM evaluator keeps its own
    assert beniaguev.burn_in_for(153) == 154  # the 7x128x153 TCN: receptive field 153 ms
    assert type(beniaguev.burn_in_for(153.0)) is int  # TCNs report it in ms, as a float
    assert beniaguev.burn_in_for(45) == 150
    assert beniaguev.burn_in_for(400) == 250
    assert beniaguev.burn_in_for(None) == 150  # a recurrent model
    assert Protocol(protocol="beniaguev", window_ms=120).burn_in_for(10) == 70


def test_bootstrap_equals_brute_force_resampling(predictions) -> None:
    y, p, v_true, v_pred, files = predictions
    scored = score_simulations(y, p, v_true, v_pred, files, "elm", SKIP, MAX_SPIKES)
    keep = scored.keep
    args = (y[keep][:, SKIP:], p[keep][:, SKIP:], v_true[keep][:, SKIP:],
            scored.rescaled_mv[keep][:, SKIP:])
    reps = bootstrap(*args, seed=3, replicates=20)
    counts = resample_counts(int(keep.sum()), 20, 3)
    for r in (0, 7, 19):
        rows = np.repeat(np.arange(keep.sum()), counts[r])
        yy, pp = args[0][rows].ravel(), args[1][rows].ravel()
        assert reps.values["spike_auc"][r] == pytest.approx(roc_auc_score(yy, pp), abs=1e-12)
        error = args[3][rows] - np.minimum(args[2][rows], -55.0)
        assert reps.values["soma_rmse_mv"][r] == pytest.approx(np.sqrt(np.mean(error ** 2)))
    again = bootstrap(*args, seed=3, replicates=20)
    np.testing.assert_array_equal(again.values["spike_auc"], reps.values["spike_auc"])
    low, high = reps.interval("spike_auc")
    assert low <= scored.metrics["spike_auc"] <= high and low < high


def test_paired_difference_resolves_a_real_gap_but_not_noise(predictions) -> None:
    y, p, v_true, v_pred, files = predictions
    rng = np.random.default_rng(1)
    keep = y.sum(axis=1) <= MAX_SPIKES
    yk, vk = y[keep][:, SKIP:], v_true[keep][:, SKIP:]
    good = np.clip(0.8 * yk + 0.3 * rng.random(yk.shape), 0, 1)
    bad = rng.random(yk.shape)
    good_twin = np.clip(good + 1e-6 * rng.random(yk.shape), 0, 1)
    reps = {name: bootstrap(yk, q, vk, vk, seed=0, replicates=200)
            for name, q in (("good", good), ("bad", bad), ("twin", good_twin))}

    def diff(a: str, b: str):
        return paired_difference("spike_auc", 0.0, 0.0, reps[a].values["spike_auc"],
                                 reps[b].values["spike_auc"])

    assert diff("good", "bad").resolved
    assert not diff("good", "twin").resolved
