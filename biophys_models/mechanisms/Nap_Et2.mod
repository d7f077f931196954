COMMENT
Persistent Na+ current (Nap_Et2) of the Hay et al. 2011 L5b pyramidal cell
model (PLoS Comput Biol 7:e1002107, supplement).

Kinetics: Magistretti & Alonso 1999 (J Gen Physiol 114:491), steady state of
activation from their persistent-current fit, activation time course taken 6x
slower than the transient Na+ activation, as in Hay 2011:
  mInf = 1 / (1 + exp(-(v+52.6)/4.6))
  mTau = 6 / (alpha_m + beta_m) / qt,  alpha_m = 0.182 (v+38)/(1-exp(-(v+38)/6)),
                                       beta_m  = 0.124 (-(v+38))/(1-exp((v+38)/6))
  hInf = 1 / (1 + exp((v+48.8)/10))
  hTau = 1 / (alpha_h + beta_h) / qt,  alpha_h = 2.88e-6 (-(v+17))/(1-exp((v+17)/4.63)),
                                       beta_h  = 6.94e-6 (v+64.4)/(1-exp(-(v+64.4)/2.63))
  i = g m^3 h (v - ena),  qt = 2.3^((34-21)/10)
ENDCOMMENT

COMMENT
Issue 19 (fast kinetics): PROCEDURE rates carries a TABLE over v (-150 to 100 mV
in 0.02 mV steps) of
the values it assigns, linearly interpolated, so a step costs no exp() or pow() of the
rate functions. The table is used only while the GLOBAL usetable_Nap_Et2 is 1;
biophys_models.simulator sets it per run from RunSettings.kinetics ('exact' sets 0,
and rates() then runs the unchanged expressions: bit-identical to the code before).
ENDCOMMENT

NEURON {
    SUFFIX Nap_Et2
    USEION na READ ena WRITE ina
    RANGE gNap_Et2bar, gNap_Et2, ina
    THREADSAFE
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gNap_Et2bar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ena (mV)
    ina (mA/cm2)
    gNap_Et2 (S/cm2)
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
    gNap_Et2 = gNap_Et2bar * m * m * m * h
    ina = gNap_Et2 * (v - ena)
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
    mInf = 1 / (1 + exp(-(vm + 52.6) / 4.6))
    am = 0.182 * linoid(vm + 38, 6)
    bm = 0.124 * linoid(-(vm + 38), 6)
    mTau = 6 / (am + bm) / qt
    hInf = 1 / (1 + exp((vm + 48.8) / 10))
    ah = 2.88e-6 * linoid(-(vm + 17), 4.63)
    bh = 6.94e-6 * linoid(vm + 64.4, 2.63)
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
