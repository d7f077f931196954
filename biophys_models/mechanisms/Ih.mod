COMMENT
Hyperpolarisation-activated cation current (Ih, HCN) of the Hay et al. 2011 L5b
pyramidal cell model (PLoS Comput Biol 7:e1002107, supplement).

Kinetics: Kole, Hallermann & Stuart 2006 (J Neurosci 26:1677):
  alpha = 0.001 * 6.43 (v+154.9) / (exp((v+154.9)/11.9) - 1) /ms
  beta  = 0.001 * 193 exp(v/33.1) /ms
  mInf = alpha/(alpha+beta),  mTau = 1/(alpha+beta),  i = g m (v - ehcn)
Reversal ehcn = -45 mV; carried as a nonspecific current (ihcn), so it does not
touch the na/k ion concentrations. No temperature factor (as in Hay 2011).
vshift (default 0) moves the rate curves along v: the kinetics at v are those of
the unshifted channel at v - vshift, so vshift > 0 activates Ih at more
depolarised potentials (the Ih-shift variant of NeuronIO).
ENDCOMMENT

COMMENT
Issue 19 (fast kinetics): PROCEDURE rates carries a TABLE over v (-150 to 100 mV
in 0.02 mV steps) of
the values it assigns, linearly interpolated, so a step costs no exp() or pow() of the
rate functions. The table is used only while the GLOBAL usetable_Ih is 1;
biophys_models.simulator sets it per run from RunSettings.kinetics ('exact' sets 0,
and rates() then runs the unchanged expressions: bit-identical to the code before).
ENDCOMMENT

NEURON {
    SUFFIX Ih
    NONSPECIFIC_CURRENT ihcn
    RANGE gIhbar, gIh, ihcn, ehcn, vshift
    THREADSAFE
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gIhbar = 0.00001 (S/cm2)
    ehcn = -45.0 (mV)
    vshift = 0 (mV)
}

ASSIGNED {
    v (mV)
    ihcn (mA/cm2)
    gIh (S/cm2)
    mInf
    mTau (ms)
}

STATE {
    m
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    gIh = gIhbar * m
    ihcn = gIh * (v - ehcn)
}

DERIVATIVE states {
    rates(v - vshift)
    m' = (mInf - m) / mTau
}

INITIAL {
    rates(v - vshift)
    m = mInf
}

PROCEDURE rates(vm (mV)) {
    LOCAL a, b, x
    TABLE mInf, mTau FROM -150 TO 100 WITH 12500
    UNITSOFF
    x = vm + 154.9
    : x / (exp(x/11.9) - 1) has the limit 11.9 (- x/2) at x = 0
    if (fabs(x / 11.9) < 1e-6) {
        a = 0.001 * 6.43 * (11.9 - x / 2)
    } else {
        a = 0.001 * 6.43 * x / (exp(x / 11.9) - 1)
    }
    b = 0.001 * 193 * exp(vm / 33.1)
    mInf = a / (a + b)
    mTau = 1 / (a + b)
    UNITSON
}
