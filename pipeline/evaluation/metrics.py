"""The evaluation metrics of the published protocol: the one place that defines them.

Pure functions on arrays of kept bins, shaped [simulations, bins] or flat, so that every
stage (evaluate, compare, benchmarks) scores surrogates the same way and the definitions
can be tested on hand-computed cases. The protocol (docs/reference: Spieler et al., Beniaguev
et al.): drop the first `skip_ms` of each simulation, drop simulations with more than
`max_spikes` output spikes in what is left, then score all remaining 1 ms bins flattened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.protocol import FPR_POINTS, SOMA_CLIP_MV

# scikit-learn is imported inside the functions that use it: the CLI imports this module
# for its defaults while building `--help`, which must stay instant.



def drop_start(traces: np.ndarray, skip_ms: int) -> np.ndarray:
    """Bins from `skip_ms` on ([..., T] -> [..., T - skip_ms]): the start is a transient."""
    if skip_ms < 0 or skip_ms >= traces.shape[-1]:
        raise ValueError(f"skip_ms must lie in 0..{traces.shape[-1] - 1}, got {skip_ms}")
    return traces[..., skip_ms:]


def keep_simulations(true_spikes: np.ndarray, max_spikes: int) -> np.ndarray:
    """Boolean [n]: simulations with at most `max_spikes` spike bins among the kept bins.

    Counted after `drop_start`, on the output spike bins the metrics see.
    """
    return np.asarray(true_spikes).reshape(len(true_spikes), -1).sum(axis=1) <= max_spikes


@dataclass(frozen=True)
class SpikeScores:
    auc: float
    tpr_at_fpr: dict[float, float]  # target FPR -> TPR at the ROC point closest to it
    fpr: np.ndarray  # the ROC curve (sklearn, drop_intermediate=True)
    tpr: np.ndarray


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """TPR of the ROC point whose FPR is closest to `target` (the first one on a tie)."""
    return float(tpr[int(np.argmin(np.abs(np.asarray(fpr) - target)))])


def spike_scores(true_spikes: np.ndarray, spike_prob: np.ndarray,
                 fprs: Sequence[float] = FPR_POINTS) -> SpikeScores:
    """ROC AUC and TPR at fixed FPRs over all bins, flattened.

    Raises ValueError when the bins hold only one class (the ROC is then undefined).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(true_spikes).ravel()
    p = np.asarray(spike_prob).ravel()
    if y.shape != p.shape:
        raise ValueError(f"spike truth and prediction differ in size: {y.shape} vs {p.shape}")
    positives = int(np.count_nonzero(y))
    if positives == 0 or positives == y.size:
        raise ValueError("the kept bins hold only one class (no spike, or only spikes): "
                         "the ROC is undefined")
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=True)
    return SpikeScores(auc=float(roc_auc_score(y, p)),
                       tpr_at_fpr={f: tpr_at_fpr(fpr, tpr, f) for f in fprs}, fpr=fpr, tpr=tpr)


def clip_soma(mv: np.ndarray, clip_mv: float = SOMA_CLIP_MV) -> np.ndarray:
    """Voltage clipped from above at `clip_mv`: spike peaks are scored by the spike metrics."""
    return np.minimum(np.asarray(mv, dtype=np.float64), clip_mv)


def rescale_to(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The prediction z-scored, then given the truth's mean and std (both works do this for
    comparability). A constant prediction becomes the truth's mean."""
    pred = np.asarray(prediction, dtype=np.float64)
    true = np.asarray(truth, dtype=np.float64)
    std = pred.std()
    z = (pred - pred.mean()) / std if std > 0 else np.zeros_like(pred)
    return z * true.std() + true.mean()


def soma_scores(true_mv: np.ndarray, pred_mv: np.ndarray, clip_mv: float = SOMA_CLIP_MV
                ) -> dict[str, float]:
    """RMSE, MAE (mV) and explained variance (%) on the clipped soma, over all bins.

    Unsuffixed keys are after the z-score rescaling (the published figures); `_raw` keys
    score the clipped prediction as it is.
    """
    from sklearn.metrics import explained_variance_score

    true = clip_soma(true_mv, clip_mv).ravel()
    raw = clip_soma(pred_mv, clip_mv).ravel()
    if true.shape != raw.shape:
        raise ValueError(f"soma truth and prediction differ in size: {true.shape} vs "
                         f"{raw.shape}")
    scores: dict[str, float] = {}
    for suffix, pred in (("", rescale_to(raw, true)), ("_raw", raw)):
        error = pred - true
        scores[f"soma_rmse_mv{suffix}"] = float(np.sqrt(np.mean(error ** 2)))
        scores[f"soma_mae_mv{suffix}"] = float(np.mean(np.abs(error)))
        scores[f"soma_explained_variance_pct{suffix}"] = float(
            100.0 * explained_variance_score(true, pred))
    return scores


def fpr_key(fpr: float) -> str:
    """The metrics.json key of the TPR at `fpr`, e.g. tpr_at_fpr_0.0025."""
    return f"tpr_at_fpr_{fpr:g}"


def score(true_spikes: np.ndarray, spike_prob: np.ndarray, true_mv: np.ndarray,
          pred_mv: np.ndarray) -> tuple[dict[str, float], SpikeScores]:
    """All metrics of kept bins of kept simulations, as metrics.json keys, and the ROC."""
    spikes = spike_scores(true_spikes, spike_prob)
    flat = {"spike_auc": spikes.auc,
            **{fpr_key(f): t for f, t in spikes.tpr_at_fpr.items()},
            **soma_scores(true_mv, pred_mv)}
    return flat, spikes


# One line per metrics.json key that `score` writes; evaluate copies it into the file.
DEFINITIONS: dict[str, str] = {
    "spike_auc": "ROC AUC of spike_prob against the output spike bins, all kept bins flattened",
    **{fpr_key(f): f"TPR at the ROC point (sklearn roc_curve, drop_intermediate) whose FPR is "
                   f"closest to {f:g}" for f in FPR_POINTS},
    "soma_rmse_mv": f"RMSE (mV), {SOMA_CLIP_MV:g} mV-clipped soma, prediction z-scored and "
                    f"rescaled to the truth's mean and std (published convention)",
    "soma_mae_mv": "MAE (mV), clipped and rescaled as soma_rmse_mv",
    "soma_explained_variance_pct": "explained variance (%), clipped and rescaled as "
                                   "soma_rmse_mv",
    "soma_rmse_mv_raw": f"RMSE (mV), {SOMA_CLIP_MV:g} mV-clipped soma, prediction not rescaled",
    "soma_mae_mv_raw": "MAE (mV), clipped, not rescaled",
    "soma_explained_variance_pct_raw": "explained variance (%), clipped, not rescaled",
}
