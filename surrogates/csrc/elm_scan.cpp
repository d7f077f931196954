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

#if defined(__GNUC__) && defined(__x86_64__)
#define ELM_FAST_INFER 1  // the specialised AVX2 inference kernel, chosen at run time
#include <immintrin.h>
#endif

#include <algorithm>
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
  return v <= T(0) ? T(0) : v;  // NaN stays NaN, as in torch.relu
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

// ---------------------------------------------------------------------------------------------
// Specialised float32 inference for small models (H <= 64, D <= 32) on x86-64 CPUs with AVX2
// and FMA, chosen at run time; everything else takes the generic `infer` loop below. Measured
// on the NeuronIO Branch-ELM (d_m = 20): reading x (5 KB per step) is most of the time, and
// the generic loop spends about as long again on scalar memory steps and std::tanh. Here the
// state of one row (trace z, memory m) stays in vector registers for the whole sequence, the
// weights are padded to whole 8-float vectors (the padding is zero, so padded lanes stay
// zero), tanh and SiLU run 8 lanes at a time, matrix-vector sums are split over two
// accumulators (so they round differently from the generic loop, within float precision), and
// x is prefetched a few steps ahead, spread over the scan, so that the reads overlap the
// arithmetic.

#ifdef ELM_FAST_INFER
#define ELM_AVX2 __attribute__((target("avx2,fma")))
#define ELM_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

constexpr int kMaxVecH = 8;  // H <= 64
constexpr int kMaxVecD = 4;  // D <= 32
constexpr int64_t kPrefetchSteps = 2;  // steps of x requested ahead of use

bool cpu_has_avx2_fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

// e^y = 2^n (1 + p) with y = n ln2 + r, |r| <= ln2 / 2 and p = e^r - 1 from its Taylor series
// up to r^7 (truncation < 6e-9 relative). Needs -87 <= y <= 87 so that 2^n is a normal float.
// ln2 is split in two (Cody and Waite) so that r is exact.
ELM_AVX2_INLINE void exp_parts(__m256 y, __m256& scale, __m256& p) {
  const __m256 round = _mm256_set1_ps(12582912.0f);  // 1.5 * 2^23: adding it rounds to integer
  const __m256 t = _mm256_fmadd_ps(y, _mm256_set1_ps(1.44269504088896341f), round);
  const __m256 n = _mm256_sub_ps(t, round);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), y);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440054690583e-4f), r);
  __m256 c = _mm256_set1_ps(1.0f / 5040.0f);
  c = _mm256_fmadd_ps(c, r, _mm256_set1_ps(1.0f / 720.0f));
  c = _mm256_fmadd_ps(c, r, _mm256_set1_ps(1.0f / 120.0f));
  c = _mm256_fmadd_ps(c, r, _mm256_set1_ps(1.0f / 24.0f));
  c = _mm256_fmadd_ps(c, r, _mm256_set1_ps(1.0f / 6.0f));
  c = _mm256_fmadd_ps(c, r, _mm256_set1_ps(0.5f));
  c = _mm256_fmadd_ps(c, r, _mm256_set1_ps(1.0f));
  p = _mm256_mul_ps(c, r);
  // t's low mantissa bits hold n; 2^n is (n + 127) in the exponent field.
  const __m256i n_int = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(round));
  scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n_int, _mm256_set1_epi32(127)),
                                                23));
}

// tanh(x) = (1 - e) / (1 + e) with e = e^{-2|x|}, the sign put back; 1 - e is formed as
// -(e - 1) from the parts above, so small |x| keeps its relative precision. |x| is capped at
// 9, where tanh rounds to 1 in float; NaN stays NaN.
ELM_AVX2_INLINE __m256 tanh8(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 a = _mm256_min_ps(_mm256_set1_ps(9.0f), _mm256_andnot_ps(sign, x));
  __m256 scale, p;
  exp_parts(_mm256_mul_ps(a, _mm256_set1_ps(-2.0f)), scale, p);
  const __m256 em1 = _mm256_fmadd_ps(scale, p, _mm256_sub_ps(scale, _mm256_set1_ps(1.0f)));
  const __m256 t = _mm256_div_ps(_mm256_sub_ps(_mm256_setzero_ps(), em1),
                                 _mm256_add_ps(_mm256_set1_ps(2.0f), em1));
  return _mm256_or_ps(t, _mm256_and_ps(sign, x));
}

