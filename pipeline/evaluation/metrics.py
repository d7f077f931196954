"""The evaluation metrics of the two published evaluators: the one place that defines them.

Pure functions on arrays, so that every stage (evaluate, sweep, training's validation,
benchmarks) scores surrogates the same way and the definitions can be tested on
hand-computed cases. The evaluators (../shared/reference/neuronio.md, "The two published
evaluators"), on whole simulations:

1. the (unclipped) soma prediction is z-scored and mapped to the mean and std of the
   -55 mV-clipped truth, over ALL bins of ALL simulations of a rescaling unit: a test file
   for the ELM evaluator (`elm`), the whole test set for Beniaguev's (`beniaguev`);
2. simulations are kept when their output spike count over the WHOLE simulation lies in
   [0, max_spikes]; Beniaguev's also reports the filters of EXTRA_FILTERS;
3. the first skip_ms are dropped; AUC over all remaining bins flattened, TPR at fixed FPR by
   ROC index (moved to 1 when it is 0), RMSE, MAE and explained variance on the flat bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.protocol import EVALUATORS, FPR_POINTS, SOMA_CLIP_MV

# scikit-learn is imported inside the functions that use it: the CLI imports this module
# for its defaults while building `--help`, which must stay instant.

# Beniaguev's evaluator also reports these spike-count filters (as keys suffixed
# filter_suffix(lo, hi)); the main figures use [0, max_spikes].
EXTRA_FILTERS: dict[str, tuple[tuple[int, int], ...]] = {
    "elm": (), "beniaguev": ((1, 24), (0, 18))}


def drop_start(traces: np.ndarray, skip_ms: int) -> np.ndarray:
    """Bins from `skip_ms` on ([..., T] -> [..., T - skip_ms]): the start is a transient."""
    if skip_ms < 0 or skip_ms >= traces.shape[-1]:
        raise ValueError(f"skip_ms must lie in 0..{traces.shape[-1] - 1}, got {skip_ms}")
    return traces[..., skip_ms:]


def keep_simulations(true_spikes: np.ndarray, max_spikes: int, min_spikes: int = 0
                     ) -> np.ndarray:
    """Boolean [n]: simulations whose spike bins over the whole simulation (pass all of it,
    as both evaluators count) number in [min_spikes, max_spikes]."""
    counts = np.asarray(true_spikes).reshape(len(true_spikes), -1).sum(axis=1)
    return (counts >= min_spikes) & (counts <= max_spikes)


def filter_suffix(lo: int, hi: int) -> str:
    """The metrics.json key suffix of an extra spike filter, e.g. _spikes_1_24."""
    return f"_spikes_{lo}_{hi}"


@dataclass(frozen=True)
class SpikeScores:
    auc: float
    tpr_at_fpr: dict[float, float]  # target FPR -> TPR by the published index rule
    fpr: np.ndarray  # the ROC curve (sklearn, drop_intermediate=True)
    tpr: np.ndarray


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """TPR at index argmin |fpr - target| (the first on a tie), moved to 1 when it is 0:
    both evaluators' rule, which never reports the curve's (0, 0) corner."""
    index = int(np.argmin(np.abs(np.asarray(fpr) - target)))
    if index == 0 and len(fpr) > 1:
        index = 1
    return float(tpr[index])


def spike_scores(true_spikes: np.ndarray, spike_prob: np.ndarray,
                 fprs: Sequence[float] = FPR_POINTS) -> SpikeScores:
    """ROC AUC and TPR at fixed FPRs over all bins, flattened.

    Raises ValueError when the bins hold only one class (the ROC is then undefined).
    """
    from sklearn.metrics import auc, roc_curve

    y = np.asarray(true_spikes).ravel()
    p = np.asarray(spike_prob).ravel()
    if y.shape != p.shape:
        raise ValueError(f"spike truth and prediction differ in size: {y.shape} vs {p.shape}")
    positives = int(np.count_nonzero(y))
    if positives == 0 or positives == y.size:
        raise ValueError("the kept bins hold only one class (no spike, or only spikes): "
                         "the ROC is undefined")
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=True)
    return SpikeScores(auc=float(auc(fpr, tpr)),
                       tpr_at_fpr={f: tpr_at_fpr(fpr, tpr, f) for f in fprs}, fpr=fpr, tpr=tpr)


def clip_soma(mv: np.ndarray, clip_mv: float = SOMA_CLIP_MV) -> np.ndarray:
    """Voltage clipped from above at `clip_mv`: spike peaks are scored by the spike metrics."""
    return np.minimum(np.asarray(mv, dtype=np.float64), clip_mv)


def rescale_to(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The prediction z-scored, then given the truth's mean and std over all their bins
    (both works do this for comparability). A constant prediction becomes the truth's mean."""
    pred = np.asarray(prediction, dtype=np.float64)
    true = np.asarray(truth, dtype=np.float64)
    std = pred.std()
    z = (pred - pred.mean()) / std if std > 0 else np.zeros_like(pred)
    return z * true.std() + true.mean()


