// ELM recurrences as plain CPU loops (see surrogates/cpp_scan.py for the Python side).
//
// Shapes follow surrogates/elm_recurrence.py: time-major, a unit axis U (one ELM neuron is
// U = 1), batch B, hidden width H, memory width D. Every (unit, batch) row is independent, so
// the rows are split over threads with at::parallel_for; each row runs its time loop with its
// state in small local buffers and no allocation per step. Inner loops are written as
// "y[:] += a * w[:]" over contiguous rows so that the compiler vectorises them without
// reassociating sums.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr int64_t kMinRowSteps = 20000;  // per thread chunk, so tiny problems stay serial

int64_t grain_for(int64_t steps) {
  return std::max<int64_t>(1, kMinRowSteps / std::max<int64_t>(1, steps));
}

template <typename T>
inline T act(T v, bool silu) {
  if (silu) return v / (T(1) + std::exp(-v));
  return v > T(0) ? v : T(0);
}

template <typename T>
inline T act_grad(T v, bool silu) {
  if (silu) {
    const T s = T(1) / (T(1) + std::exp(-v));
    return s * (T(1) + v * (T(1) - s));
  }
  return v > T(0) ? T(1) : T(0);
}

// One memory step for one row: m <- kappa m + gain tanh(wo act(drive + wq (kappa m)) + bo).
// wqT [D, H] and woT [H, D] are the transposed weights; q, pre, hid, th are scratch (q [D],
// pre/hid [H], th [D]); pre and th keep their values for the caller.
template <typename T>
inline void memory_step(const T* drive, T* m, const T* kappa, const T* gain, const T* wqT,
                        const T* woT, const T* bo, bool silu, int64_t H, int64_t D, T* q,
                        T* pre, T* hid, T* th) {
  for (int64_t d = 0; d < D; ++d) q[d] = kappa[d] * m[d];
  for (int64_t j = 0; j < H; ++j) pre[j] = drive[j];
  for (int64_t d = 0; d < D; ++d) {
    const T qd = q[d];
    const T* w = wqT + d * H;
    for (int64_t j = 0; j < H; ++j) pre[j] += qd * w[j];
  }
  for (int64_t j = 0; j < H; ++j) hid[j] = act(pre[j], silu);
  for (int64_t d = 0; d < D; ++d) th[d] = bo[d];
  for (int64_t j = 0; j < H; ++j) {
    const T hj = hid[j];
    if (hj == T(0)) continue;
    const T* w = woT + j * D;
    for (int64_t d = 0; d < D; ++d) th[d] += hj * w[d];
  }
  for (int64_t d = 0; d < D; ++d) {
    th[d] = std::tanh(th[d]);
    m[d] = q[d] + gain[d] * th[d];
  }
}

// Bit e of the result is set when p[e] != 0, for e < 16 (NaN counts as nonzero).
inline uint32_t nonzero_mask16(const float* p) {
#if defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps();
  uint32_t mask = 0;
  for (int e = 0; e < 4; ++e) {
    const __m128 v = _mm_loadu_ps(p + 4 * e);
    mask |= static_cast<uint32_t>(_mm_movemask_ps(_mm_cmpneq_ps(v, zero))) << (4 * e);
  }
  return mask;
#else
  uint32_t mask = 0;
  for (int e = 0; e < 16; ++e) mask |= static_cast<uint32_t>(p[e] != 0.0f) << e;
  return mask;
#endif
}

inline uint32_t nonzero_mask16(const double* p) {
#if defined(__SSE2__)
  const __m128d zero = _mm_setzero_pd();
  uint32_t mask = 0;
  for (int e = 0; e < 8; ++e) {
    const __m128d v = _mm_loadu_pd(p + 2 * e);
    mask |= static_cast<uint32_t>(_mm_movemask_pd(_mm_cmpneq_pd(v, zero))) << (2 * e);
  }
  return mask;
#else
  uint32_t mask = 0;
  for (int e = 0; e < 16; ++e) mask |= static_cast<uint32_t>(p[e] != 0.0) << e;
  return mask;
#endif
}

inline int lowest_bit(uint32_t mask) {
#if defined(__GNUC__)
  return __builtin_ctz(mask);
#else
  int e = 0;
  while (!(mask & 1u)) mask >>= 1, ++e;
  return e;
#endif
}

