"""The metric definitions on hand-computed cases, and their agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from pipeline.evaluation.metrics import (
    DEFINITIONS,
    clip_soma,
    drop_start,
    keep_simulations,
    rescale_to,
    score,
    soma_scores,
    spike_scores,
    tpr_at_fpr,
)


def test_drop_start_keeps_bins_from_skip_on() -> None:
    traces = np.arange(12).reshape(2, 6)
    np.testing.assert_array_equal(drop_start(traces, 4), [[4, 5], [10, 11]])
    np.testing.assert_array_equal(drop_start(traces, 0), traces)
    for bad in (-1, 6):
        with pytest.raises(ValueError, match="skip_ms"):
            drop_start(traces, bad)


def test_spike_filter_counts_the_whole_simulation() -> None:
    spikes = np.zeros((3, 10), dtype=np.uint8)
    spikes[0, [1, 2, 3]] = 1  # three spikes, all in what the metrics later drop
    spikes[1, [1, 6]] = 1
    spikes[2, [5, 6, 8]] = 1
    np.testing.assert_array_equal(keep_simulations(spikes, 2), [False, True, False])
    np.testing.assert_array_equal(keep_simulations(spikes, 3), [True, True, True])
    np.testing.assert_array_equal(keep_simulations(spikes, 3, min_spikes=3), [True, False, True])


def test_tpr_at_the_closest_fpr_never_the_corner() -> None:
    fpr = np.array([0.0, 0.002, 0.004, 0.02, 1.0])
    tpr = np.array([0.0, 0.3, 0.5, 0.8, 1.0])
    assert tpr_at_fpr(fpr, tpr, 0.0025) == 0.3  # |0.002 - 0.0025| < |0.004 - 0.0025|
    assert tpr_at_fpr(fpr, tpr, 0.01) == 0.5  # 0.006 away beats 0.010 away
    assert tpr_at_fpr(fpr, tpr, 0.003) == 0.3  # a tie goes to the first point
    assert tpr_at_fpr(fpr, tpr, 0.9) == 1.0
    # the closest point is the (0, 0) corner: the published rule moves the index to 1
    assert tpr_at_fpr(np.array([0.0, 0.3, 1.0]), np.array([0.0, 0.6, 1.0]), 0.01) == 0.6


def test_spike_scores_hand_computed() -> None:
    y = np.array([[0, 0, 1], [1, 0, 0]])
    p = np.array([[0.1, 0.4, 0.35], [0.8, 0.2, 0.05]])
    # positives 0.35, 0.8 against negatives 0.1, 0.4, 0.2, 0.05: 7 of 8 pairs ordered right
    scores = spike_scores(y, p, fprs=(0.25, 0.5))
    assert scores.auc == pytest.approx(7 / 8)
    # ROC: threshold 0.8 -> (0, 0.5); 0.4 -> (0.25, 0.5); 0.35 -> (0.25, 1); then to (1, 1)
    np.testing.assert_allclose(scores.fpr[:4], [0, 0, 0.25, 0.25])
    np.testing.assert_allclose(scores.tpr[:4], [0, 0.5, 0.5, 1.0])
    assert scores.tpr_at_fpr[0.25] == 0.5  # the first of the two points at FPR 0.25
    assert scores.tpr_at_fpr[0.5] == 0.5  # 0.25 away from 0.25, 0.5 away from 1


def test_spike_scores_agree_with_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((7, 400)) < 0.01).astype(np.uint8)
    p = np.clip(0.6 * y + rng.random(y.shape) * 0.7, 0, 1).astype(np.float32)
    scores = spike_scores(y, p)
    assert scores.auc == roc_auc_score(y.ravel(), p.ravel())
    fpr, tpr, _ = roc_curve(y.ravel(), p.ravel(), drop_intermediate=True)
    np.testing.assert_array_equal(scores.fpr, fpr)
    np.testing.assert_array_equal(scores.tpr, tpr)
    for target, got in scores.tpr_at_fpr.items():
        assert got == tpr[max(1, int(np.argmin(np.abs(fpr - target))))]


def test_one_class_has_no_roc() -> None:
    with pytest.raises(ValueError, match="only one class"):
        spike_scores(np.zeros((2, 5)), np.full((2, 5), 0.3))
    with pytest.raises(ValueError, match="only one class"):
        spike_scores(np.ones(4), np.full(4, 0.3))


def test_soma_clipped_from_above_at_minus_55() -> None:
    np.testing.assert_array_equal(clip_soma(np.array([-70.0, -55.0, -54.9, 20.0])),
                                  [-70.0, -55.0, -55.0, -55.0])


def test_rescaling_gives_the_truths_mean_and_std() -> None:
    rng = np.random.default_rng(1)
    truth, pred = rng.normal(-65, 3, 500), rng.normal(2, 10, 500)
    rescaled = rescale_to(pred, truth)
    assert rescaled.mean() == pytest.approx(truth.mean())
    assert rescaled.std() == pytest.approx(truth.std())
    assert np.corrcoef(rescaled, pred)[0, 1] == pytest.approx(1.0)
    np.testing.assert_array_equal(rescale_to(np.full(4, 3.0), np.array([1.0, 2, 3, 6])),
                                  np.full(4, 3.0))  # a constant becomes the truth's mean


def test_soma_scores_hand_computed() -> None:
    truth = np.array([[-70.0, -60.0], [-56.0, -40.0]])  # clipped: -70, -60, -56, -55
    pred = np.array([[-68.0, -60.0], [-58.0, -53.0]])  # not clipped: the published rule
    scores = soma_scores(truth, pred)
    # raw errors 2, 0, -2, 2: RMSE sqrt(3), MAE 1.5; error mean 0.5, variance 2.75
    assert scores["soma_rmse_mv_raw"] == pytest.approx(np.sqrt(3))
    assert scores["soma_mae_mv_raw"] == pytest.approx(1.5)
    # truth mean -60.25, deviations -9.75, 0.25, 4.25, 5.25: variance 140.75 / 4
    assert scores["soma_explained_variance_pct_raw"] == pytest.approx(
        100 * (1 - 2.75 / (140.75 / 4)))
    # rescaled: the prediction's deviations (-8.25, -0.25, 1.75, 6.75) times the std ratio
    ratio = np.sqrt(140.75 / 116.75)
    rescaled = -60.25 + ratio * np.array([-8.25, -0.25, 1.75, 6.75])
    error = rescaled - np.array([-70.0, -60.0, -56.0, -55.0])
    assert scores["soma_rmse_mv"] == pytest.approx(np.sqrt(np.mean(error ** 2)))
    assert scores["soma_mae_mv"] == pytest.approx(np.mean(np.abs(error)))
    assert scores["soma_explained_variance_pct"] == pytest.approx(
        100 * (1 - np.var(error) / (140.75 / 4)))


def test_rescaling_forgives_offset_and_gain_but_raw_does_not() -> None:
    truth = np.linspace(-80, -56, 50)
    scores = soma_scores(truth, 2 * truth + 30)  # all below -55: clipping leaves it linear
    assert scores["soma_rmse_mv"] == pytest.approx(0, abs=1e-9)
    assert scores["soma_explained_variance_pct"] == pytest.approx(100)
    assert scores["soma_rmse_mv_raw"] > 10


def test_score_writes_exactly_the_documented_keys() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random((3, 200)) < 0.05).astype(np.uint8)
    flat, roc = score(y, rng.random(y.shape), rng.normal(-65, 2, y.shape),
                      rng.normal(-65, 2, y.shape))
    assert set(flat) == set(DEFINITIONS)
    assert {"spike_auc", "tpr_at_fpr_0.0025", "tpr_at_fpr_0.01", "soma_rmse_mv",
            "soma_explained_variance_pct", "soma_rmse_mv_raw", "soma_mae_mv"} <= set(flat)
    assert flat["spike_auc"] == roc.auc
