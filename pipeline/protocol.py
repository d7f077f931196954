"""The published NeuronIO protocol numbers (Beniaguev et al. 2021; ../shared/reference), in
one place. Training, evaluation, the models' output scale and the report all read them here.

A leaf module: plain constants and the synapse layout, no imports at module level, so that
every package (`surrogates` included) and every `--help` can use it for free.
"""

WINDOW_MS = 500  # prediction (and training) window
BURN_IN_MS = 150  # start of every window after the first left out of the loss and the score
SKIP_MS = 500  # unscored start of every simulation
MAX_SPIKES = 24  # simulations with more output spikes than this (after SKIP_MS) are dropped
SOMA_CLIP_MV = -55.0  # the soma is trained and scored clipped from above, below threshold
SOMA_OFFSET_MV = -67.7  # models predict the soma as (V - SOMA_OFFSET_MV) * SOMA_SCALE
SOMA_SCALE = 0.1
# The two published evaluators (pipeline.evaluation.metrics defines them): the ELM paper's
# rescales the soma per test file, Beniaguev's (the TCN paper's) pools the test set.
EVALUATORS = ("elm", "beniaguev")
FPR_POINTS = (0.0025, 0.01)  # false-positive rates the TPR is reported at; the first is quoted

# The input generator's ranges that `simulate` exposes as flags (the rest of the generator
# is biophys_models.protocol.ProtocolSettings):
EXC_RANGE = (0.0, 800.0)  # excitation drawn on this range, spikes per tree per 100 ms
INH_OFFSETS = (600.0, 200.0)  # inhibition drawn on [max(0, exc - 600), exc + 200]

# RunSettings.kinetics and the mechanism build: the unchanged .mod files (cnexp, rate
# expressions), or their fixed-step forms with rate tables (issue 19; README, "Fast kinetics").
# Here so that the CLI and the params schema need no NEURON.
KINETICS = ("exact", "fast")


def checked_kinetics(kinetics: str) -> str:
    """kinetics, if it is one of KINETICS (the one check RunSettings, set_kinetics and the
    mechanism build share), else ValueError."""
    if kinetics not in KINETICS:
        raise ValueError(f"kinetics must be one of {', '.join(KINETICS)}, got {kinetics!r}")
    return kinetics

# The NeuronIO paper's cell variants (biophys_models.cell_variant.CellVariant): the
# excitatory synapse, AMPA + NMDA or AMPA only, and the dendrites, active or passive.
SYNAPSES = ("ampa_nmda", "ampa")
DENDRITES = ("active", "passive")

# Named sets of per-tree ranges (`simulate --protocol-preset`): the NMDA data's (the
# default) and the AMPA-only ranges the original script carries.
PROTOCOL_PRESETS = {
    "nmda": {"basal_exc_range": EXC_RANGE, "apical_exc_range": EXC_RANGE,
             "basal_inh_offsets": INH_OFFSETS, "apical_inh_offsets": INH_OFFSETS},
    "ampa": {"basal_exc_range": (0.0, 1900.0), "apical_exc_range": (0.0, 2000.0),
             "basal_inh_offsets": (1650.0, 150.0), "apical_inh_offsets": (1650.0, 150.0)},
}


# The NeuronIO synapse layout: dendritic segment k carries excitatory synapse k and inhibitory
# synapse num_segments + k (inputs are ordered excitatory first, each in segment order).

def synapses_of_segment(segment: int, num_segments: int) -> tuple[int, int]:
    """(excitatory, inhibitory) input index of `segment`."""
    return segment, num_segments + segment


def synapse_segment(synapse, num_segments: int):
    """The segment of input index `synapse` (an int or an integer array)."""
    return synapse % num_segments


def per_synapse(per_segment):
    """A per-segment value for every input: the excitatory inputs' then the inhibitory ones'
    (an array of twice the length; numpy is imported only here)."""
    import numpy as np

    values = np.asarray(per_segment)
    return np.concatenate([values, values])
