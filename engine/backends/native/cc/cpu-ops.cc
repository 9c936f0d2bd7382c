// The native backend's elementwise and row kernels in C++: activations and their gradients, norms, RoPE,
// softmax, attention's score passes, AdamW and broadcast arithmetic, on a small persistent thread pool. In JS
// these were single-threaded loops (150–450 M elements/s) or onnxruntime sessions (a session run a call); a 3B
// model's LoRA step spent 5 s in them beside 9 s of frozen products (bench). Built per machine with
// -march=native by cpu-ops.ts, so the plain loops below vectorise to whatever the CPU has; the transcendental
// functions are written branch-free for that reason (libm's are scalar calls).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace {

// ---- thread pool ---------------------------------------------------------------------------------------

// Workers sleep on a condition variable between calls (never spin: onnxruntime's threads and the JS thread
// share the cores); the calling thread takes parts too.
class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) {
      try {
        workers_.emplace_back([this] { loop(); });
      } catch (const std::exception&) {
        break;
      }
    }
  }
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void run(int parts, const std::function<void(int)>& f) {
    if (parts <= 1 || workers_.empty()) {
      for (int i = 0; i < parts; ++i) f(i);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &f;
      parts_ = parts;
      next_.store(0);
      pending_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    work(f, parts);
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void work(const std::function<void(int)>& f, int parts) {
    for (int i = next_.fetch_add(1); i < parts; i = next_.fetch_add(1)) f(i);
  }
  void loop() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      const std::function<void(int)>* job = job_;
      const int parts = parts_;
      lock.unlock();
      work(*job, parts);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  int parts_ = 0;
  std::atomic<int> next_{0};
  int pending_ = 0;
  uint64_t generation_ = 0;
};

Pool* pool = nullptr;  // made once by studio_ops_init and never freed: workers live as long as the process

// f(begin, end) over [0, n) in parts of at least `grain` items, up to four a thread: threads take parts as they
// finish, so one the OS preempts (the cores are shared with the JS thread, onnxruntime's and V8's) holds up a
// call by a part, not by half of it.
void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  if (n <= 0) return;
  const int threads = pool ? pool->size() : 1;
  const int64_t most = threads > 1 ? 4 * threads : 1;
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(most, n / std::max<int64_t>(1, grain))));
  if (parts == 1) {
    f(0, n);
    return;
  }
  const int64_t per = (n + parts - 1) / parts;
  pool->run(parts, [&](int i) {
    const int64_t b = i * per, e = std::min(n, b + per);
    if (b < e) f(b, e);
  });
}

constexpr int64_t kElementGrain = 1 << 15;

// ---- branch-free transcendentals (so loops over them vectorise) ----------------------------------------

inline float bitsToFloat(int32_t i) { return __builtin_bit_cast(float, i); }

// Cephes expf: 2^n · e^r with |r| ≤ ln2/2 (n = x/ln2 rounded), a degree-6 polynomial (about 1 ulp). Below the
// smallest normal result it is 0 and above the largest float it is +∞, as float32 rounding of e^x would give
// (denormal results are flushed); NaN stays NaN.
inline float expApprox(float in) {
  float x = in < -87.33654f ? -87.33654f : in;
  x = x > 88.72283f ? 88.72283f : x;
  // round to nearest by the 1.5·2^23 trick: floor followed by a conversion to int does not vectorise in GCC 12
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = std::fma(n, -0.693359375f, x);
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p, r * r, r) + 1.0f;
  // 2^128 (n at the top of the range) is not a float: scale by 2^127, then 2
  const float top = n > 127.0f ? 127.0f : n;
  float y = p * bitsToFloat((static_cast<int32_t>(top) + 127) << 23);
  y = n > 127.0f ? y * 2.0f : y;
  return in < -87.33654f ? 0.0f : in > 88.72283f ? INFINITY : y;
}

inline float sigmoidApprox(float x) { return 1.0f / (1.0f + expApprox(-x)); }

// Cephes tanhf: an odd polynomial below 0.625 (where 1 − 2/(e^2x + 1) loses digits), that form above.
inline float tanhApprox(float x) {
  const float ax = std::fabs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = std::fma(p, z, 2.06390887954e-2f);
  p = std::fma(p, z, -5.37397155531e-2f);
  p = std::fma(p, z, 1.33314422036e-1f);
  p = std::fma(p, z, -3.33332819422e-1f);
  const float small = std::fma(p * z, x, x);
  const float big = 1.0f - 2.0f / (expApprox(2.0f * ax) + 1.0f);
  return ax < 0.625f ? small : std::copysign(big, x);
}

// Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7), tfjs's and the JS route's own erf.
inline float erfApprox(float x) {
  const float v = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * v);
  const float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  return std::copysign(1.0f - poly * expApprox(-v * v), x);
}

// ---- activations ---------------------------------------------------------------------------------------

enum Act { kSilu = 0, kGelu = 1, kGeluTanh = 2 };
enum Form { kValue = 0, kGrad = 1, kGated = 2, kGatedOfGate = 3, kGatedOfUp = 4 };

struct FDf {
  float f, df;
};

template <int A>
inline FDf activate(float x) {
  if (A == kSilu) {
    const float t = sigmoidApprox(x);
    return {x * t, t * (1.0f + x * (1.0f - t))};
  } else if (A == kGelu) {
    const float t = erfApprox(x * 0.7071067811865476f);
    return {0.5f * x * (1.0f + t), 0.5f * (1.0f + t) + x * 0.3989422804014327f * expApprox(-0.5f * x * x)};
  } else {
    const float c = 0.7978845608028654f;
    const float t = tanhApprox((x + 0.044715f * x * x * x) * c);
    return {0.5f * x * (1.0f + t), 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 0.134145f * x * x)};
  }
}

template <int A, int F>
void activationLoop(int64_t b, int64_t e, const float* __restrict x, const float* __restrict u,
                    const float* __restrict dy, float* __restrict o) {
#pragma omp simd
  for (int64_t i = b; i < e; ++i) {
    const FDf a = activate<A>(x[i]);
    if (F == kValue) o[i] = a.f;
    if (F == kGrad) o[i] = dy[i] * a.df;
    if (F == kGated) o[i] = a.f * u[i];
    if (F == kGatedOfGate) o[i] = dy[i] * u[i] * a.df;
    if (F == kGatedOfUp) o[i] = dy[i] * a.f;
  }
}

template <int A>
void activationForms(int form, int64_t b, int64_t e, const float* x, const float* u, const float* dy, float* o) {
  switch (form) {
    case kValue: return activationLoop<A, kValue>(b, e, x, u, dy, o);
    case kGrad: return activationLoop<A, kGrad>(b, e, x, u, dy, o);
    case kGated: return activationLoop<A, kGated>(b, e, x, u, dy, o);
    case kGatedOfGate: return activationLoop<A, kGatedOfGate>(b, e, x, u, dy, o);
    default: return activationLoop<A, kGatedOfUp>(b, e, x, u, dy, o);
  }
}

// ---- softmax -------------------------------------------------------------------------------------------

// y = softmax of x's row (y may be x); returns the row's log-sum-exp.
float softmaxRow(const float* x, float* y, int64_t n, bool log) {
  float max = -INFINITY;
#pragma omp simd reduction(max : max)
  for (int64_t j = 0; j < n; ++j) max = x[j] > max ? x[j] : max;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    const float v = expApprox(x[j] - max);
    if (!log) y[j] = v;
    sum += v;
  }
  const float lse = max + std::log(sum);
  if (log) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] = x[j] - lse;
  } else {
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] *= inv;
  }
  return lse;
}

int64_t rowGrain(int64_t cols) { return std::max<int64_t>(1, kElementGrain / std::max<int64_t>(1, cols)); }

template <typename Op>
void binaryLoop(int64_t n, const float* __restrict a, int64_t sa, const float* __restrict b, int64_t sb,
                float* y, Op op) {
  if (sa && sb) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = op(a[i], b[i]);
  } else if (sa) {
    const float bv = b[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = op(a[i], bv);
  } else if (sb) {
    const float av = a[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = op(av, b[i]);
  } else {
    const float v = op(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) y[i] = v;
  }
}

template <typename Op>
void binaryOp(const float* a, const int64_t (&ad)[3], const float* b, const int64_t (&bd)[3], float* y, Op op) {
  int64_t d[3];
  for (int i = 0; i < 3; ++i) d[i] = std::max(ad[i], bd[i]);
  const bool same = ad[0] == bd[0] && ad[1] == bd[1] && ad[2] == bd[2];
  if (same) {
    parallelFor(d[0] * d[1] * d[2], kElementGrain, [&](int64_t s, int64_t e) {
      binaryLoop(e - s, a + s, 1, b + s, 1, y + s, op);
    });
    return;
  }
  // rows of the innermost axis, each operand's row either walking or one repeated value
  const int64_t rows = d[0] * d[1];
  parallelFor(rows, rowGrain(d[2]), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const int64_t i = r / d[1], j = r % d[1];
      const int64_t ao = ((ad[0] == 1 ? 0 : i) * ad[1] + (ad[1] == 1 ? 0 : j)) * ad[2];
      const int64_t bo = ((bd[0] == 1 ? 0 : i) * bd[1] + (bd[1] == 1 ? 0 : j)) * bd[2];
      binaryLoop(d[2], a + ao, ad[2] == 1 ? 0 : 1, b + bo, bd[2] == 1 ? 0 : 1, y + r * d[2], op);
    }
  });
}

