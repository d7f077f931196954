"""NMODL sources: Hay et al. 2011 L5PC channels, NeuronIO synapses and the NSVecStim source.

Compiled and loaded by biophys_models.compile (never compile them in place: nrnivmodl would
leave an x86_64/ folder here that NEURON auto-loads from the working directory).
"""
