COMMENT
NSVecStim: an event source that plays a sorted Vector of spike times (ms) as
output events (NEURON 9 has no built-in VecStim).

Usage (Python):
    vs = h.NSVecStim()
    vs.play(times)                    # h.Vector, sorted, finite, >= 0 (checked)
    nc = h.NetCon(vs, syn, 0, delay, weight)
    vs.play()                         # no argument: plays nothing
The mechanism keeps a raw pointer to the Vector: the caller must keep the Vector
alive (and unchanged) while simulations run. Times before the initialisation
time are skipped; equal times give one event each.

How it works: play() stores the Vector in the BBCOREPOINTER slot `ptr`. INITIAL
reads the first time >= t and schedules a self-event (flag 1) for it; each
self-event emits net_event(t), reads the next time and schedules it again.

CoreNEURON: bbcore_write serialises the times (one int: the count; the doubles:
the times) and bbcore_read rebuilds a private copy on the CoreNEURON side, so
the mechanism also compiles with `nrnivmodl -coreneuron` and runs under
psolve with coreneuron.enable = True. (Alternative without this mechanism:
queue input events with NetCon(None, syn).event(t) from an FInitializeHandler.)
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL NSVecStim
    RANGE idx, etime
    BBCOREPOINTER ptr
}

ASSIGNED {
    idx
    etime (ms)
    ptr
}

INITIAL {
    idx = 0
    next_time()
    while (idx > 0 && etime < t) {
        next_time()
    }
    if (idx > 0) {
        net_send(etime - t, 1)
    }
}

NET_RECEIVE(w) {
    if (flag == 1) {
        net_event(t)
        next_time()
        if (idx > 0) {
            net_send(etime - t, 1)
        }
    }
}

PROCEDURE next_time() {
    : sets etime to the next spike time and advances idx; idx = -1 when done
VERBATIM
    {
        void** vp = (void**) (&_p_ptr);
        IvocVect* vec = (IvocVect*) (*vp);
        int n = vec ? vector_capacity(vec) : 0;
        if (idx >= 0 && idx < n) {
            etime = vector_vec(vec)[(int) idx];
            idx += 1;
        } else {
            idx = -1;
        }
    }
ENDVERBATIM
}

PROCEDURE play() {
VERBATIM
#if !NRNBBCORE
    {
        void** vp = (void**) (&_p_ptr);
        *vp = nullptr;
        if (ifarg(1)) {
            IvocVect* vec = vector_arg(1);
            int n = vector_capacity(vec);
            double* tv = vector_vec(vec);
            for (int k = 0; k < n; ++k) {
                if (!(tv[k] >= 0.0 && tv[k] < 1e300) || (k > 0 && tv[k] < tv[k - 1])) {
                    hoc_execerror("NSVecStim.play:",
                                  "spike times must be sorted, finite and >= 0");
                }
            }
            *vp = vec;
        }
    }
#endif
ENDVERBATIM
}

VERBATIM
/* Serialise the spike times for CoreNEURON: d holds the count, x the times. */
static void bbcore_write(double* x, int* d, int* x_offset, int* d_offset, _threadargsproto_) {
    void** vp = (void**) (&_p_ptr);
    IvocVect* vec = (IvocVect*) (*vp);
    int n = vec ? vector_capacity(vec) : 0;
    if (d) {
        d[*d_offset] = n;
    }
    if (x && n > 0) {
        double* tv = vector_vec(vec);
        for (int k = 0; k < n; ++k) {
            x[*x_offset + k] = tv[k];
        }
    }
    *d_offset += 1;
    *x_offset += n;
}

/* Rebuild a private copy of the spike times on the reading side. */
static void bbcore_read(double* x, int* d, int* x_offset, int* d_offset, _threadargsproto_) {
    int n = d[*d_offset];
    void** vp = (void**) (&_p_ptr);
    IvocVect* vec = vector_new1(n);
    double* tv = vector_vec(vec);
    for (int k = 0; k < n; ++k) {
        tv[k] = x[*x_offset + k];
    }
    *vp = vec;
    *d_offset += 1;
    *x_offset += n;
}
ENDVERBATIM
