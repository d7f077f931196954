"""The shared figures: each writes a readable PNG, atomically, and copes with odd input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from pipeline.reporting import figures as plots
from pipeline.reporting.published import PUBLISHED_NEURONIO, PublishedResult
from tests.conftest import tree_state


def _looks_drawn(path: Path) -> None:
    image = imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 600
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50


def test_roc_overlays_curves_of_any_length(tmp_path: Path) -> None:
    big = np.linspace(0, 1, 200_001) ** 3  # longer than a plot needs
    curves = {"many points": (big, np.sqrt(big), 0.8),
              "two points": (np.array([0.0, 1.0]), np.array([0.0, 1.0]), 0.5)}
    plots.save_roc(curves, tmp_path / "roc.png", title="two models")
    _looks_drawn(tmp_path / "roc.png")
    plots.save_roc({}, tmp_path / "empty.png")  # nothing to overlay is still a figure
    _looks_drawn(tmp_path / "empty.png")


def test_thinning_keeps_the_ends_and_the_shape() -> None:
    fpr = np.linspace(0, 1, 100_000) ** 4
    tpr = fpr ** 0.2
    thin_fpr, thin_tpr = plots.thin_curve(fpr, tpr, max_points=1000)
    assert len(thin_fpr) <= 2002
    assert (thin_fpr[0], thin_fpr[-1], thin_tpr[-1]) == (0.0, 1.0, 1.0)
    assert (np.diff(thin_fpr) >= 0).all()
    # the low-FPR corner, where detectors are used, keeps its detail
    assert np.count_nonzero((thin_fpr > 0) & (thin_fpr < 1e-3)) > 100
    short = np.array([0.0, 0.5, 1.0])
    assert plots.thin_curve(short, short)[0].tolist() == short.tolist()  # left alone
    with pytest.raises(ValueError):
        plots.thin_curve(np.zeros(3), np.zeros(4))


@pytest.mark.parametrize("spikes", [
    np.r_[np.zeros(100), 1, np.zeros(199)].astype(np.uint8),  # per-bin, as predictions.h5
    np.array([600.0, 740.5]),  # spike times in ms
    np.array([], dtype=np.float64),  # a silent simulation
])
def test_traces_take_spike_bins_or_times(tmp_path: Path, spikes: np.ndarray) -> None:
    time_ms = 500.0 + np.arange(300)
    truth = -70 + np.sin(time_ms / 20)
    predictions = {"a": (truth + 0.5, np.full(300, 0.1)), "b": (truth - 0.5, np.full(300, 0.3))}
    plots.save_traces(time_ms, truth, spikes, predictions, tmp_path / "traces.png")
    _looks_drawn(tmp_path / "traces.png")


def test_spike_bins_become_times() -> None:
    time_ms = 500.0 + np.arange(5)
    assert plots._spike_times(time_ms, np.array([0, 1, 0, 0, 1], np.uint8)).tolist() == [
        501.0, 504.0]
    assert plots._spike_times(time_ms, np.array([502.5])).tolist() == [502.5]


def test_misaligned_traces_are_a_programming_error(tmp_path: Path) -> None:
    time_ms = np.arange(10.0)
    with pytest.raises(ValueError, match="not aligned"):
        plots.save_traces(time_ms, time_ms, np.zeros(10), {"a": (time_ms[:9], time_ms)},
                          tmp_path / "t.png")
    assert not (tmp_path / "t.png").exists()


def test_auc_vs_params_with_and_without_published_points(tmp_path: Path) -> None:
    # (params, AUC, interval); an evaluation without an interval draws no bar
    ours = {"ELM d_m=4": (230, 0.61, 0.55, 0.66), "TCN": (1_094, 0.34, float("nan"),
                                                           float("nan"))}
    plots.save_auc_vs_params(ours, PUBLISHED_NEURONIO, tmp_path / "auc.png")
    _looks_drawn(tmp_path / "auc.png")
    plots.save_auc_vs_params(ours, [], tmp_path / "alone.png")
    _looks_drawn(tmp_path / "alone.png")


def test_published_figures_are_the_reference_sheet() -> None:
    by_model = {p.model: p for p in PUBLISHED_NEURONIO}
    assert by_model["TCN 7x128x153"].protocol == "beniaguev"
    assert by_model["Branch-ELM d_m=20"].protocol == "elm"
    assert len(by_model) == len(PUBLISHED_NEURONIO) == 12
    assert by_model["Branch-ELM d_m=20"] == PublishedResult(
        "Branch-ELM d_m=20", 8_002, 0.9922, 0.638, by_model["Branch-ELM d_m=20"].source)
    assert by_model["TCN 7x128x153"].approximate and by_model["TCN 7x128x153"].params == 9_200_000
    assert all(0.9 < p.auc < 1 and p.rmse_mv > 0 and p.source for p in PUBLISHED_NEURONIO)


def test_a_failing_save_leaves_the_previous_figure(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "roc.png"
    curve = (np.array([0.0, 1.0]), np.array([0.0, 1.0]), 0.5)
    plots.save_roc({"a": curve}, path)
    before = tree_state(tmp_path)

    def half_then_fail(self: Figure, fname: Path, **kwargs: object) -> None:
        Path(fname).write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        plots.save_roc({"b": curve}, path)
    assert tree_state(tmp_path) == before
