COMMENT
Inhibitory GABA_A synapse of the NeuronIO protocol (Beniaguev, Segev & London
2021), written from the published parameters: dual exponential, rise 0.2 ms,
decay 8 ms, peak gmax = 1 nS, reversal e = -80 mV, i = g (v - e).
The difference of exponentials B - A is normalised so that one event of weight 1
peaks at exactly gmax (same normaliser as NSAmpaNmda). Every event is
transmitted (no release probability, no plasticity, no random numbers); an event
at t = 0 is an ordinary event.
ENDCOMMENT

NEURON {
    POINT_PROCESS NSGabaA
    NONSPECIFIC_CURRENT i
    RANGE tau_r, tau_d, gmax, e, g
    THREADSAFE
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    tau_r = 0.2 (ms)
    tau_d = 8 (ms)
    gmax = 0.001 (uS)
    e = -80 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
    factor (1)
}

STATE {
    A
    B
}

INITIAL {
    LOCAL tp
    A = 0
    B = 0
    : a rise time equal to the decay time would make the normaliser 0/0
    if (tau_r / tau_d > 0.9999) {
        tau_r = 0.9999 * tau_d
    }
    tp = (tau_r * tau_d) / (tau_d - tau_r) * log(tau_d / tau_r)
    factor = 1 / (exp(-tp / tau_d) - exp(-tp / tau_r))
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gmax * (B - A)
    i = g * (v - e)
}

DERIVATIVE states {
    A' = -A / tau_r
    B' = -B / tau_d
}

NET_RECEIVE(weight) {
    A = A + weight * factor
    B = B + weight * factor
}
