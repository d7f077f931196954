"""Whether the ranking is resolved: paired bootstrap differences of neighbouring models,
and a plain warning when the test set is too small to rank at all.

Two evaluations pair when they scored the same simulations with the same bootstrap seed
(evaluate draws the resamples from those alone), so the difference of their replicates is
the bootstrap distribution of their difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.evaluation.bootstrap import paired_difference

if TYPE_CHECKING:
    from pipeline.reporting.evaluations import Evaluation

# Below these, a ranking by AUC rests on too few spikes or simulations to mean much, even
# where an interval happens to exclude zero.
MIN_SIMULATIONS = 30
MIN_SPIKES = 200


def _paired(a: Evaluation, b: Evaluation) -> bool:
    if a.bootstrap is None or b.bootstrap is None:
        return False
    return (a.bootstrap.get("seed") == b.bootstrap.get("seed")
            and a.bootstrap.get("sim_ids") == b.bootstrap.get("sim_ids"))


def neighbour_notes(ranked: Sequence[Evaluation]) -> list[str]:
    """One sentence per neighbouring pair of the ranking: is the AUC difference resolved?"""
    notes = []
    for a, b in zip(ranked, ranked[1:], strict=False):
        ra, rb = a.replicates("spike_auc"), b.replicates("spike_auc")
        if not _paired(a, b) or ra is None or rb is None or ra.shape != rb.shape:
            notes.append(f"{a.label} over {b.label}: not comparable by a paired bootstrap "
                         f"(different simulations or seeds, or no intervals).")
            continue
        d = paired_difference("spike_auc", a.number("spike_auc"), b.number("spike_auc"), ra, rb)
        verdict = ("resolved: the 95 % interval of the difference excludes 0" if d.resolved
                   else "NOT resolved: the 95 % interval of the difference includes 0, so "
                        "this order is noise")
        notes.append(f"{a.label} over {b.label}: AUC difference {d.estimate:+.4f} "
                     f"[{d.low:+.4f}, {d.high:+.4f}], {verdict}.")
    return notes


def small_data_note(ranked: Sequence[Evaluation]) -> str | None:
    """A plain warning when the test set is too small to rank models."""
    if not ranked:
        return None
    sims = min(int(ev.metrics.get("num_sims") or 0) for ev in ranked)
    spikes = min(int(ev.metrics.get("num_spikes") or ev.spike_counts.sum()) for ev in ranked)
    if sims >= MIN_SIMULATIONS and spikes >= MIN_SPIKES:
        return None
    return (f"The test set is too small to rank these models: {sims} simulations holding "
            f"{spikes} output spikes (a ranking needs at least {MIN_SIMULATIONS} simulations "
            f"and {MIN_SPIKES} spikes). Read the order of the table as provisional; where two "
            f"models' intervals overlap, the data cannot tell them apart.")
