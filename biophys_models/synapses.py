"""The NeuronIO synapse layout, the same for any cell.

One excitatory (NSAmpaNmda) and one inhibitory (NSGabaA) synapse on every dendritic
segment, numbered as `pipeline.protocol.synapses_of_segment` says (segment k: inputs k and
num_exc + k). Each synapse has one input NetCon without a source; the simulator queues the
input spike times on it with NetCon.event(t).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neuron import h

from pipeline.protocol import synapses_of_segment

#: CoreNEURON refuses a network whose NetCon delays are all 0; events queued with
#: NetCon.event(t) arrive at t whatever the delay.
INPUT_DELAY_MS = 1.0


@dataclass
class SynapseLayout:
    excitatory: list[Any]
    inhibitory: list[Any]
    inputs: list[Any]  # NetCons, by input index

    @property
    def num_exc(self) -> int:
        return len(self.excitatory)

    @property
    def num_inh(self) -> int:
        return len(self.inhibitory)

    def set_nmda(self, enabled: bool, gmax_nmda_us: float = 0.0004) -> None:
        """NMDA condition (default) or AMPA-only (gmax_NMDA = 0) on every excitatory synapse."""
        for syn in self.excitatory:
            syn.gmax_NMDA = gmax_nmda_us if enabled else 0.0


def attach_synapses(segments: list[Any], nmda: bool = True) -> SynapseLayout:
    """Place the layout on `segments` (the dendritic segments in NeuronIO order)."""
    exc = [h.NSAmpaNmda(seg) for seg in segments]
    inh = [h.NSGabaA(seg) for seg in segments]
    target: list[Any] = [None] * (len(exc) + len(inh))
    for k in range(len(segments)):
        e, i = synapses_of_segment(k, len(segments))
        target[e], target[i] = exc[k], inh[k]
    inputs = []
    for syn in target:  # NetCons made in input order
        nc = h.NetCon(None, syn)
        nc.weight[0] = 1.0
        nc.delay = INPUT_DELAY_MS
        inputs.append(nc)
    layout = SynapseLayout(exc, inh, inputs)
    layout.set_nmda(nmda)
    return layout