// ---- float32 products with a small dimension --------------------------------------------------------

// LoRA's products have one dimension of r (16–64): x·Aᵀ, h·Bᵀ and their gradients. MLAS ran them at 50–90
// GFLOP/s through onnxruntime sessions (about 0.75 s of a 3B step at 1 × 256); a broadcast-FMA tile on a packed
// panel runs them at several times that. The vector type lowers to zmm, ymm or xmm as -march=native allows.
typedef float V16 __attribute__((vector_size(64)));
constexpr int kLanes = 16;
constexpr int64_t kKc = 512;  // k per pass: a 64-column panel of 128 KB stays in L2 across the row tiles

inline V16 load16(const float* p) {
  V16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// C [MR × width] (+)= Â · B̂ over kc: Â(i, l) = a[i·ars + l·acs]; row l of B̂ is NZ·16 floats at b + l·ldb.
template <int MR, int NZ>
void sgemmTile(int64_t kc, const float* a, int64_t ars, int64_t acs, const float* b, int64_t ldb, float* c,
               int64_t ldc, int width, bool add) {
  V16 acc[MR][NZ];
  for (int r = 0; r < MR; ++r)
    for (int z = 0; z < NZ; ++z) acc[r][z] = V16{};
  for (int64_t l = 0; l < kc; ++l) {
    V16 bv[NZ];
    for (int z = 0; z < NZ; ++z) bv[z] = load16(b + l * ldb + z * kLanes);
    for (int r = 0; r < MR; ++r) {
      const float s = a[r * ars + l * acs];
      for (int z = 0; z < NZ; ++z) acc[r][z] += bv[z] * s;
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* row = c + r * ldc;
    for (int z = 0; z < NZ; ++z) {
      const int cols = std::min(kLanes, width - z * kLanes);
      if (cols <= 0) break;
      float* dst = row + z * kLanes;
      if (cols == kLanes) {
        const V16 v = add ? load16(dst) + acc[r][z] : acc[r][z];
        std::memcpy(dst, &v, sizeof v);
      } else {
        for (int q = 0; q < cols; ++q) dst[q] = (add ? dst[q] : 0.0f) + acc[r][z][q];
      }
    }
  }
}

using SgemmTile = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, int,
                           bool);

template <int NZ, int... R>
SgemmTile tileFor(int mr, std::integer_sequence<int, R...>) {
  SgemmTile tiles[] = {sgemmTile<R + 1, NZ>...};
  return tiles[mr - 1];
}

// Rows a tile: more when the panel is one vector wide (MR accumulators, MR + 1 loads a k step).
constexpr int tileRows(int nz) { return nz == 1 ? 12 : 6; }

SgemmTile pickTile(int nz, int mr) {
  switch (nz) {
    case 1: return tileFor<1>(mr, std::make_integer_sequence<int, tileRows(1)>{});
    case 2: return tileFor<2>(mr, std::make_integer_sequence<int, tileRows(2)>{});
    case 3: return tileFor<3>(mr, std::make_integer_sequence<int, tileRows(3)>{});
    default: return tileFor<4>(mr, std::make_integer_sequence<int, tileRows(4)>{});
  }
}

// c [m × n] = op(a) · op(b): op(a) [m × k] (a stored [k × m] when ta), op(b) [k × n] (b stored [n × k] when tb).
void sgemmSmall(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
  const int nz = static_cast<int>(std::min<int64_t>(4, (n + kLanes - 1) / kLanes));
  const int64_t nb = nz * kLanes;
  const int64_t blocks = (n + nb - 1) / nb;
  const int mr = tileRows(nz);
  const int64_t ars = ta ? 1 : k, acs = ta ? m : 1;
  // B̂ [k × nb] per column block: b itself where it is stored [k × n] and the block is whole, else a copy
  // (transposed, zero past n); every allocation happens before the threads start
  const bool direct = !tb;
  const int64_t copies = direct ? (n % nb != 0 ? 1 : 0) : blocks;
  std::vector<float> packed(static_cast<size_t>(copies * k * nb));
  for (int64_t blk = blocks - copies; blk < blocks; ++blk) {
    float* dst = packed.data() + (blk - (blocks - copies)) * k * nb;
    const int64_t j0 = blk * nb, cols = std::min(nb, n - j0);
    for (int64_t q = 0; q < cols; ++q) {
      const int64_t j = j0 + q;
      if (tb)
        for (int64_t l = 0; l < k; ++l) dst[l * nb + q] = b[j * k + l];
      else
        for (int64_t l = 0; l < k; ++l) dst[l * nb + q] = b[l * n + j];
    }
  }
  const int64_t groupRows = 4 * mr;
  const int64_t groups = (m + groupRows - 1) / groupRows;
  // a part a thread takes is at least 32 MFLOP: in a training step x·Aᵀ at 256 × 3072 × 16 (25 MFLOP) took
  // 0.47–0.57 ms split over two threads and 0.19–0.20 on one (bench/shapes, 3B)
  const double flops = 2.0 * m * n * k;
  parallelFor(groups * blocks, std::max<int64_t>(1, static_cast<int64_t>(groups * blocks * (1 << 25) / flops)),
              [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t blk = item % blocks, i1 = std::min(m, (item / blocks + 1) * groupRows);
      const int64_t j0 = blk * nb;
      const int width = static_cast<int>(std::min(nb, n - j0));
      const bool copied = blk >= blocks - copies;
      for (int64_t p0 = 0; p0 < k; p0 += kKc) {
        const int64_t kc = std::min(kKc, k - p0);
        const float* panel = copied ? packed.data() + ((blk - (blocks - copies)) * k + p0) * nb : b + p0 * n + j0;
        const int64_t ldb = copied ? nb : n;
        for (int64_t i0 = (item / blocks) * groupRows; i0 < i1; i0 += mr) {
          const int rows = static_cast<int>(std::min<int64_t>(mr, i1 - i0));
          pickTile(nz, rows)(kc, a + i0 * ars + p0 * acs, ars, acs, panel, ldb, c + i0 * n + j0, n, width, p0 > 0);
        }
      }
    }
  });
}

}  // namespace

