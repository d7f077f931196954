COMMENT
Somatic / dendritic fast transient Na+ current (NaTs2_t) of the Hay et al. 2011
L5b pyramidal cell model (PLoS Comput Biol 7:e1002107, supplement table S1).

Kinetics: Colbert & Pan 2002 (Nat Neurosci 5:533), fitted at 21 degC, with the
activation and inactivation midpoints of the somatic variant used by Hay 2011:
  alpha_m = 0.182 (v+32) / (1 - exp(-(v+32)/6))    beta_m = 0.124 (-(v+32)) / (1 - exp((v+32)/6))
  alpha_h = 0.015 (-(v+60)) / (1 - exp((v+60)/6))  beta_h = 0.015 (v+60) / (1 - exp(-(v+60)/6))
  inf = alpha/(alpha+beta), tau = 1/(alpha+beta)/qt,  i = g m^3 h (v - ena)
Temperature factor fixed at qt = 2.3^((34-21)/10) (Hay 2011 runs at 34 degC).
Rates in 1/ms, v in mV. The 0/0 points of the rate functions are replaced by
their analytic limits (function linoid) instead of perturbing v.
ena is set by the cell (50 mV in Hay 2011).
ENDCOMMENT

COMMENT
Issue 19 (fast kinetics): PROCEDURE rates carries a TABLE over v (-150 to 100 mV
in 0.02 mV steps) of
the values it assigns, linearly interpolated, so a step costs no exp() or pow() of the
rate functions. The table is used only while the GLOBAL usetable_NaTs2_t is 1;
biophys_models.simulator sets it per run from RunSettings.kinetics ('exact' sets 0,
and rates() then runs the unchanged expressions: bit-identical to the code before).
ENDCOMMENT

NEURON {
    SUFFIX NaTs2_t
    USEION na READ ena WRITE ina
    RANGE gNaTs2_tbar, gNaTs2_t, ina
    THREADSAFE
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gNaTs2_tbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ena (mV)
    ina (mA/cm2)
    gNaTs2_t (S/cm2)
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
    gNaTs2_t = gNaTs2_tbar * m * m * m * h
    ina = gNaTs2_t * (v - ena)
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
    LOCAL qt, am, bm, ah, bh
    TABLE mInf, mTau, hInf, hTau FROM -150 TO 100 WITH 12500
    UNITSOFF
    qt = 2.3^((34 - 21) / 10)
    am = 0.182 * linoid(vm + 32, 6)
    bm = 0.124 * linoid(-(vm + 32), 6)
    ah = 0.015 * linoid(-(vm + 60), 6)
    bh = 0.015 * linoid(vm + 60, 6)
    mInf = am / (am + bm)
    mTau = 1 / (am + bm) / qt
    hInf = ah / (ah + bh)
    hTau = 1 / (ah + bh) / qt
    UNITSON
}

FUNCTION linoid(x, k) {
    : x / (1 - exp(-x/k)), with its limit k (+ x/2) where the quotient is 0/0
    if (fabs(x / k) < 1e-6) {
        linoid = k + x / 2
    } else {
        linoid = x / (1 - exp(-x / k))
    }
}