// silu(v) = v / (1 + e^{-v}), the exponent clamped to [-87, 87] (NaN stays NaN).
ELM_AVX2_INLINE __m256 silu8(__m256 v) {
  __m256 y = _mm256_sub_ps(_mm256_setzero_ps(), v);
  y = _mm256_max_ps(_mm256_set1_ps(-87.0f), _mm256_min_ps(_mm256_set1_ps(87.0f), y));
  __m256 scale, p;
  exp_parts(y, scale, p);
  const __m256 e = _mm256_fmadd_ps(scale, p, scale);
  return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

ELM_AVX2_INLINE float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Padded weights: every row is a whole number of 8-float vectors, the padding zero.
struct FastWeights {
  const float* w_in;  // [N, HP]
  const float* b_in;  // [HP]
  const float* kz;    // [HP]
  const float* wqT;   // [D, HP]
  const float* woT;   // [H, DP]
  const float* bo;    // [DP]
  const float* kappa;  // [DP]
  const float* gain;   // [DP]
  const float* w_y;    // [O, DP]
  const float* b_y;    // [O]
  int64_t H, D, O;
};

struct FastRows {
  const float* x;
  int64_t sb, st, N, steps;
  float* z;  // [B, H], updated in place
  float* m;  // [B, D], updated in place
  float* y;  // [B, steps, O]
};

// z += x[e] * w_in[e] (rows of NH vectors).
template <int NH>
ELM_AVX2_INLINE void add_row(__m256* z, const float* x, const float* w_in, int64_t e) {
  const __m256 v = _mm256_set1_ps(x[e]);
  const float* w = w_in + e * 8 * NH;
  for (int k = 0; k < NH; ++k) z[k] = _mm256_fmadd_ps(v, _mm256_load_ps(w + 8 * k), z[k]);
}

template <int NH, int ND>
ELM_AVX2 void fast_infer_rows(const FastWeights& p, const FastRows& r, bool silu, int64_t lo,
                              int64_t hi) {
  constexpr int HP = 8 * NH, DP = 8 * ND;
  const int64_t H = p.H, D = p.D, O = p.O, N = r.N, steps = r.steps;
  alignas(32) float qs[DP];
  alignas(32) float hs[HP];
  alignas(32) float buf[HP > DP ? HP : DP];
  const __m256 zero = _mm256_setzero_ps();
  const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
  for (int64_t b = lo; b < hi; ++b) {
    __m256 z[NH], m[ND];
    for (int k = 0; k < HP; ++k) buf[k] = k < H ? r.z[b * H + k] : 0.0f;
    for (int k = 0; k < NH; ++k) z[k] = _mm256_load_ps(buf + 8 * k);
    for (int d = 0; d < DP; ++d) buf[d] = d < D ? r.m[b * D + d] : 0.0f;
    for (int c = 0; c < ND; ++c) m[c] = _mm256_load_ps(buf + 8 * c);
    const float* xb = r.x + b * r.sb;
    for (int64_t t = 0; t < steps; ++t) {
      const float* xr = xb + t * r.st;
      // The same columns kPrefetchSteps steps ahead (this row itself near the end).
      const char* ahead = reinterpret_cast<const char*>(
          xr + (t + kPrefetchSteps < steps ? kPrefetchSteps * r.st : 0));
      // Trace: decay, then add the weight rows of the nonzero inputs.
      for (int k = 0; k < NH; ++k) z[k] = _mm256_mul_ps(z[k], _mm256_load_ps(p.kz + 8 * k));
      int64_t i = 0;
      for (; i + 32 <= N; i += 32) {
        _mm_prefetch(ahead + 4 * i, _MM_HINT_T0);  // two 64-byte lines per 32 floats,
        _mm_prefetch(ahead + 4 * i + 64, _MM_HINT_T0);  // spread over the scan
        const __m256 v0 = _mm256_loadu_ps(xr + i), v1 = _mm256_loadu_ps(xr + i + 8);
        const __m256 v2 = _mm256_loadu_ps(xr + i + 16), v3 = _mm256_loadu_ps(xr + i + 24);
        const __m256i any = _mm256_castps_si256(_mm256_or_ps(_mm256_or_ps(v0, v1),
                                                             _mm256_or_ps(v2, v3)));
        if (_mm256_testz_si256(any, magnitude)) continue;  // all 32 are +-0
        uint32_t mask =
            static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v0, zero, _CMP_NEQ_UQ))) |
            static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v1, zero, _CMP_NEQ_UQ))) << 8 |
            static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v2, zero, _CMP_NEQ_UQ))) << 16 |
            static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v3, zero, _CMP_NEQ_UQ))) << 24;
        for (; mask != 0; mask &= mask - 1) add_row<NH>(z, xr, p.w_in, i + __builtin_ctz(mask));
      }
      for (int64_t off = 4 * i; off < 4 * N; off += 64) _mm_prefetch(ahead + off, _MM_HINT_T0);
      for (; i < N; ++i)
        if (xr[i] != 0.0f) add_row<NH>(z, xr, p.w_in, i);
      // Memory step; two accumulators per vector halve the dependency chains.
      __m256 q[ND];
      for (int c = 0; c < ND; ++c) {
        q[c] = _mm256_mul_ps(_mm256_load_ps(p.kappa + 8 * c), m[c]);
        _mm256_store_ps(qs + 8 * c, q[c]);
      }
      __m256 a0[NH], a1[NH];
      for (int k = 0; k < NH; ++k) {
        a0[k] = _mm256_add_ps(z[k], _mm256_load_ps(p.b_in + 8 * k));
        a1[k] = zero;
      }
      int64_t d = 0;
      for (; d + 2 <= D; d += 2) {
        const __m256 qa = _mm256_broadcast_ss(qs + d), qb = _mm256_broadcast_ss(qs + d + 1);
        const float* wa = p.wqT + d * HP;
        for (int k = 0; k < NH; ++k) {
          a0[k] = _mm256_fmadd_ps(qa, _mm256_load_ps(wa + 8 * k), a0[k]);
          a1[k] = _mm256_fmadd_ps(qb, _mm256_load_ps(wa + HP + 8 * k), a1[k]);
        }
      }
      if (d < D) {
        const __m256 qa = _mm256_broadcast_ss(qs + d);
        for (int k = 0; k < NH; ++k)
          a0[k] = _mm256_fmadd_ps(qa, _mm256_load_ps(p.wqT + d * HP + 8 * k), a0[k]);
      }
      for (int k = 0; k < NH; ++k) {
        const __m256 pre = _mm256_add_ps(a0[k], a1[k]);
        _mm256_store_ps(hs + 8 * k, silu ? silu8(pre) : _mm256_max_ps(zero, pre));
      }
      __m256 s0[ND], s1[ND];
      for (int c = 0; c < ND; ++c) {
        s0[c] = _mm256_load_ps(p.bo + 8 * c);
        s1[c] = zero;
      }
      int64_t j = 0;
      for (; j + 2 <= H; j += 2) {
        const __m256 ha = _mm256_broadcast_ss(hs + j), hb = _mm256_broadcast_ss(hs + j + 1);
        const float* wa = p.woT + j * DP;
        for (int c = 0; c < ND; ++c) {
          s0[c] = _mm256_fmadd_ps(ha, _mm256_load_ps(wa + 8 * c), s0[c]);
          s1[c] = _mm256_fmadd_ps(hb, _mm256_load_ps(wa + DP + 8 * c), s1[c]);
        }
      }
      if (j < H) {
        const __m256 ha = _mm256_broadcast_ss(hs + j);
        for (int c = 0; c < ND; ++c)
          s0[c] = _mm256_fmadd_ps(ha, _mm256_load_ps(p.woT + j * DP + 8 * c), s0[c]);
      }
      for (int c = 0; c < ND; ++c)
        m[c] = _mm256_fmadd_ps(_mm256_load_ps(p.gain + 8 * c),
                               tanh8(_mm256_add_ps(s0[c], s1[c])), q[c]);
      float* yo = r.y + (b * steps + t) * O;
      for (int64_t o = 0; o < O; ++o) {
        __m256 acc = _mm256_mul_ps(_mm256_load_ps(p.w_y + o * DP), m[0]);
        for (int c = 1; c < ND; ++c)
          acc = _mm256_fmadd_ps(_mm256_load_ps(p.w_y + o * DP + 8 * c), m[c], acc);
        yo[o] = p.b_y[o] + hsum8(acc);
      }
    }
    for (int k = 0; k < NH; ++k) _mm256_store_ps(buf + 8 * k, z[k]);
    for (int64_t k = 0; k < H; ++k) r.z[b * H + k] = buf[k];
    for (int c = 0; c < ND; ++c) _mm256_store_ps(buf + 8 * c, m[c]);
    for (int64_t c = 0; c < D; ++c) r.m[b * D + c] = buf[c];
  }
}