// The C interface engine/backends/native/cpu-ops.ts calls through koffi. Sizes are int64; arrays are float32
// unless named otherwise. Outputs may alias the first input where cpu-ops.ts says so.
extern "C" {

int studio_ops_init(int threads) {
  if (!pool) pool = new Pool(std::max(1, threads));
  return pool->size();
}

// op: 0 Exp, 1 Tanh, 2 Sigmoid, 3 Erf.
void studio_unary(int op, int64_t n, const float* x, float* y) {
  parallelFor(n, kElementGrain, [&](int64_t b, int64_t e) {
    switch (op) {
      case 0:
#pragma omp simd
        for (int64_t i = b; i < e; ++i) y[i] = expApprox(x[i]);
        break;
      case 1:
#pragma omp simd
        for (int64_t i = b; i < e; ++i) y[i] = tanhApprox(x[i]);
        break;
      case 2:
#pragma omp simd
        for (int64_t i = b; i < e; ++i) y[i] = sigmoidApprox(x[i]);
        break;
      default:
#pragma omp simd
        for (int64_t i = b; i < e; ++i) y[i] = erfApprox(x[i]);
    }
  });
}

// act: 0 silu, 1 gelu (erf), 2 gelu_tanh; form: 0 f(x), 1 dy·f′(x), 2 f(x)·u, 3 dy·u·f′(x), 4 dy·f(x).
void studio_activation(int act, int form, int64_t n, const float* x, const float* u, const float* dy, float* o) {
  parallelFor(n, kElementGrain, [&](int64_t b, int64_t e) {
    if (act == kSilu) activationForms<kSilu>(form, b, e, x, u, dy, o);
    else if (act == kGelu) activationForms<kGelu>(form, b, e, x, u, dy, o);
    else activationForms<kGeluTanh>(form, b, e, x, u, dy, o);
  });
}

// y = a ∘ b over rank-3 shapes with numpy broadcasting (a dimension of 1 repeats); op: 0 Add, 1 Sub, 2 Mul, 3 Div.
void studio_binary(int op, const float* a, int64_t a0, int64_t a1, int64_t a2, const float* b, int64_t b0, int64_t b1,
                   int64_t b2, float* y) {
  const int64_t aDims[3] = {a0, a1, a2}, bDims[3] = {b0, b1, b2};
  switch (op) {
    case 0: return binaryOp(a, aDims, b, bDims, y, [](float p, float q) { return p + q; });
    case 1: return binaryOp(a, aDims, b, bDims, y, [](float p, float q) { return p - q; });
    case 2: return binaryOp(a, aDims, b, bDims, y, [](float p, float q) { return p * q; });
    default: return binaryOp(a, aDims, b, bDims, y, [](float p, float q) { return p / q; });
  }
}

// Softmax (log = 0) or log-softmax (log = 1) of each row; y may be x; lse (nullable) gets each row's log-sum-exp.
void studio_softmax(int log, int64_t rows, int64_t cols, const float* x, float* y, float* lse) {
  parallelFor(rows, rowGrain(cols), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float l = softmaxRow(x + r * cols, y + r * cols, cols, log != 0);
      if (lse) lse[r] = l;
    }
  });
}