void check_cpu_contiguous(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

// drive [T, U, B, H], m0 [U, B, D], kappa/gain/bo [U, D], wqT [U, D, H], woT [U, H, D].
// Returns m [T, U, B, D] and, when save is true, pre [T, U, B, H] and tanh [T, U, B, D].
std::vector<torch::Tensor> scan_forward(const torch::Tensor& drive, const torch::Tensor& m0,
                                        const torch::Tensor& kappa, const torch::Tensor& gain,
                                        const torch::Tensor& wqT, const torch::Tensor& woT,
                                        const torch::Tensor& bo, bool silu, bool save) {
  for (const auto* t : {&drive, &m0, &kappa, &gain, &wqT, &woT, &bo}) {
    check_cpu_contiguous(*t, "scan_forward argument");
    TORCH_CHECK(t->scalar_type() == drive.scalar_type(), "scan_forward: mixed dtypes");
  }
  const int64_t steps = drive.size(0), U = drive.size(1), B = drive.size(2), H = drive.size(3);
  const int64_t D = m0.size(2);
  auto m = torch::empty({steps, U, B, D}, drive.options());
  auto pre = save ? torch::empty({steps, U, B, H}, drive.options()) : torch::empty({0});
  auto th = save ? torch::empty({steps, U, B, D}, drive.options()) : torch::empty({0});
  AT_DISPATCH_FLOATING_TYPES(drive.scalar_type(), "scan_forward", [&] {
    const scalar_t* dr = drive.data_ptr<scalar_t>();
    const scalar_t* m0p = m0.data_ptr<scalar_t>();
    const scalar_t* kp = kappa.data_ptr<scalar_t>();
    const scalar_t* gp = gain.data_ptr<scalar_t>();
    const scalar_t* wq = wqT.data_ptr<scalar_t>();
    const scalar_t* wo = woT.data_ptr<scalar_t>();
    const scalar_t* bp = bo.data_ptr<scalar_t>();
    scalar_t* mp = m.data_ptr<scalar_t>();
    scalar_t* prep = save ? pre.data_ptr<scalar_t>() : nullptr;
    scalar_t* thp = save ? th.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, U * B, grain_for(steps), [&](int64_t lo, int64_t hi) {
      std::vector<scalar_t> buf(3 * D + 2 * H);
      scalar_t *state = buf.data(), *q = state + D, *tb = q + D, *pb = tb + D, *hb = pb + H;
      for (int64_t row = lo; row < hi; ++row) {
        const int64_t u = row / B;
        for (int64_t d = 0; d < D; ++d) state[d] = m0p[row * D + d];
        for (int64_t t = 0; t < steps; ++t) {
          const int64_t r = t * U * B + row;
          memory_step(dr + r * H, state, kp + u * D, gp + u * D, wq + u * D * H,
                      wo + u * H * D, bp + u * D, silu, H, D, q, pb, hb, tb);
          for (int64_t d = 0; d < D; ++d) mp[r * D + d] = state[d];
          if (save) {
            for (int64_t j = 0; j < H; ++j) prep[r * H + j] = pb[j];
            for (int64_t d = 0; d < D; ++d) thp[r * D + d] = tb[d];
          }
        }
      }
    });
  });
  return {m, pre, th};
}

