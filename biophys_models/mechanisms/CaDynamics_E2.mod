COMMENT
Submembrane Ca2+ pool (CaDynamics_E2) of the Hay et al. 2011 L5b pyramidal cell
model (PLoS Comput Biol 7:e1002107, supplement).

A shell of thickness depth under the membrane receives the fraction gamma of the
Ca2+ current (the rest is taken up by fast buffers) and relaxes to minCai with
time constant decay:
  dcai/dt = -10000 * gamma * ica / (2 F depth) - (cai - minCai) / decay
(ica in mA/cm2, depth in um, F in C/mol: the factor 1e4 gives mM/ms.)
Hay 2011 fits decay and gamma per compartment type (soma 294.68 ms / 0.000509,
apical 35.73 ms / 0.000637, axon 277.30 ms / 0.000525).
INITIAL does not set cai: it starts at the ca ion's initial value (NEURON's
cai0_ca_ion, 5e-5 mM by default), as in the published model, and relaxes to
minCai. Set cai0_ca_ion = minCai in the cell to start at rest.
ENDCOMMENT

NEURON {
    SUFFIX CaDynamics_E2
    USEION ca READ ica WRITE cai
    RANGE decay, gamma, minCai, depth
    THREADSAFE
}

UNITS {
    (mV) = (millivolt)
    (mA) = (milliamp)
    FARADAY = (faraday) (coulombs)
    (molar) = (1/liter)
    (mM) = (millimolar)
    (um) = (micron)
}

PARAMETER {
    gamma = 0.05
    decay = 80 (ms)
    depth = 0.1 (um)
    minCai = 1e-4 (mM)
}

ASSIGNED {
    ica (mA/cm2)
}

STATE {
    cai (mM)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
}

DERIVATIVE states {
    UNITSOFF
    cai' = -10000 * ica * gamma / (2 * FARADAY * depth) - (cai - minCai) / decay
    UNITSON
}
