COMMENT
Kv3.1 (fast delayed-rectifier) K+ current (SKv3_1) of the Hay et al. 2011 L5b
pyramidal cell model (PLoS Comput Biol 7:e1002107, supplement).

Kinetics: Rettig et al. 1992 (EMBO J 11:2473), as parameterised in Hay 2011:
  mInf = 1 / (1 + exp(-(v-18.7)/9.7))
  mTau = 0.2 * 20 / (1 + exp(-(v+46.56)/44.14))   (ms)
  i = g m (v - ek)
Hay 2011 applies no temperature factor to this channel, so none is applied here.
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
    UNITSOFF
    mInf = 1 / (1 + exp(-(vm - 18.7) / 9.7))
    mTau = 0.2 * 20 / (1 + exp(-(vm + 46.56) / 44.14))
    UNITSON
}
