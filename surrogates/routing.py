"""Which input feeds each synapse slot of a Branch-ELM (d_tree branches x d_brch slots).

A routing is an index [d_tree * d_brch] of input ids and a mask of the slots in use; slot
j * d_brch + i is slot i of branch j. Masked slots point at input 0 and never contribute.

- `neuronio`: the reference's scheme, bit-compatible with its released models: inputs
  interleaved exc/inh (0, E, 1, E+1, ...), then windows of d_brch consecutive interleaved
  inputs with stride ceil(N / d_tree), slots past the last input masked. It relies on
  neighbouring input ids lying on the same dendritic branch.
- `random`: the same windows over a seeded random order of the inputs (the paper's control
  that breaks the neighbourhood order).
- `morphology`: one branch per real dendritic branch id, holding both inputs of each of its
  segments (`pipeline.protocol.synapses_of_segment`); d_brch = the largest branch, the rest
  masked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from pipeline.protocol import synapses_of_segment
from surrogates.errors import ModelError

ROUTINGS = ("neuronio", "random", "morphology", "explicit")


class Routing(NamedTuple):
    index: torch.Tensor  # int64 [num_branches * branch_size]
    mask: torch.Tensor  # bool [num_branches * branch_size]
    num_branches: int
    branch_size: int


def interleaved_order(num_exc: int, num_inh: int) -> np.ndarray:
    """0, E, 1, E+1, ...; the longer population's remaining inputs follow in order."""
    common = min(num_exc, num_inh)
    pairs = np.stack([np.arange(common), num_exc + np.arange(common)], 1).reshape(-1)
    rest = np.concatenate([np.arange(common, num_exc), num_exc + np.arange(common, num_inh)])
    return np.concatenate([pairs, rest]).astype(np.int64)


def windowed(order: np.ndarray, num_branches: int, branch_size: int) -> Routing:
    """Branch j takes order[j * stride : j * stride + branch_size], stride = ceil(N / d_tree)."""
    n = len(order)
    stride = math.ceil(n / num_branches)
    pos = stride * np.arange(num_branches)[:, None] + np.arange(branch_size)[None, :]
    valid = pos < n
    index = np.where(valid, order[np.minimum(pos, n - 1)], 0)
    return Routing(torch.from_numpy(index.reshape(-1)), torch.from_numpy(valid.reshape(-1)),
                   num_branches, branch_size)


def neuronio_routing(num_exc: int, num_inh: int, num_branches: int = 45,
                     branch_size: int = 100) -> Routing:
    return windowed(interleaved_order(num_exc, num_inh), num_branches, branch_size)


def random_routing(num_inputs: int, num_branches: int, branch_size: int, seed: int) -> Routing:
    order = np.random.default_rng(seed).permutation(num_inputs).astype(np.int64)
    return windowed(order, num_branches, branch_size)


def morphology_routing(segment_branch: Sequence[int], num_exc: int, num_inh: int) -> Routing:
    """Group both synapses of every segment by the segment's dendritic branch id."""
    if num_exc != num_inh or len(segment_branch) != num_exc:
        raise ModelError(f"morphology routing needs one branch id per segment and one exc and "
                         f"one inh input per segment; got {len(segment_branch)} ids for "
                         f"{num_exc} exc and {num_inh} inh inputs")
    ids = np.asarray(segment_branch, dtype=np.int64)
    groups = [np.flatnonzero(ids == b) for b in np.unique(ids)]
    branch_size = 2 * max(len(g) for g in groups)
    index = np.zeros((len(groups), branch_size), np.int64)
    valid = np.zeros((len(groups), branch_size), bool)
    for row, segs in enumerate(groups):
        members = np.stack(synapses_of_segment(segs, num_exc), 1).reshape(-1)
        index[row, :len(members)] = members
        valid[row, :len(members)] = True
    return Routing(torch.from_numpy(index.reshape(-1)), torch.from_numpy(valid.reshape(-1)),
                   len(groups), branch_size)


def explicit_placeholder(num_branches: int, branch_size: int) -> Routing:
    """A routing to be filled from a checkpoint's buffers (imported reference models)."""
    size = num_branches * branch_size
    return Routing(torch.zeros(size, dtype=torch.int64), torch.zeros(size, dtype=torch.bool),
                   num_branches, branch_size)