def rescale_by_unit(pred_mv: np.ndarray, true_mv: np.ndarray, units: np.ndarray
                    ) -> np.ndarray:
    """Each rescaling unit's predictions ([n, T], rows labelled by `units`) rescaled to its
    clipped truth over all its simulations and bins; the prediction itself is not clipped."""
    out = np.empty(np.shape(pred_mv), dtype=np.float64)
    units = np.asarray(units)
    clipped = clip_soma(true_mv)
    for unit in np.unique(units):
        rows = units == unit
        out[rows] = rescale_to(np.asarray(pred_mv)[rows], clipped[rows])
    return out


def soma_scores(true_mv: np.ndarray, pred_mv: np.ndarray, rescaled_mv: np.ndarray | None = None,
                clip_mv: float = SOMA_CLIP_MV) -> dict[str, float]:
    """RMSE, MAE (mV) and explained variance (%) against the clipped soma, over all bins.

    Unsuffixed keys score `rescaled_mv` (the published figures; by default the prediction
    rescaled over these bins); `_raw` keys score the prediction as it is, unclipped.
    """
    from sklearn.metrics import explained_variance_score

    true = clip_soma(true_mv, clip_mv).ravel()
    raw = np.asarray(pred_mv, dtype=np.float64).ravel()
    if true.shape != raw.shape:
        raise ValueError(f"soma truth and prediction differ in size: {true.shape} vs "
                         f"{raw.shape}")
    rescaled = rescale_to(raw, true) if rescaled_mv is None else np.ravel(rescaled_mv)
    scores: dict[str, float] = {}
    for suffix, pred in (("", rescaled), ("_raw", raw)):
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
          pred_mv: np.ndarray, rescaled_mv: np.ndarray | None = None
          ) -> tuple[dict[str, float], SpikeScores]:
    """All metrics of the given (kept) bins as metrics.json keys, and the ROC."""
    spikes = spike_scores(true_spikes, spike_prob)
    flat = {"spike_auc": spikes.auc,
            **{fpr_key(f): t for f, t in spikes.tpr_at_fpr.items()},
            **soma_scores(true_mv, pred_mv, rescaled_mv)}
    return flat, spikes


@dataclass(frozen=True)
class Scored:
    """One evaluator's verdict on whole simulations."""

    metrics: dict[str, float]  # the main filter's keys, then the extra filters' (suffixed)
    roc: SpikeScores  # of the main filter
    keep: np.ndarray  # bool [n]: simulations of the main filter
    rescaled_mv: np.ndarray  # float64 [n, T]: the rescaled soma prediction, whole traces


def score_simulations(true_spikes: np.ndarray, spike_prob: np.ndarray, true_mv: np.ndarray,
                      pred_mv: np.ndarray, units: np.ndarray, evaluator: str = "elm",
                      skip_ms: int = 500, max_spikes: int = 24) -> Scored:
    """A published evaluator on whole simulations ([n, T] each; `units` labels each row's
    rescaling unit, used by `elm`; `beniaguev` pools all rows)."""
    if evaluator not in EVALUATORS:
        raise ValueError(f"evaluator must be one of {', '.join(EVALUATORS)}, got {evaluator!r}")
    pooled = np.zeros(len(true_mv), dtype=np.int64)
    rescaled = rescale_by_unit(pred_mv, true_mv, units if evaluator == "elm" else pooled)
    filters = ((0, max_spikes), *EXTRA_FILTERS[evaluator])
    flat: dict[str, float] = {}
    main: tuple[SpikeScores, np.ndarray] | None = None
    for lo, hi in filters:
        keep = keep_simulations(true_spikes, hi, lo)
        if not keep.any():
            raise ValueError(f"no simulation has {lo} to {hi} output spikes")
        part, roc = score(*(drop_start(np.asarray(a)[keep], skip_ms)
                            for a in (true_spikes, spike_prob, true_mv, pred_mv, rescaled)))
        if main is None:
            main = (roc, keep)
            flat.update(part)
        else:
            flat.update({k + filter_suffix(lo, hi): v for k, v in part.items()})
    assert main is not None
    return Scored(metrics=flat, roc=main[0], keep=main[1], rescaled_mv=rescaled)


# One line per metrics.json key that `score` writes; evaluate copies it into the file.
DEFINITIONS: dict[str, str] = {
    "spike_auc": "ROC AUC (area under sklearn's roc_curve) of spike_prob against the output "
                 "spike bins, all kept bins flattened",
    **{fpr_key(f): f"tpr[i] of sklearn's roc_curve (drop_intermediate) with i = argmin "
                   f"|fpr - {f:g}|, moved to 1 when it is 0" for f in FPR_POINTS},
    "soma_rmse_mv": f"RMSE (mV) against the {SOMA_CLIP_MV:g} mV-clipped soma of the unclipped "
                    f"prediction z-scored and rescaled to the clipped truth's mean and std over "
                    f"all bins of all simulations of its rescaling unit (published convention)",
    "soma_mae_mv": "MAE (mV), rescaled as soma_rmse_mv",
    "soma_explained_variance_pct": "explained variance (%), rescaled as soma_rmse_mv",
    "soma_rmse_mv_raw": f"RMSE (mV) against the {SOMA_CLIP_MV:g} mV-clipped soma, prediction "
                        f"as predicted (not rescaled, not clipped)",
    "soma_mae_mv_raw": "MAE (mV), prediction not rescaled",
    "soma_explained_variance_pct_raw": "explained variance (%), prediction not rescaled",
}
