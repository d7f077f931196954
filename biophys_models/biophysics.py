"""The Hay et al. 2011 L5b biophysics, as data plus the one function that applies it.

The rules depend only on a section's kind (soma, axon, basal, apical) and, on the apical
tree, on the path distance from the soma, so they apply unchanged to the generated cell and
to any reconstruction (values from /work/shared/reference/hay-l5pc.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from neuron import h

from biophys_models.morphology import nseg_for_length
from biophys_models.sections import CellSections

RA_OHM_CM = 100.0
E_PAS_MV = -90.0
EK_MV = -85.0
ENA_MV = 50.0

#: (cm uF/cm2, g_pas S/cm2) per section kind.
PASSIVE: dict[str, tuple[float, float]] = {
    "soma": (1.0, 3e-5),
    "axon": (1.0, 3e-5),
    "basal": (2.0, 6e-5),
    "apical": (2.0, 6e-5),
}

#: Uniform densities: kind -> mechanism -> {RANGE parameter: value}. Apical Ih and
#: Ca_LVAst are distance dependent (below) and inserted with these placeholders.
UNIFORM: dict[str, dict[str, dict[str, float]]] = {
    "soma": {
        "NaTs2_t": {"gNaTs2_tbar": 0.998912},
        "SKv3_1": {"gSKv3_1bar": 0.338029},
        "SK_E2": {"gSK_E2bar": 0.09965},
        "Im": {"gImbar": 0.000008},
        "Ca_HVA": {"gCa_HVAbar": 0.000644},
        "Ca_LVAst": {"gCa_LVAstbar": 0.000557},
        "Ih": {"gIhbar": 0.000075},
        "CaDynamics_E2": {"decay": 294.68, "gamma": 0.000509},
    },
    "axon": {
        "NaTa_t": {"gNaTa_tbar": 3.89618},
        "Nap_Et2": {"gNap_Et2bar": 0.005834},
        "SKv3_1": {"gSKv3_1bar": 0.473799},
        "K_Tst": {"gK_Tstbar": 0.077274},
        "K_Pst": {"gK_Pstbar": 0.188851},
        "SK_E2": {"gSK_E2bar": 0.000047},
        "Im": {"gImbar": 0.013322},
        "Ca_HVA": {"gCa_HVAbar": 0.000222},
        "Ca_LVAst": {"gCa_LVAstbar": 0.000813},
        "Ih": {"gIhbar": 0.00005},
        "CaDynamics_E2": {"decay": 277.30, "gamma": 0.000525},
    },
    "apical": {
        "NaTs2_t": {"gNaTs2_tbar": 0.021489},
        "SKv3_1": {"gSKv3_1bar": 0.001808},
        "SK_E2": {"gSK_E2bar": 0.000002},
        "Im": {"gImbar": 0.00099},
        "Ca_HVA": {"gCa_HVAbar": 0.000701},
        "Ca_LVAst": {"gCa_LVAstbar": 0.0},
        "Ih": {"gIhbar": 0.0},
        "CaDynamics_E2": {"decay": 35.73, "gamma": 0.000637},
    },
    "basal": {
        "Ih": {"gIhbar": 0.00005},
    },
}

#: Apical Ca_LVAst: hot zone between these path distances (um), 1 % of it elsewhere.
CA_HOT_ZONE_UM = (685.0, 885.0)
CA_LVA_HOT_S_CM2 = 0.141954 * 1.6
CA_LVA_OUTSIDE_FRACTION = 0.01


def apical_ih(relative_distance: float) -> float:
    """Hay's exponential Ih gradient (S/cm2); the relative distance saturates at 0.65."""
    d = min(relative_distance, 0.65)
    return 1e-4 * (-0.8696 + 2.0870 * float(np.exp(3.6161 * d)))


def apical_ca_lva(distance_um: float) -> float:
    """Ca_LVAst density (S/cm2) at a path distance: the hot zone below the nexus."""
    lo, hi = CA_HOT_ZONE_UM
    inside = lo <= distance_um <= hi
    return CA_LVA_HOT_S_CM2 * (1.0 if inside else CA_LVA_OUTSIDE_FRACTION)


def discretise(sections: Iterable[Any]) -> None:
    """nseg = 1 + 2*int(L/40) on every section (the rule Hay and NeuronIO use)."""
    for sec in sections:
        sec.nseg = nseg_for_length(sec.L)


def apply_hay_biophysics(cell: CellSections) -> None:
    """Insert and set every mechanism of the Hay model; call after `discretise`.

    Apical rules use the path distance from soma(0.5). Hay's template measures from the 0 end
    of the first apical section, which Import3d attaches at soma(0.5), so the two agree on
    reconstructions; the generated trunk leaves from soma(1) and so counts 11 um of soma
    (moving the rest by 0.07 mV)."""
    origin = cell.soma[0](0.5)
    for kind, secs in cell.by_kind().items():
        cm, g_pas = PASSIVE[kind]
        for sec in secs:
            sec.Ra = RA_OHM_CM
            sec.cm = cm
            sec.insert("pas")
            for seg in sec:
                seg.pas.g = g_pas
                seg.pas.e = E_PAS_MV
            for mech, params in UNIFORM[kind].items():
                sec.insert(mech)
                for name, value in params.items():
                    for seg in sec:
                        setattr(seg, f"{name}_{mech}", value)
            if h.ismembrane("k_ion", sec=sec):
                sec.ek = EK_MV
            if h.ismembrane("na_ion", sec=sec):
                sec.ena = ENA_MV

    longest = max((h.distance(origin, sec(1.0)) for sec in cell.apical), default=1.0)
    for sec in cell.apical:
        for seg in sec:
            dist = h.distance(origin, seg)
            seg.gIhbar_Ih = apical_ih(dist / longest)
            seg.gCa_LVAstbar_Ca_LVAst = apical_ca_lva(dist)
