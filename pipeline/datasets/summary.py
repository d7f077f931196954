"""Statistics that tell whether a simulated data set looks like NeuronIO: output firing
(mean rate, silent simulations, ISI CV) and input rates per synapse."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from pipeline.datasets.contract import SimBatch


def summarize(batches: Iterable[SimBatch]) -> dict[str, float]:
    """One pass over the batches, so a caller can stream shards instead of holding them."""
    rates, cvs, exc_hz, inh_hz = [], [], [], []
    for batch in batches:
        info = batch.info
        seconds = info.duration_ms / 1000.0
        counts = np.bincount(batch.output_sim, minlength=batch.num_sims)
        rates.extend(counts / seconds)
        for row in range(batch.num_sims):
            isi = np.diff(batch.output_spikes_of(row))
            if len(isi) >= 2:
                cvs.append(isi.std() / isi.mean())
        exc = np.bincount(batch.input_sim[batch.input_synapse < info.num_exc],
                          minlength=batch.num_sims)
        inh = np.bincount(batch.input_sim[batch.input_synapse >= info.num_exc],
                          minlength=batch.num_sims)
        exc_hz.extend(exc / max(info.num_exc, 1) / seconds)
        inh_hz.extend(inh / max(info.num_inh, 1) / seconds)
    nan = float("nan")
    return {
        "num_sims": len(rates),
        "output_rate_hz_mean": float(np.mean(rates)) if rates else nan,
        "output_rate_hz_std": float(np.std(rates)) if rates else nan,
        "silent_fraction": float(np.mean(np.asarray(rates) == 0)) if rates else nan,
        "isi_cv_mean": float(np.mean(cvs)) if cvs else nan,
        "input_exc_rate_hz_per_synapse": float(np.mean(exc_hz)) if exc_hz else nan,
        "input_inh_rate_hz_per_synapse": float(np.mean(inh_hz)) if inh_hz else nan,
    }


def format_summary(stats: dict[str, float]) -> str:
    return (f"{stats['num_sims']} simulations: output {stats['output_rate_hz_mean']:.2f} "
            f"+- {stats['output_rate_hz_std']:.2f} Hz, {100 * stats['silent_fraction']:.0f} % "
            f"silent, ISI CV {stats['isi_cv_mean']:.2f}; input "
            f"{stats['input_exc_rate_hz_per_synapse']:.2f} Hz excitatory and "
            f"{stats['input_inh_rate_hz_per_synapse']:.2f} Hz inhibitory per synapse")
