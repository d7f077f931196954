COMMENT
Slowly inactivating (persistent) K+ current (K_Pst) of the Hay et al. 2011 L5b
pyramidal cell model (PLoS Comput Biol 7:e1002107, supplement).

Kinetics: Korngreen & Sakmann 2000 (J Physiol 525:621), recorded at 21 degC,
voltage dependence shifted by -10 mV (liquid-junction correction, Hay 2011),
i.e. every expression uses vs = v + 10:
  mInf = 1 / (1 + exp(-(vs+1)/12))
  mTau = (1.25 + 175.03 exp(0.026 vs)) / qt   for vs < -50
         (1.25 + 13 exp(-0.026 vs)) / qt      otherwise
  hInf = 1 / (1 + exp((vs+54)/11))
  hTau = (360 + (1010 + 24 (vs+55)) exp(-((vs+75)/48)^2)) / qt
  i = g m^2 h (v - ek),  qt = 2.3^((34-21)/10)
ENDCOMMENT

COMMENT
Issue 19 (fast kinetics): PROCEDURE rates carries a TABLE over v (-150 to 100 mV
in 0.02 mV steps) of
the values it assigns, linearly interpolated, so a step costs no exp() or pow() of the
rate functions. The table is used only while the GLOBAL usetable_K_Pst is 1;
biophys_models.simulator sets it per run from RunSettings.kinetics ('exact' sets 0,
and rates() then runs the unchanged expressions: bit-identical to the code before).
ENDCOMMENT

NEURON {
    SUFFIX K_Pst
    USEION k READ ek WRITE ik
    RANGE gK_Pstbar, gK_Pst, ik
    THREADSAFE
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gK_Pstbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    gK_Pst (S/cm2)
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
    gK_Pst = gK_Pstbar * m * m * h
    ik = gK_Pst * (v - ek)
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
    LOCAL qt, vs
    TABLE mInf, mTau, hInf, hTau FROM -150 TO 100 WITH 12500
    UNITSOFF
    qt = 2.3^((34 - 21) / 10)
    vs = vm + 10
    mInf = 1 / (1 + exp(-(vs + 1) / 12))
    if (vs < -50) {
        mTau = (1.25 + 175.03 * exp(0.026 * vs)) / qt
    } else {
        mTau = (1.25 + 13 * exp(-0.026 * vs)) / qt
    }
    hInf = 1 / (1 + exp((vs + 54) / 11))
    hTau = (360 + (1010 + 24 * (vs + 55)) * exp(-((vs + 75) / 48)^2)) / qt
    UNITSON
}