// LayerNorm (layer = 1, with bias b) or RMSNorm (layer = 0, b unused) of each row of d values.
void studio_norm(int layer, int64_t rows, int64_t d, const float* x, const float* w, const float* bias, float eps,
                 float* y, float* mean, float* rstd) {
  parallelFor(rows, rowGrain(d), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * d;
      float* yr = y + r * d;
      double mu = 0.0;
      if (layer) {
#pragma omp simd reduction(+ : mu)
        for (int64_t j = 0; j < d; ++j) mu += xr[j];
        mu /= static_cast<double>(d);
      }
      const float m = static_cast<float>(mu);
      double ss = 0.0;
#pragma omp simd reduction(+ : ss)
      for (int64_t j = 0; j < d; ++j) {
        const double c = static_cast<double>(xr[j]) - mu;
        ss += c * c;
      }
      const float rs = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
      if (layer) {
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - m) * rs * w[j] + bias[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) yr[j] = xr[j] * rs * w[j];
      }
      mean[r] = m;
      rstd[r] = rs;
    }
  });
}

// g = dy·w, x̂ = (x − mean)·rstd: dx = (g − mean(g) − x̂·mean(g·x̂))·rstd, without the mean(g) term for RMSNorm.
void studio_norm_grad(int layer, int64_t rows, int64_t d, const float* x, const float* dy, const float* w,
                      const float* mean, const float* rstd, float* dx) {
  parallelFor(rows, rowGrain(d), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * d;
      const float* gr = dy + r * d;
      float* out = dx + r * d;
      const float mu = mean[r], rs = rstd[r];
      double sg = 0.0, sgx = 0.0;
#pragma omp simd reduction(+ : sg, sgx)
      for (int64_t j = 0; j < d; ++j) {
        const float g = gr[j] * w[j];
        sg += g;
        sgx += static_cast<double>(g) * ((xr[j] - mu) * rs);
      }
      const float mg = layer ? static_cast<float>(sg / static_cast<double>(d)) : 0.0f;
      const float mgx = static_cast<float>(sgx / static_cast<double>(d));
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) out[j] = (gr[j] * w[j] - mg - (xr[j] - mu) * rs * mgx) * rs;
    }
  });
}

// y = x·cos + rotate_half(x)·sin over x [batch, heads, length, dim], cos/sin [batch, length, dim]; transpose
// applies the adjoint (the backward pass).
void studio_rope(int transpose, int64_t batch, int64_t heads, int64_t length, int64_t dim, const float* x,
                 const float* cos, const float* sin, float* y) {
  const int64_t half = dim / 2;
  parallelFor(batch * heads * length, rowGrain(dim), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t t = row % length, bi = row / (heads * length);
      const float* xr = x + row * dim;
      float* yr = y + row * dim;
      const float* c = cos + (bi * length + t) * dim;
      const float* s = sin + (bi * length + t) * dim;
      if (transpose) {
#pragma omp simd
        for (int64_t j = 0; j < half; ++j) {
          yr[j] = xr[j] * c[j] + xr[j + half] * s[j + half];
          yr[j + half] = xr[j + half] * c[j + half] - xr[j] * s[j];
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < half; ++j) {
          yr[j] = xr[j] * c[j] - xr[j + half] * s[j];
          yr[j + half] = xr[j + half] * c[j + half] + xr[j] * s[j + half];
        }
      }
    }
  });
}

