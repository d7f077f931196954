COMMENT
High-voltage-activated Ca2+ current (Ca_HVA) of the Hay et al. 2011 L5b
pyramidal cell model (PLoS Comput Biol 7:e1002107, supplement).

Kinetics: Reuveni et al. 1993 (J Neurosci 13:4609), as parameterised in Hay 2011:
  alpha_m = 0.055 (-27-v) / (exp((-27-v)/3.8) - 1)   beta_m = 0.94 exp((-75-v)/17)
  alpha_h = 0.000457 exp((-13-v)/50)                 beta_h = 0.0065 / (exp((-v-15)/28) + 1)
  inf = alpha/(alpha+beta), tau = 1/(alpha+beta),  i = g m^2 h (v - eca)
No temperature factor (as in Hay 2011). eca is the Nernst potential NEURON
computes from cai/cao (cai written by CaDynamics_E2 where inserted).
ENDCOMMENT

COMMENT
Issue 19 (fast kinetics): PROCEDURE rates carries a TABLE over v (-150 to 100 mV
in 0.02 mV steps) of
the values it assigns, linearly interpolated, so a step costs no exp() or pow() of the
rate functions. The table is used only while the GLOBAL usetable_Ca_HVA is 1;
biophys_models.simulator sets it per run from RunSettings.kinetics ('exact' sets 0,
and rates() then runs the unchanged expressions: bit-identical to the code before).
ENDCOMMENT

NEURON {
    SUFFIX Ca_HVA
    USEION ca READ eca WRITE ica
    RANGE gCa_HVAbar, gCa_HVA, ica
    THREADSAFE
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gCa_HVAbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    eca (mV)
    ica (mA/cm2)
    gCa_HVA (S/cm2)
    mInf
    mTau (ms)
    hInf
    hTau (ms)
}

STATE {
    m
    h
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    gCa_HVA = gCa_HVAbar * m * m * h
    ica = gCa_HVA * (v - eca)
}

DERIVATIVE states {
    rates(v)
    m' = (mInf - m) / mTau
    h' = (hInf - h) / hTau
}

INITIAL {
    rates(v)
    m = mInf
    h = hInf
}

PROCEDURE rates(vm (mV)) {
    LOCAL am, bm, ah, bh, x
    TABLE mInf, mTau, hInf, hTau FROM -150 TO 100 WITH 12500
    UNITSOFF
    x = -27 - vm
    : x / (exp(x/3.8) - 1) has the limit 3.8 (- x/2) at x = 0
    if (fabs(x / 3.8) < 1e-6) {
        am = 0.055 * (3.8 - x / 2)
    } else {
        am = 0.055 * x / (exp(x / 3.8) - 1)
    }
    bm = 0.94 * exp((-75 - vm) / 17)
    ah = 0.000457 * exp((-13 - vm) / 50)
    bh = 0.0065 / (exp((-vm - 15) / 28) + 1)
    mInf = am / (am + bm)
    mTau = 1 / (am + bm)
    hInf = ah / (ah + bh)
    hTau = 1 / (ah + bh)
    UNITSON
}
