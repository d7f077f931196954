COMMENT
Low-voltage-activated (T-type) Ca2+ current (Ca_LVAst) of the Hay et al. 2011
L5b pyramidal cell model (PLoS Comput Biol 7:e1002107, supplement).

Kinetics: Avery & Johnston 1996 (J Neurosci 16:5567), recorded at 21 degC,
voltage dependence shifted by -10 mV as in Hay 2011 (vs = v + 10):
  mInf = 1 / (1 + exp(-(vs+30)/6))    mTau = (5 + 20 / (1 + exp((vs+25)/5))) / qt
  hInf = 1 / (1 + exp((vs+80)/6.4))   hTau = (20 + 50 / (1 + exp((vs+40)/7))) / qt
  i = g m^2 h (v - eca),  qt = 2.3^((34-21)/10)
eca is the Nernst potential NEURON computes from cai/cao.
ENDCOMMENT

COMMENT
Issue 19 (fast kinetics): PROCEDURE rates carries a TABLE over v (-150 to 100 mV
in 0.02 mV steps) of
the values it assigns, linearly interpolated, so a step costs no exp() or pow() of the
rate functions. The table is used only while the GLOBAL usetable_Ca_LVAst is 1;
biophys_models.simulator sets it per run from RunSettings.kinetics ('exact' sets 0,
and rates() then runs the unchanged expressions: bit-identical to the code before).
ENDCOMMENT

NEURON {
    SUFFIX Ca_LVAst
    USEION ca READ eca WRITE ica
    RANGE gCa_LVAstbar, gCa_LVAst, ica
    THREADSAFE
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gCa_LVAstbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    eca (mV)
    ica (mA/cm2)
    gCa_LVAst (S/cm2)
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
    gCa_LVAst = gCa_LVAstbar * m * m * h
    ica = gCa_LVAst * (v - eca)
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
    mInf = 1 / (1 + exp(-(vs + 30) / 6))
    mTau = (5 + 20 / (1 + exp((vs + 25) / 5))) / qt
    hInf = 1 / (1 + exp((vs + 80) / 6.4))
    hTau = (20 + 50 / (1 + exp((vs + 40) / 7))) / qt
    UNITSON
}