// t [R, C] copied into zeros [R, width], width >= C (rows of whole vectors, 64-byte aligned).
torch::Tensor padded_rows(const torch::Tensor& t, int64_t width) {
  auto out = torch::zeros({t.size(0), width}, t.options());
  out.narrow(1, 0, t.size(1)).copy_(t);
  return out;
}

using FastInferFn = void (*)(const FastWeights&, const FastRows&, bool, int64_t, int64_t);

template <int NH, int ND>
FastInferFn fast_infer_for_d(int nd) {
  if constexpr (ND > kMaxVecD) {
    return nullptr;
  } else {
    return nd == ND ? &fast_infer_rows<NH, ND> : fast_infer_for_d<NH, ND + 1>(nd);
  }
}

template <int NH>
FastInferFn fast_infer_for(int nh, int nd) {
  if constexpr (NH > kMaxVecH) {
    return nullptr;
  } else {
    return nh == NH ? fast_infer_for_d<NH, 1>(nd) : fast_infer_for<NH + 1>(nh, nd);
  }
}

// The specialised kernel for hidden width H and memory width D, or nullptr.
FastInferFn fast_infer_kernel(int64_t H, int64_t D) {
  if (!cpu_has_avx2_fma() || H < 1 || D < 1 || H > 8 * kMaxVecH || D > 8 * kMaxVecD)
    return nullptr;
  return fast_infer_for<1>(static_cast<int>((H + 7) / 8), static_cast<int>((D + 7) / 8));
}

