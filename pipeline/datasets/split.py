"""Deterministic train/valid/test assignment by simulation id, the same on every machine.

Each id gets a rank from a cryptographic hash of (seed, id), independent of platform and
library versions; the ranked ids are cut at the requested fractions (largest remainder, and
every non-zero split gets at least one simulation when there are enough).
"""

from __future__ import annotations

import hashlib

import numpy as np

from pipeline.errors import UserError

SPLIT_NAMES = ("train", "valid", "test")
DEFAULT_SPLIT = "train=0.8,valid=0.1,test=0.1"


def parse_split(text: str) -> dict[str, float]:
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SPLIT_NAMES or name in fractions:
            raise UserError("--split", f"{text!r}: expected NAME=FRACTION pairs with NAME one "
                                       f"of {', '.join(SPLIT_NAMES)}, each once")
        try:
            fractions[name] = float(value)
        except ValueError:
            raise UserError("--split", f"{text!r}: {value!r} is not a number") from None
        if not 0 <= fractions[name] <= 1:
            raise UserError("--split", f"{text!r}: fraction {value} outside [0, 1]")
    if abs(sum(fractions.values()) - 1) > 1e-6:
        raise UserError("--split", f"{text!r}: fractions sum to {sum(fractions.values()):g}, "
                                   "not 1")
    return {name: fractions.get(name, 0.0) for name in SPLIT_NAMES}


def _rank_key(seed: int, sim_id: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{sim_id}".encode(), digest_size=8).digest()


def split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    exact = {k: f * n for k, f in fractions.items()}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: counts[k] - exact[k])[: n - sum(counts.values())]:
        counts[k] += 1
    for k in fractions:  # a requested split never ends up empty if it can be helped
        if fractions[k] > 0 and counts[k] == 0:
            donor = max(counts, key=lambda j: counts[j])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[k] += 1
    return counts


def assign_splits(sim_ids: np.ndarray, fractions: dict[str, float], seed: int
                  ) -> dict[str, np.ndarray]:
    """Sorted sim ids of each split."""
    ids = np.asarray(sim_ids, dtype=np.int64)
    ranked = sorted(ids.tolist(), key=lambda i: _rank_key(seed, i))
    counts = split_counts(len(ranked), fractions)
    out, start = {}, 0
    for name in fractions:
        out[name] = np.sort(np.array(ranked[start:start + counts[name]], dtype=np.int64))
        start += counts[name]
    return out