// One AdamW update into p2, m2, v2 (decay = 1 − lr·weightDecay, stepSize = lr / (1 − β1^t)).
void studio_adamw(int64_t n, const float* p, const float* g, const float* m, const float* v, float* p2, float* m2,
                  float* v2, float beta1, float beta2, float eps, float decay, float stepSize, float bias2Sqrt,
                  float gradScale) {
  parallelFor(n, kElementGrain, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      const float gi = g[i] * gradScale;
      const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
      const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
      m2[i] = mi;
      v2[i] = vi;
      p2[i] = p[i] * decay - (stepSize * mi) / (std::sqrt(vi) / bias2Sqrt + eps);
    }
  });
}

// Attention scores of groups [g0, g0 + count) (m query rows of tk keys each) into probabilities, in place:
// v = s·scale + bias. Forward (lseIn null): softmax rows, each row's log-sum-exp to lseOut[g0·m + row].
// Backward: exp(v − lseIn[g0·m + row]). The bias row is the batch's, per query row when biasQ.
void studio_attention_probs(int64_t count, int64_t m, int64_t tk, int64_t tq, int64_t kvHeads, int64_t g0, int biasQ,
                            float* s, const float* bias, float scale, const float* lseIn, float* lseOut) {
  parallelFor(count * m, rowGrain(tk), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t gi = row / m, r = row % m;
      const int64_t batch = (g0 + gi) / kvHeads;
      const float* br = bias + (batch * (biasQ ? tq : 1) + (biasQ ? r % tq : 0)) * tk;
      float* sr = s + row * tk;
      if (lseIn) {
        const float shift = lseIn[g0 * m + row];
#pragma omp simd
        for (int64_t j = 0; j < tk; ++j) sr[j] = expApprox(sr[j] * scale + br[j] - shift);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < tk; ++j) sr[j] = sr[j] * scale + br[j];
        lseOut[g0 * m + row] = softmaxRow(sr, sr, tk, false);
      }
    }
  });
}

// ds = p ∘ (ds − rowsum(dO ∘ O))·scale for rows of tk scores, dO and O rows of d values.
void studio_attention_dscores(int64_t rows, int64_t tk, int64_t d, const float* p, float* ds, const float* dO,
                              const float* o, float scale) {
  parallelFor(rows, rowGrain(tk + d), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      float dot = 0.0f;
      const float* dr = dO + row * d;
      const float* orow = o + row * d;
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j < d; ++j) dot += dr[j] * orow[j];
      const float* pr = p + row * tk;
      float* sr = ds + row * tk;
#pragma omp simd
      for (int64_t j = 0; j < tk; ++j) sr[j] = pr[j] * (sr[j] - dot) * scale;
    }
  });
}

// Σ x², summed in float64 (a gradient's squared norm).
double studio_squared_sum(int64_t n, const float* x) {
  // one part a thread at most, and none for an array too small to pay for waking a thread (most of a LoRA's)
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(pool ? pool->size() : 1, n / kElementGrain)));
  std::vector<double> partial(parts, 0.0);
  const int64_t per = (n + parts - 1) / parts;
  parallelFor(parts, 1, [&](int64_t b, int64_t e) {
    for (int64_t part = b; part < e; ++part) {
      double sum = 0.0;
      const int64_t i1 = std::min(n, (part + 1) * per);
#pragma omp simd reduction(+ : sum)
      for (int64_t i = part * per; i < i1; ++i) sum += static_cast<double>(x[i]) * x[i];
      partial[part] = sum;
    }
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

// c [m × n] = op(a) · op(b) for products with a small dimension (see sgemmSmall); ta: a stored [k × m], tb: b
// stored [n × k].
void studio_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    std::fill_n(c, m * n, 0.0f);
    return;
  }
  sgemmSmall(ta != 0, tb != 0, m, n, k, a, b, c);
}

}  // extern "C"
