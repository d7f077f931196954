COMMENT
Excitatory AMPA + NMDA synapse of the NeuronIO protocol (Beniaguev, Segev &
London 2021), written from the published parameters:
  AMPA: dual exponential, rise 0.3 ms, decay 3 ms,  peak gmax_AMPA = 0.4 nS
  NMDA: dual exponential, rise 2 ms,   decay 70 ms, peak gmax_NMDA = 0.4 nS,
        Mg block B(v) = 1 / (1 + exp(-0.08 v) (mg / 3.57)),  mg = 1 mM
  reversal e = 0 mV for both;  i = (g_AMPA + g_NMDA) (v - e)
Each component is a difference of exponentials B - A, normalised so that one
event of weight 1 peaks at exactly gmax (factor = 1 / (exp(-tp/td) - exp(-tp/tr)),
tp = tr td / (td - tr) ln(td/tr)). Each NET_RECEIVE event adds weight * factor
to A and B: every event is transmitted (no release probability, no plasticity,
no random numbers). gmax_NMDA = 0 gives the AMPA-only condition.
g_NMDA is the blocked conductance (mgblock already applied); g_NMDA_open is the
unblocked one. An event at t = 0 is an ordinary event (no division by time).
ENDCOMMENT

COMMENT
Issue 19 (fast kinetics): the Mg block's exp(-0.08 v) moved into FUNCTION mg_exp, which
carries a TABLE over v (-150 to 100 mV in 0.02 mV steps), so a step (which evaluates the
current twice, for di/dv) costs no exp() there. The table is used only while the GLOBAL
usetable_NSAmpaNmda is 1; biophys_models.simulator sets it per run from
RunSettings.kinetics ('exact' sets 0: mg_exp returns the same exp() as before, and
mg_block the bit-identical value).
ENDCOMMENT

NEURON {
    POINT_PROCESS NSAmpaNmda
    NONSPECIFIC_CURRENT i
    RANGE tau_r_AMPA, tau_d_AMPA, tau_r_NMDA, tau_d_NMDA
    RANGE gmax_AMPA, gmax_NMDA, e, mg
    RANGE g, g_AMPA, g_NMDA, g_NMDA_open, mgblock, i_AMPA, i_NMDA, didv
    THREADSAFE
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
    (mM) = (milli/liter)
}

PARAMETER {
    tau_r_AMPA = 0.3 (ms)
    tau_d_AMPA = 3 (ms)
    tau_r_NMDA = 2 (ms)
    tau_d_NMDA = 70 (ms)
    gmax_AMPA = 0.0004 (uS)
    gmax_NMDA = 0.0004 (uS)
    e = 0 (mV)
    mg = 1 (mM)
}

ASSIGNED {
    v (mV)
    i (nA)
    i_AMPA (nA)
    i_NMDA (nA)
    g (uS)
    g_AMPA (uS)
    g_NMDA (uS)
    g_NMDA_open (uS)
    mgblock (1)
    factor_AMPA (1)
    factor_NMDA (1)
    didv (uS)
}

STATE {
    A_AMPA
    B_AMPA
    A_NMDA
    B_NMDA
}

INITIAL {
    A_AMPA = 0
    B_AMPA = 0
    A_NMDA = 0
    B_NMDA = 0
    : a rise time equal to the decay time would make the normaliser 0/0
    if (tau_r_AMPA / tau_d_AMPA > 0.9999) {
        tau_r_AMPA = 0.9999 * tau_d_AMPA
    }
    if (tau_r_NMDA / tau_d_NMDA > 0.9999) {
        tau_r_NMDA = 0.9999 * tau_d_NMDA
    }
    factor_AMPA = peak_normaliser(tau_r_AMPA, tau_d_AMPA)
    factor_NMDA = peak_normaliser(tau_r_NMDA, tau_d_NMDA)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    mgblock = mg_block(v)
    g_AMPA = gmax_AMPA * (B_AMPA - A_AMPA)
    g_NMDA_open = gmax_NMDA * (B_NMDA - A_NMDA)
    g_NMDA = g_NMDA_open * mgblock
    i_AMPA = g_AMPA * (v - e)
    i_NMDA = g_NMDA * (v - e)
    g = g_AMPA + g_NMDA
    i = i_AMPA + i_NMDA
    : di/dv exactly (d mgblock/dv = 0.08 mgblock (1 - mgblock)): the fast build's
    : CONDUCTANCE hint (biophys_models/conductance_hint.py), so a step evaluates i once
    didv = g + g_NMDA * 0.08 * (1 - mgblock) * (v - e)
}

DERIVATIVE states {
    A_AMPA' = -A_AMPA / tau_r_AMPA
    B_AMPA' = -B_AMPA / tau_d_AMPA
    A_NMDA' = -A_NMDA / tau_r_NMDA
    B_NMDA' = -B_NMDA / tau_d_NMDA
}

FUNCTION mg_block(vm (mV)) (1) {
    UNITSOFF
    mg_block = 1 / (1 + mg_exp(vm) * (mg / 3.57))
    UNITSON
}

FUNCTION mg_exp(vm (mV)) (1) {
    : the voltage factor of the Mg block, tabulated (mg is RANGE, so it stays outside)
    TABLE FROM -150 TO 100 WITH 12500
    UNITSOFF
    mg_exp = exp(-0.08 * vm)
    UNITSON
}

FUNCTION peak_normaliser(tr (ms), td (ms)) (1) {
    LOCAL tp
    tp = (tr * td) / (td - tr) * log(td / tr)
    peak_normaliser = 1 / (exp(-tp / td) - exp(-tp / tr))
}

NET_RECEIVE(weight) {
    A_AMPA = A_AMPA + weight * factor_AMPA
    B_AMPA = B_AMPA + weight * factor_AMPA
    A_NMDA = A_NMDA + weight * factor_NMDA
    B_NMDA = B_NMDA + weight * factor_NMDA
}
