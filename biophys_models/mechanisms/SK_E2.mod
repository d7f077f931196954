COMMENT
Small-conductance Ca2+-activated K+ current (SK_E2) of the Hay et al. 2011 L5b
pyramidal cell model (PLoS Comput Biol 7:e1002107, supplement).

Kinetics: Kohler et al. 1996 (Science 273:1709), Hill fit of the SK2 Ca2+
dependence, voltage independent:
  zInf = 1 / (1 + (0.00043 mM / cai)^4.8),  zTau = 1 ms,  i = g z (v - ek)
No temperature factor (as in Hay 2011). cai is read from the ca ion (written by
CaDynamics_E2 where that is inserted); cai <= 0 is treated as zero activation.
ENDCOMMENT

NEURON {
    SUFFIX SK_E2
    USEION k READ ek WRITE ik
    USEION ca READ cai
    RANGE gSK_E2bar, gSK_E2, ik
    THREADSAFE
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
    (mM) = (milli/liter)
}

PARAMETER {
    gSK_E2bar = 0.000001 (S/cm2)
    zTau = 1 (ms)
}

ASSIGNED {
    v (mV)
    ek (mV)
    cai (mM)
    ik (mA/cm2)
    gSK_E2 (S/cm2)
    zInf
}

STATE {
    z
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    gSK_E2 = gSK_E2bar * z
    ik = gSK_E2 * (v - ek)
}

DERIVATIVE states {
    rates(cai)
    z' = (zInf - z) / zTau
}

INITIAL {
    rates(cai)
    z = zInf
}

PROCEDURE rates(ca (mM)) {
    UNITSOFF
    if (ca > 0) {
        zInf = 1 / (1 + (0.00043 / ca)^4.8)
    } else {
        zInf = 0
    }
    UNITSON
}