// Reverse-time adjoint of scan_forward. grad_m, th [T, U, B, D]; pre [T, U, B, H]; kappa,
// gain [U, D]; wq [U, H, D]; wo [U, D, H]. Returns adj_m (total dL/dm_t), adj_z (dL/d of
// tanh's argument), adj_pre (dL/d pre = dL/d drive), adj_mq (adj_m + dL/dq_t through wq,
// whose product with m_{t-1} is kappa's gradient), each time-major, and dL/dm0 [U, B, D].
std::vector<torch::Tensor> scan_backward(const torch::Tensor& grad_m, const torch::Tensor& pre,
                                         const torch::Tensor& th, const torch::Tensor& kappa,
                                         const torch::Tensor& gain, const torch::Tensor& wq,
                                         const torch::Tensor& wo, bool silu) {
  for (const auto* t : {&grad_m, &pre, &th, &kappa, &gain, &wq, &wo}) {
    check_cpu_contiguous(*t, "scan_backward argument");
    TORCH_CHECK(t->scalar_type() == grad_m.scalar_type(), "scan_backward: mixed dtypes");
  }
  const int64_t steps = grad_m.size(0), U = grad_m.size(1), B = grad_m.size(2);
  const int64_t D = grad_m.size(3), H = pre.size(3);
  auto adj_m = torch::empty_like(grad_m);
  auto adj_z = torch::empty_like(grad_m);
  auto adj_mq = torch::empty_like(grad_m);
  auto adj_pre = torch::empty_like(pre);
  auto grad_m0 = torch::empty({U, B, D}, grad_m.options());
  AT_DISPATCH_FLOATING_TYPES(grad_m.scalar_type(), "scan_backward", [&] {
    const scalar_t* gm = grad_m.data_ptr<scalar_t>();
    const scalar_t* pp = pre.data_ptr<scalar_t>();
    const scalar_t* tp = th.data_ptr<scalar_t>();
    const scalar_t* kp = kappa.data_ptr<scalar_t>();
    const scalar_t* gp = gain.data_ptr<scalar_t>();
    const scalar_t* wqp = wq.data_ptr<scalar_t>();
    const scalar_t* wop = wo.data_ptr<scalar_t>();
    scalar_t* am = adj_m.data_ptr<scalar_t>();
    scalar_t* az = adj_z.data_ptr<scalar_t>();
    scalar_t* amq = adj_mq.data_ptr<scalar_t>();
    scalar_t* ap = adj_pre.data_ptr<scalar_t>();
    scalar_t* g0 = grad_m0.data_ptr<scalar_t>();
    at::parallel_for(0, U * B, grain_for(steps), [&](int64_t lo, int64_t hi) {
      std::vector<scalar_t> buf(3 * D + H);
      scalar_t *carry = buf.data(), *g = carry + D, *a = g + D, *gpre = a + D;
      for (int64_t row = lo; row < hi; ++row) {
        const int64_t u = row / B;
        const scalar_t* k = kp + u * D;
        const scalar_t* gn = gp + u * D;
        const scalar_t* wqu = wqp + u * H * D;  // [H, D]
        const scalar_t* wou = wop + u * D * H;  // [D, H]
        for (int64_t d = 0; d < D; ++d) carry[d] = scalar_t(0);
        for (int64_t t = steps - 1; t >= 0; --t) {
          const int64_t r = t * U * B + row;
          for (int64_t d = 0; d < D; ++d) {
            g[d] = gm[r * D + d] + carry[d];
            const scalar_t tv = tp[r * D + d];
            a[d] = g[d] * gn[d] * (scalar_t(1) - tv * tv);
            am[r * D + d] = g[d];
            az[r * D + d] = a[d];
          }
          for (int64_t j = 0; j < H; ++j) gpre[j] = scalar_t(0);
          for (int64_t d = 0; d < D; ++d) {
            const scalar_t ad = a[d];
            const scalar_t* w = wou + d * H;
            for (int64_t j = 0; j < H; ++j) gpre[j] += ad * w[j];
          }
          for (int64_t j = 0; j < H; ++j) {
            gpre[j] *= act_grad(pp[r * H + j], silu);
            ap[r * H + j] = gpre[j];
          }
          for (int64_t d = 0; d < D; ++d) a[d] = g[d];  // a <- g + wq^T gpre
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t gj = gpre[j];
            if (gj == scalar_t(0)) continue;
            const scalar_t* w = wqu + j * D;
            for (int64_t d = 0; d < D; ++d) a[d] += gj * w[d];
          }
          for (int64_t d = 0; d < D; ++d) {
            amq[r * D + d] = a[d];
            carry[d] = k[d] * a[d];
          }
        }
        for (int64_t d = 0; d < D; ++d) g0[row * D + d] = carry[d];
      }
    });
  });
  return {adj_m, adj_z, adj_pre, adj_mq, grad_m0};
}

// z_t = k z_{t-1} + p_t over the leading axis of p [T, C] (z_{-1} = z0 [C], k [C]); with
// reverse, z_t = k z_{t+1} + p_t from the last step back (z_T = z0).
torch::Tensor exp_filter(const torch::Tensor& p, const torch::Tensor& k, const torch::Tensor& z0,
                         bool reverse) {
  for (const auto* t : {&p, &k, &z0}) {
    check_cpu_contiguous(*t, "exp_filter argument");
    TORCH_CHECK(t->scalar_type() == p.scalar_type(), "exp_filter: mixed dtypes");
  }
  const int64_t steps = p.size(0), C = p.numel() / std::max<int64_t>(1, steps);
  TORCH_CHECK(k.numel() == C && z0.numel() == C, "exp_filter: k and z0 need one value per channel");
  auto z = torch::empty_like(p);
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "exp_filter", [&] {
    const scalar_t* pp = p.data_ptr<scalar_t>();
    const scalar_t* kp = k.data_ptr<scalar_t>();
    scalar_t* zp = z.data_ptr<scalar_t>();
    at::parallel_for(0, C, std::max<int64_t>(64, grain_for(steps)), [&](int64_t lo, int64_t hi) {
      std::vector<scalar_t> state(z0.data_ptr<scalar_t>() + lo, z0.data_ptr<scalar_t>() + hi);
      for (int64_t i = 0; i < steps; ++i) {
        const int64_t t = reverse ? steps - 1 - i : i;
        const scalar_t* pt = pp + t * C;
        scalar_t* zt = zp + t * C;
        for (int64_t c = lo; c < hi; ++c) {
          state[c - lo] = kp[c] * state[c - lo] + pt[c];
          zt[c] = state[c - lo];
        }
      }
    });
  });
  return z;
}

