"""The train/valid/test split: deterministic, machine-independent, exact counts."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.datasets.split import assign_splits, parse_split, split_counts
from pipeline.errors import UserError

FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}


def test_split_depends_only_on_ids_and_seed() -> None:
    ids = np.arange(100, 150)
    a = assign_splits(ids, FRACTIONS, seed=0)
    b = assign_splits(np.random.default_rng(1).permutation(ids), FRACTIONS, seed=0)
    assert {k: v.tolist() for k, v in a.items()} == {k: v.tolist() for k, v in b.items()}
    assert sorted(np.concatenate(list(a.values())).tolist()) == ids.tolist()
    assert [len(a[k]) for k in ("train", "valid", "test")] == [40, 5, 5]
    c = assign_splits(ids, FRACTIONS, seed=1)
    assert c["test"].tolist() != a["test"].tolist()


def test_split_is_pinned_across_machines() -> None:
    # blake2b ranks do not depend on platform or library versions: pin one outcome.
    got = assign_splits(np.arange(10), FRACTIONS, seed=0)
    assert {k: v.tolist() for k, v in got.items()} == PINNED


PINNED = {"train": [2, 3, 4, 5, 6, 7, 8, 9], "valid": [0], "test": [1]}


@pytest.mark.parametrize("n, want", [(1, (1, 0, 0)), (3, (1, 1, 1)), (10, (8, 1, 1)),
                                     (16, (13, 2, 1)), (0, (0, 0, 0))])
def test_counts_are_exact_and_no_requested_split_is_empty(n: int, want) -> None:
    counts = split_counts(n, FRACTIONS)
    assert sum(counts.values()) == n
    assert (counts["train"], counts["valid"], counts["test"]) == want


@pytest.mark.parametrize("text, message", [
    ("train=0.8,valid=0.1,test=0.2", "sum to 1.1"),
    ("train=0.8,valid=0.2,bogus=0", "NAME one of"),
    ("train=1.5,valid=-0.5", "outside"),
    ("train=a", "not a number"),
    ("train=0.5,train=0.5", "each once"),
])
def test_bad_splits_are_refused(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_split(text)


def test_missing_names_mean_zero() -> None:
    assert parse_split("train=0.9,valid=0.1") == {"train": 0.9, "valid": 0.1, "test": 0.0}
