COMMENT
Kv3.1 (fast delayed-rectifier) K+ current (SKv3_1) of the Hay et al. 2011 L5b
pyramidal cell model (PLoS Comput Biol 7:e1002107, supplement).

Kinetics: Rettig et al. 1992 (EMBO J 11:2473), as parameterised in Hay 2011:
  mInf = 1 / (1 + exp(-(v-18.7)/9.7))
  mTau = 0.2 * 20 / (1 + exp(-(v+46.56)/44.14))   (ms)
  i = g m (v - ek)
Hay 2011 applies no temperature factor to this channel, so none is applied here.
ENDCOMMENT

COMMENT
Issue 19 (fast kinetics): PROCEDURE rates carries a TABLE over v (-150 to 100 mV
in 0.02 mV steps) of
the values it assigns, linearly interpolated, so a step costs no exp() or pow() of the
rate functions. The table is used only while the GLOBAL usetable_SKv3_1 is 1;
biophys_models.simulator sets it per run from RunSettings.kinetics ('exact' sets 0,
and rates() then runs the unchanged expressions: bit-identical to the code before).
ENDCOMMENT

NEURON {
    SUFFIX SKv3_1
    USEION k READ ek WRITE ik
    RANGE gSKv3_1bar, gSKv3_1, ik
    THREADSAFE
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gSKv3_1bar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    gSKv3_1 (S/cm2)
    mInf
    mTau (ms)
}

STATE {
    m
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    gSKv3_1 = gSKv3_1bar * m
    ik = gSKv3_1 * (v - ek)
}

DERIVATIVE states {
    rates(v)
    m' = (mInf - m) / mTau
}

INITIAL {
    rates(v)
    m = mInf
}

PROCEDURE rates(vm (mV)) {
    TABLE mInf, mTau FROM -150 TO 100 WITH 12500
    UNITSOFF
    mInf = 1 / (1 + exp(-(vm - 18.7) / 9.7))
    mTau = 0.2 * 20 / (1 + exp(-(vm + 46.56) / 44.14))
    UNITSON
}