// Whole single-unit ELM for inference, no autograd: x [B, T, N] (any strides, last axis
// contiguous) is projected by w_in [N, H] over its nonzero entries only, filtered
// (z_t = kz z_{t-1} + x_t w_in, kz [H]), shifted by b_in [H], fed to the memory step and read
// out by w_y [O, D], b_y [O]. State: z0 [B, H], m0 [B, D]. Returns y [B, T, O], z_T, m_T.
std::vector<torch::Tensor> infer(const torch::Tensor& x, const torch::Tensor& w_in,
                                 const torch::Tensor& b_in, const torch::Tensor& kz,
                                 const torch::Tensor& z0, const torch::Tensor& m0,
                                 const torch::Tensor& kappa, const torch::Tensor& gain,
                                 const torch::Tensor& wqT, const torch::Tensor& woT,
                                 const torch::Tensor& bo, const torch::Tensor& w_y,
                                 const torch::Tensor& b_y, bool silu) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 3 && x.stride(2) == 1,
              "infer: x must be a CPU [B, T, N] tensor with a contiguous last axis");
  for (const auto* t : {&w_in, &b_in, &kz, &z0, &m0, &kappa, &gain, &wqT, &woT, &bo, &w_y, &b_y}) {
    check_cpu_contiguous(*t, "infer argument");
    TORCH_CHECK(t->scalar_type() == x.scalar_type(), "infer: mixed dtypes");
  }
  const int64_t B = x.size(0), steps = x.size(1), N = x.size(2);
  const int64_t H = w_in.size(1), D = m0.size(1), O = w_y.size(0);
  TORCH_CHECK(w_in.size(0) == N, "infer: w_in must be [N, H]");
  auto y = torch::empty({B, steps, O}, x.options());
  auto z_out = z0.clone();
  auto m_out = m0.clone();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "infer", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const int64_t sb = x.stride(0), st = x.stride(1);
    const scalar_t* wi = w_in.data_ptr<scalar_t>();
    const scalar_t* bi = b_in.data_ptr<scalar_t>();
    const scalar_t* kzp = kz.data_ptr<scalar_t>();
    const scalar_t* kp = kappa.data_ptr<scalar_t>();
    const scalar_t* gp = gain.data_ptr<scalar_t>();
    const scalar_t* wq = wqT.data_ptr<scalar_t>();
    const scalar_t* wo = woT.data_ptr<scalar_t>();
    const scalar_t* bp = bo.data_ptr<scalar_t>();
    const scalar_t* wy = w_y.data_ptr<scalar_t>();
    const scalar_t* by = b_y.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    scalar_t* zs = z_out.data_ptr<scalar_t>();
    scalar_t* ms = m_out.data_ptr<scalar_t>();
    constexpr int64_t kBlock = 16;
    // Reading x costs about as much as the recurrence: split rows over threads earlier.
    at::parallel_for(0, B, grain_for(8 * steps), [&](int64_t lo, int64_t hi) {
      std::vector<scalar_t> buf(3 * H + 2 * D);
      scalar_t *drive = buf.data(), *pb = drive + H, *hb = pb + H, *q = hb + H, *tb = q + D;
      for (int64_t b = lo; b < hi; ++b) {
        scalar_t* z = zs + b * H;
        scalar_t* m = ms + b * D;
        for (int64_t t = 0; t < steps; ++t) {
          const scalar_t* xr = xp + b * sb + t * st;
          for (int64_t j = 0; j < H; ++j) z[j] *= kzp[j];
          int64_t i = 0;
          for (; i + kBlock <= N; i += kBlock) {  // visit only the nonzero entries
            for (uint32_t mask = nonzero_mask16(xr + i); mask != 0; mask &= mask - 1) {
              const int64_t e = i + lowest_bit(mask);
              const scalar_t v = xr[e];
              const scalar_t* w = wi + e * H;
              for (int64_t j = 0; j < H; ++j) z[j] += v * w[j];
            }
          }
          for (; i < N; ++i) {
            const scalar_t v = xr[i];
            if (v == scalar_t(0)) continue;
            const scalar_t* w = wi + i * H;
            for (int64_t j = 0; j < H; ++j) z[j] += v * w[j];
          }
          for (int64_t j = 0; j < H; ++j) drive[j] = z[j] + bi[j];
          memory_step(drive, m, kp, gp, wq, wo, bp, silu, H, D, q, pb, hb, tb);
          scalar_t* yo = yp + (b * steps + t) * O;
          for (int64_t o = 0; o < O; ++o) {
            scalar_t acc = by[o];
            for (int64_t d = 0; d < D; ++d) acc += wy[o * D + d] * m[d];
            yo[o] = acc;
          }
        }
      }
    });
  });
  return {y, z_out, m_out};
}

