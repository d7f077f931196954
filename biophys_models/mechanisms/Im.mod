COMMENT
Muscarinic (M-type) K+ current (Im) of the Hay et al. 2011 L5b pyramidal cell
model (PLoS Comput Biol 7:e1002107, supplement).

Kinetics: Adams et al. 1982 (J Physiol 330:537), as parameterised in Hay 2011:
  alpha = 3.3e-3 exp( 2.5 * 0.04 (v+35)) /ms
  beta  = 3.3e-3 exp(-2.5 * 0.04 (v+35)) /ms
  mInf = alpha/(alpha+beta),  mTau = 1/(alpha+beta)/qt,  i = g m (v - ek)
  qt = 2.3^((34-21)/10)
ENDCOMMENT

COMMENT
Issue 19 (fast kinetics): PROCEDURE rates carries a TABLE over v (-150 to 100 mV
in 0.02 mV steps) of
the values it assigns, linearly interpolated, so a step costs no exp() or pow() of the
rate functions. The table is used only while the GLOBAL usetable_Im is 1;
biophys_models.simulator sets it per run from RunSettings.kinetics ('exact' sets 0,
and rates() then runs the unchanged expressions: bit-identical to the code before).
ENDCOMMENT

NEURON {
    SUFFIX Im
    USEION k READ ek WRITE ik
    RANGE gImbar, gIm, ik
    THREADSAFE
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gImbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    gIm (S/cm2)
    mInf
    mTau (ms)
}

STATE {
    m
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    gIm = gImbar * m
    ik = gIm * (v - ek)
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
    LOCAL qt, a, b
    TABLE mInf, mTau FROM -150 TO 100 WITH 12500
    UNITSOFF
    qt = 2.3^((34 - 21) / 10)
    a = 3.3e-3 * exp(2.5 * 0.04 * (vm + 35))
    b = 3.3e-3 * exp(-2.5 * 0.04 * (vm + 35))
    mInf = a / (a + b)
    mTau = 1 / (a + b) / qt
    UNITSON
}
