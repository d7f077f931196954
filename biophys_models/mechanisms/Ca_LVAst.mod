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
    UNITSOFF
    qt = 2.3^((34 - 21) / 10)
    vs = vm + 10
    mInf = 1 / (1 + exp(-(vs + 30) / 6))
    mTau = (5 + 20 / (1 + exp((vs + 25) / 5))) / qt
    hInf = 1 / (1 + exp((vs + 80) / 6.4))
    hTau = (20 + 50 / (1 + exp((vs + 40) / 7))) / qt
    UNITSON
}