// x [R, N] @ w [N, H] over the nonzero entries of x only. Returns the product and x in CSR
// form (row offsets [R + 1], columns [nnz], values [nnz]) for project_grad.
std::vector<torch::Tensor> project(const torch::Tensor& x, const torch::Tensor& w) {
  check_cpu_contiguous(x, "project: x");
  check_cpu_contiguous(w, "project: w");
  TORCH_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(0), "project: bad shapes");
  TORCH_CHECK(x.scalar_type() == w.scalar_type(), "project: mixed dtypes");
  const int64_t R = x.size(0), N = x.size(1), H = w.size(1);
  auto out = torch::zeros({R, H}, x.options());
  auto offsets = torch::empty({R + 1}, x.options().dtype(torch::kInt64));
  torch::Tensor cols, vals;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "project", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    int64_t* off = offsets.data_ptr<int64_t>();
    std::vector<int64_t> col;
    std::vector<scalar_t> val;
    constexpr int64_t kBlock = 16;
    off[0] = 0;
    for (int64_t r = 0; r < R; ++r) {
      const scalar_t* xr = xp + r * N;
      scalar_t* o = op + r * H;
      auto visit = [&](int64_t e) {
        const scalar_t v = xr[e];
        const scalar_t* wr = wp + e * H;
        for (int64_t j = 0; j < H; ++j) o[j] += v * wr[j];
        col.push_back(e);
        val.push_back(v);
      };
      int64_t i = 0;
      for (; i + kBlock <= N; i += kBlock)
        for (uint32_t mask = nonzero_mask16(xr + i); mask != 0; mask &= mask - 1)
          visit(i + lowest_bit(mask));
      for (; i < N; ++i)
        if (xr[i] != scalar_t(0)) visit(i);
      off[r + 1] = static_cast<int64_t>(col.size());
    }
    const int64_t nnz = static_cast<int64_t>(col.size());
    cols = torch::from_blob(col.data(), {nnz}, torch::kInt64).clone();
    vals = torch::from_blob(val.data(), {nnz}, x.options()).clone();
  });
  return {out, offsets, cols, vals};
}

// Gradient of project with respect to w: sum over rows r of x[r, e] * grad[r] into row e of
// an [N, H] result, from the CSR form that project returned.
torch::Tensor project_grad(const torch::Tensor& offsets, const torch::Tensor& cols,
                           const torch::Tensor& vals, const torch::Tensor& grad, int64_t N) {
  for (const auto* t : {&offsets, &cols, &vals, &grad}) check_cpu_contiguous(*t, "project_grad");
  TORCH_CHECK(vals.scalar_type() == grad.scalar_type(), "project_grad: mixed dtypes");
  const int64_t R = grad.size(0), H = grad.size(1);
  auto gw = torch::zeros({N, H}, grad.options());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "project_grad", [&] {
    const int64_t* off = offsets.data_ptr<int64_t>();
    const int64_t* cp = cols.data_ptr<int64_t>();
    const scalar_t* vp = vals.data_ptr<scalar_t>();
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    scalar_t* out = gw.data_ptr<scalar_t>();
    for (int64_t r = 0; r < R; ++r) {
      const scalar_t* g = gp + r * H;
      for (int64_t k = off[r]; k < off[r + 1]; ++k) {
        const scalar_t v = vp[k];
        scalar_t* o = out + cp[k] * H;
        for (int64_t j = 0; j < H; ++j) o[j] += v * g[j];
      }
    }
  });
  return gw;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.doc() = "ELM recurrences as plain CPU loops";
  module.def("scan_forward", &scan_forward, "memory recurrence, forward");
  module.def("scan_backward", &scan_backward, "memory recurrence, reverse-time adjoint");
  module.def("exp_filter", &exp_filter, "first-order filter along the leading axis");
  module.def("infer", &infer, "single-unit ELM inference over sparse inputs");
  module.def("project", &project, "x @ w over the nonzero entries of x, and x as CSR");
  module.def("project_grad", &project_grad, "gradient of project with respect to w");
}
