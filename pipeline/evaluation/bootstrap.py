"""Bootstrap intervals over test simulations, and paired differences between two models.

A resample draws the kept simulations with replacement; each metric is recomputed on the
resampled bins. The draws depend only on the seed and the number of simulations, so two
models scored on the same simulations with the same seed see the same resamples, and the
difference of their replicates is a paired bootstrap of their difference.

Per replicate the AUC and ROC come from one sort of all bins (weights = how often each
simulation was drawn), not from a new sklearn call: the same numbers, in O(bins).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.evaluation.metrics import clip_soma, fpr_key
from pipeline.protocol import FPR_POINTS

REPLICATES = 1000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Replicates:
    """Each metric's value in every resample (same order for every metric)."""

    seed: int
    num_sims: int
    values: dict[str, np.ndarray]  # metrics.json key -> [replicates]

    def interval(self, key: str, confidence: float = CONFIDENCE) -> tuple[float, float]:
        return percentile_interval(self.values[key], confidence)


def percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE
                        ) -> tuple[float, float]:
    """The central `confidence` interval of replicates, NaNs (resamples without both
    classes) left out; NaN bounds when none is left."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return np.nan, np.nan
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def resample_counts(num_sims: int, replicates: int, seed: int) -> np.ndarray:
    """int [replicates, num_sims]: how often each simulation is drawn in each resample."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num_sims, size=(replicates, num_sims))
    counts = np.zeros((replicates, num_sims), dtype=np.int64)
    np.add.at(counts, (np.arange(replicates)[:, None], draws), 1)
    return counts


def _weighted_roc(order_groups: np.ndarray, y_sorted: np.ndarray, w_sorted: np.ndarray,
                  fprs: Sequence[float]) -> tuple[float, dict[float, float]]:
    """AUC and TPR at `fprs` of bins sorted by decreasing score, tied scores grouped
    (`order_groups`: start index of each group), each bin weighted."""
    pos = np.add.reduceat(w_sorted * y_sorted, order_groups)
    neg = np.add.reduceat(w_sorted * (1 - y_sorted), order_groups)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        return np.nan, {f: np.nan for f in fprs}
    tpr = np.concatenate([[0.0], np.cumsum(pos) / total_pos])
    fpr = np.concatenate([[0.0], np.cumsum(neg) / total_neg])
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    tprs = {}
    for f in fprs:
        index = int(np.argmin(np.abs(fpr - f)))
        tprs[f] = float(tpr[max(index, 1)])
    return auc, tprs


def bootstrap(true_spikes: np.ndarray, spike_prob: np.ndarray, true_mv: np.ndarray,
              rescaled_mv: np.ndarray, seed: int = 0, replicates: int = REPLICATES,
              fprs: Sequence[float] = FPR_POINTS) -> Replicates:
    """Replicates of spike_auc, the TPRs at `fprs` and soma_rmse_mv over resampled
    simulations ([n, T] scored bins each; rescaled_mv is the published rescaled prediction).

    The TPR replicates read the full ROC curve; sklearn's drop_intermediate curve, which
    the point estimate reads, can put the nearest point elsewhere by a hair."""
    y = np.asarray(true_spikes, dtype=np.float64)
    n, t = y.shape
    p = np.asarray(spike_prob, dtype=np.float64).ravel()
    order = np.argsort(-p, kind="stable")
    p_sorted = p[order]
    groups = np.flatnonzero(np.concatenate([[True], p_sorted[1:] != p_sorted[:-1]]))
    y_sorted = y.ravel()[order]
    sim_sorted = order // t
    squared = ((np.asarray(rescaled_mv, dtype=np.float64) - clip_soma(true_mv)) ** 2).sum(1)
    counts = resample_counts(n, replicates, seed)
    values: dict[str, list[float]] = {"spike_auc": [], "soma_rmse_mv": [],
                                      **{fpr_key(f): [] for f in fprs}}
    for draw in counts:
        auc, tprs = _weighted_roc(groups, y_sorted, draw[sim_sorted].astype(np.float64), fprs)
        values["spike_auc"].append(auc)
        for f, v in tprs.items():
            values[fpr_key(f)].append(v)
        values["soma_rmse_mv"].append(float(np.sqrt((draw * squared).sum() / (draw.sum() * t))))
    return Replicates(seed=seed, num_sims=n,
                      values={k: np.asarray(v) for k, v in values.items()})


@dataclass(frozen=True)
class Difference:
    """A's metric minus B's over paired resamples."""

    key: str
    estimate: float
    low: float
    high: float

    @property
    def resolved(self) -> bool:
        """The 95 % interval of the difference excludes 0."""
        return self.low > 0 or self.high < 0


def paired_difference(key: str, estimate_a: float, estimate_b: float,
                      replicates_a: np.ndarray, replicates_b: np.ndarray,
                      confidence: float = CONFIDENCE) -> Difference:
    """The difference A - B and its paired bootstrap interval (same resamples for both)."""
    a, b = np.asarray(replicates_a), np.asarray(replicates_b)
    if a.shape != b.shape:
        raise ValueError(f"{key}: replicates of different resamples ({a.shape} vs {b.shape})")
    low, high = percentile_interval(a - b, confidence)
    return Difference(key, estimate_a - estimate_b, low, high)