ELM_AVX2 void fast_activation_into(const float* in, float* out, int64_t n, bool silu) {
  alignas(32) float tmp[8];
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t len = std::min<int64_t>(8, n - i);
    for (int64_t k = 0; k < 8; ++k) tmp[k] = k < len ? in[i + k] : 0.0f;
    const __m256 v = _mm256_load_ps(tmp);
    _mm256_store_ps(tmp, silu ? silu8(v) : tanh8(v));
    for (int64_t k = 0; k < len; ++k) out[i + k] = tmp[k];
  }
}

#endif  // ELM_FAST_INFER

// Whole single-unit ELM for inference, no autograd: x [B, T, N] (any strides, last axis
// contiguous) is projected by w_in [N, H] over its nonzero entries only, filtered
// (z_t = kz z_{t-1} + x_t w_in, kz [H]), shifted by b_in [H], fed to the memory step and read
// out by w_y [O, D], b_y [O]. State: z0 [B, H], m0 [B, D]. Returns y [B, T, O], z_T, m_T.
// With allow_fast, float32 models small enough for the specialised kernel take it.
std::vector<torch::Tensor> infer(const torch::Tensor& x, const torch::Tensor& w_in,
                                 const torch::Tensor& b_in, const torch::Tensor& kz,
                                 const torch::Tensor& z0, const torch::Tensor& m0,
                                 const torch::Tensor& kappa, const torch::Tensor& gain,
                                 const torch::Tensor& wqT, const torch::Tensor& woT,
                                 const torch::Tensor& bo, const torch::Tensor& w_y,
                                 const torch::Tensor& b_y, bool silu, bool allow_fast) {
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
#ifdef ELM_FAST_INFER
  const FastInferFn fast = allow_fast && x.scalar_type() == torch::kFloat
                               ? fast_infer_kernel(H, D) : nullptr;
  if (fast != nullptr) {
    const int64_t HP = (H + 7) / 8 * 8, DP = (D + 7) / 8 * 8;
    const auto w_p = padded_rows(w_in, HP), b_p = padded_rows(b_in.view({1, H}), HP);
    const auto kz_p = padded_rows(kz.view({1, H}), HP), wq_p = padded_rows(wqT, HP);
    const auto wo_p = padded_rows(woT, DP), bo_p = padded_rows(bo.view({1, D}), DP);
    const auto kappa_p = padded_rows(kappa.view({1, D}), DP);
    const auto gain_p = padded_rows(gain.view({1, D}), DP), wy_p = padded_rows(w_y, DP);
    const FastWeights weights{w_p.data_ptr<float>(), b_p.data_ptr<float>(),
                              kz_p.data_ptr<float>(), wq_p.data_ptr<float>(),
                              wo_p.data_ptr<float>(), bo_p.data_ptr<float>(),
                              kappa_p.data_ptr<float>(), gain_p.data_ptr<float>(),
                              wy_p.data_ptr<float>(), b_y.data_ptr<float>(), H, D, O};
    const FastRows rows{x.data_ptr<float>(), x.stride(0), x.stride(1), N, steps,
                        z_out.data_ptr<float>(), m_out.data_ptr<float>(), y.data_ptr<float>()};
    at::parallel_for(0, B, grain_for(8 * steps),
                     [&](int64_t lo, int64_t hi) { fast(weights, rows, silu, lo, hi); });
    return {y, z_out, m_out};
  }
#endif
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

// Whether `infer` takes the specialised kernel for float32 models of this size here.
bool fast_infer_available(int64_t H, int64_t D) {
#ifdef ELM_FAST_INFER
  return fast_infer_kernel(H, D) != nullptr;
#else
  return false;
#endif
}

// The specialised kernel's tanh (silu = false) or SiLU, elementwise on a float32 tensor, for
// tests of its accuracy.
torch::Tensor fast_activation(const torch::Tensor& v, bool silu) {
  check_cpu_contiguous(v, "fast_activation");
  TORCH_CHECK(v.scalar_type() == torch::kFloat, "fast_activation: float32 only");
  TORCH_CHECK(fast_infer_available(1, 1), "fast_activation: needs an x86-64 CPU with AVX2");
  auto out = torch::empty_like(v);
#ifdef ELM_FAST_INFER
  fast_activation_into(v.data_ptr<float>(), out.data_ptr<float>(), v.numel(), silu);
#endif
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.doc() = "ELM recurrences as plain CPU loops";
  module.def("scan_forward", &scan_forward, "memory recurrence, forward");
  module.def("scan_backward", &scan_backward, "memory recurrence, reverse-time adjoint");
  module.def("exp_filter", &exp_filter, "first-order filter along the leading axis");
  module.def("infer", &infer, "single-unit ELM inference over sparse inputs");
  module.def("fast_infer_available", &fast_infer_available,
             "whether infer has a specialised float32 kernel for hidden H, memory D");
  module.def("fast_activation", &fast_activation, "the specialised kernel's tanh or SiLU");
  module.def("project", &project, "x @ w over the nonzero entries of x, and x as CSR");
  module.def("project_grad", &project_grad, "gradient of project with respect to w");
}
