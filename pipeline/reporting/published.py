"""Published NeuronIO results, as data: the one place for those figures.

They come from the surrogates reference sheet (table "Published NeuronIO results"), which
quotes Spieler et al. 2024 (ICLR; arXiv 2306.16922) and Beniaguev et al. 2021. They are
test-set figures on the published NeuronIO data; the report draws them for context only,
since our models are evaluated on our own data.
"""

from __future__ import annotations

from dataclasses import dataclass

SPIELER_2024 = "Spieler et al. 2024 (ICLR, arXiv 2306.16922)"
BENIAGUEV_2021 = "Beniaguev et al. 2021"
# Each paper's figures come from its own evaluator (`evaluate --protocol`).
PROTOCOL_OF_SOURCE = {SPIELER_2024: "elm", BENIAGUEV_2021: "beniaguev"}


@dataclass(frozen=True)
class PublishedResult:
    """One published model: parameter count, spike AUC and soma RMSE (mV, the soma clipped
    at pipeline.protocol.SOMA_CLIP_MV, as we score it)."""

    model: str
    params: int
    auc: float
    rmse_mv: float
    source: str
    approximate: bool = False  # the paper gives "~" figures

    @property
    def protocol(self) -> str:
        """The published evaluator that produced it (pipeline.evaluation.metrics)."""
        return PROTOCOL_OF_SOURCE[self.source]


PUBLISHED_NEURONIO: tuple[PublishedResult, ...] = (
    PublishedResult("Branch-ELM d_m=10", 5_900, 0.9878, 0.698, SPIELER_2024),
    PublishedResult("Branch-ELM d_m=15", 6_800, 0.9915, 0.663, SPIELER_2024),
    PublishedResult("Branch-ELM d_m=20", 8_002, 0.9922, 0.638, SPIELER_2024),
    PublishedResult("Branch-ELM d_m=50", 19_300, 0.9934, 0.601, SPIELER_2024),
    PublishedResult("Branch-ELM d_m=100 (best effort)", 54_000, 0.99456, 0.564, SPIELER_2024),
    PublishedResult("ELM d_m=20", 52_900, 0.9918, 0.643, SPIELER_2024),
    PublishedResult("ELM d_m=100", 296_600, 0.9927, 0.623, SPIELER_2024),
    PublishedResult("LSTM h=50", 266_000, 0.9913, 0.641, SPIELER_2024),
    PublishedResult("LSTM h=150", 858_000, 0.9925, 0.623, SPIELER_2024),
    PublishedResult("LIF", 1_300, 0.91, 2.29, SPIELER_2024),
    PublishedResult("linear ELM", 1_300, 0.93, 1.6, SPIELER_2024),
    PublishedResult("TCN 7x128x153", 9_200_000, 0.991, 0.71, BENIAGUEV_2021, approximate=True),
)

# Beniaguev's bar for a surrogate that is "good enough".
GOOD_ENOUGH_AUC = 0.991
