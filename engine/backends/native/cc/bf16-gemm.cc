// C = A·op(B) (+ C) for float32 rows A [m × k] and a bf16 weight B, on AVX512-BF16 (vdpbf16ps).
// op(B) = Bᵀ for B stored [n × k] (a Linear's x·Wᵀ), else B stored [k × n]. A is rounded to bf16 (round to
// nearest even, as PyTorch's bf16 autocast rounds activations); products and sums are float32. onnxruntime's CPU
// provider has no bf16 arithmetic, and widening the weight to float32 runs at float32 speed: this kernel is the
// studio's bf16 speed on CPUs that have the instructions (Cooper Lake, Sapphire Rapids, Zen 4, Zen 5).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define STUDIO_BF16_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace {

#ifdef STUDIO_BF16_X86

bool cpuHasBf16() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0xe6u) != 0xe6u) return false;  // the OS saves the zmm and mask registers
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const unsigned f = 1u << 16, dq = 1u << 17, bw = 1u << 30, vl = 1u << 31;
  if ((b & (f | dq | bw | vl)) != (f | dq | bw | vl)) return false;
  if (a < 1 || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return (a & (1u << 5)) != 0;  // AVX512_BF16
}

#define STUDIO_TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16")))

constexpr int kMr = 6;       // rows of A per micro-tile
constexpr int kPanel = 16;   // columns per zmm
constexpr int kNz = 4;       // panels per column block (64 columns)
constexpr int kPairs = 256;  // k pairs per packed block: 64 KB of B, held in L2 across every row tile

// Rows of A rounded to bf16, k2 pairs a row (an odd k gets a zero last value).
STUDIO_TARGET void convertRows(const float* a, int r0, int r1, int k, int k2, uint16_t* out) {
  for (int r = r0; r < r1; ++r) {
    const float* src = a + static_cast<size_t>(r) * k;
    uint16_t* dst = out + static_cast<size_t>(r) * k2 * 2;
    int j = 0;
    for (; j + kPanel <= k; j += kPanel) {
      __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + j));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j), reinterpret_cast<__m256i&>(h));
    }
    if (j < k) {
      const __mmask16 mask = static_cast<__mmask16>((1u << (k - j)) - 1);
      __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + j));
      _mm256_mask_storeu_epi16(dst + j, mask, reinterpret_cast<__m256i&>(h));
    }
    if (k & 1) dst[k] = 0;
  }
}

// Transposes 16 registers of 16 dwords in four shuffle stages: input column c = 4L + e (L its 128-bit lane)
// ends in register (L & 1) + 2e + 8(L >> 1), as packTransposed reads them.
STUDIO_TARGET inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 8; ++i) {
    const int a = (i & 3) + (i >> 2) * 8;
    t[2 * i] = _mm512_shuffle_i32x4(r[a], r[a + 4], 0x88);
    t[2 * i + 1] = _mm512_shuffle_i32x4(r[a], r[a + 4], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
  }
}

// Packs pairs [p0, p0 + kp) of columns [j0, j0 + nz·16) of op(B) as [pair][panel][16 columns] of bf16 pairs,
// the operand layout of vdpbf16ps; columns past n are zero. Sixteen rows' 64-byte runs are loaded whole and
// transposed in registers: a gather a pair read the same lines 16 times, and Llama-3.2-3B's eight products at
// m = 256 took 85–93 ms against 80–82 with both packs as they are now (weights cycled through 200 MB).
STUDIO_TARGET void packTransposed(const uint16_t* b, int n, int k, int j0, int nz, int p0, int kp,
                                  uint32_t* dst) {
  const int stride = nz * kPanel;
  for (int z = 0; z < nz; ++z) {
    const int col0 = j0 + z * kPanel;
    const int valid = std::max(0, std::min(kPanel, n - col0));
    uint32_t* out = dst + z * kPanel;
    for (int q = 0; q < kp; q += 16) {
      const int pairs = std::min(16, kp - q);
      const int first = 2 * (p0 + q);                      // first bf16 of the chunk in a row
      const int values = std::min(2 * pairs, k - first);   // bf16 values of the chunk inside a row
      const __mmask32 mask = values >= 32 ? 0xffffffffu : (1u << values) - 1;
      __m512i r[16];
      for (int c = 0; c < 16; ++c)
        r[c] = c < valid ? _mm512_maskz_loadu_epi16(mask, b + static_cast<size_t>(col0 + c) * k + first)
                         : _mm512_setzero_si512();
      transpose16(r);
      for (int p = 0; p < pairs; ++p)
        _mm512_storeu_si512(out + static_cast<size_t>(q + p) * stride, r[((p >> 2) & 1) + 2 * (p & 3) + 8 * (p >> 3)]);
    }
  }
}

STUDIO_TARGET void packPlain(const uint16_t* b, int n, int k, int j0, int nz, int p0, int kp, uint32_t* dst) {
  // rows kk and kk + 1 interleave by 16-bit words within each 128-bit lane, so unpacking 32 columns gives
  // columns {0–3, 8–11, 16–19, 24–27} and {4–7, …}; one two-source permute of 128-bit quarters restores the order
  const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
  const __m512i second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
  for (int p = 0; p < kp; ++p) {
    const int kk = 2 * (p0 + p);
    const uint16_t* r0 = b + static_cast<size_t>(kk) * n;
    const uint16_t* r1 = kk + 1 < k ? r0 + n : nullptr;
    uint32_t* out = dst + static_cast<size_t>(p) * nz * kPanel;
    for (int z = 0; z < nz; z += 2) {
      const int col = j0 + z * kPanel;
      const int valid = std::max(0, std::min(2 * kPanel, n - col));
      const __mmask32 mask = valid == 2 * kPanel ? 0xffffffffu : (1u << valid) - 1;
      const __m512i lo = _mm512_maskz_loadu_epi16(mask, r0 + col);
      const __m512i hi = r1 ? _mm512_maskz_loadu_epi16(mask, r1 + col) : _mm512_setzero_si512();
      const __m512i a = _mm512_unpacklo_epi16(lo, hi), c = _mm512_unpackhi_epi16(lo, hi);
      _mm512_storeu_si512(out + z * kPanel, _mm512_permutex2var_epi64(a, first, c));
      if (z + 1 < nz) _mm512_storeu_si512(out + (z + 1) * kPanel, _mm512_permutex2var_epi64(a, second, c));
    }
  }
}

// MR rows × NZ panels of C from kp pairs: A's pair broadcast, B's panel loaded, 4·MR dot products a pair.
// C = the products + src (same layout as C; none when null).
template <int MR, int NZ>
STUDIO_TARGET void micro(int kp, const uint32_t* a, int lda, const uint32_t* b, float* c, int ldc, int width,
                         const float* src) {
  __m512 acc[MR][NZ];
  for (int r = 0; r < MR; ++r)
    for (int z = 0; z < NZ; ++z) acc[r][z] = _mm512_setzero_ps();
  for (int p = 0; p < kp; ++p) {
    __m512i bv[NZ];
    for (int z = 0; z < NZ; ++z) bv[z] = _mm512_loadu_si512(b + (p * NZ + z) * kPanel);
    for (int r = 0; r < MR; ++r) {
      const __m512i av = _mm512_set1_epi32(static_cast<int>(a[static_cast<size_t>(r) * lda + p]));
      for (int z = 0; z < NZ; ++z)
        acc[r][z] = _mm512_dpbf16_ps(acc[r][z], reinterpret_cast<const __m512bh&>(av),
                                     reinterpret_cast<const __m512bh&>(bv[z]));
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* row = c + static_cast<size_t>(r) * ldc;
    const float* from = src ? src + static_cast<size_t>(r) * ldc : nullptr;
    for (int z = 0; z < NZ; ++z) {
      const int valid = std::min(kPanel, width - z * kPanel);
      if (valid <= 0) break;
      float* dst = row + z * kPanel;
      if (valid == kPanel) {
        const __m512 v = from ? _mm512_add_ps(_mm512_loadu_ps(from + z * kPanel), acc[r][z]) : acc[r][z];
        _mm512_storeu_ps(dst, v);
      } else {
        const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
        const __m512 v =
            from ? _mm512_add_ps(_mm512_maskz_loadu_ps(mask, from + z * kPanel), acc[r][z]) : acc[r][z];
        _mm512_mask_storeu_ps(dst, mask, v);
      }
    }
  }
}

using Micro = void (*)(int, const uint32_t*, int, const uint32_t*, float*, int, int, const float*);

template <int MR>
Micro microFor(int nz) {
  switch (nz) {
    case 1: return micro<MR, 1>;
    case 2: return micro<MR, 2>;
    case 3: return micro<MR, 3>;
    default: return micro<MR, 4>;
  }
}

Micro pickMicro(int mr, int nz) {
  switch (mr) {
    case 1: return microFor<1>(nz);
    case 2: return microFor<2>(nz);
    case 3: return microFor<3>(nz);
    case 4: return microFor<4>(nz);
    case 5: return microFor<5>(nz);
    default: return microFor<6>(nz);
  }
}

struct Gemm {
  bool transB;
  int m, n, k;
  const float* a;
  const uint16_t* b;
  float* c;
  // the first k block adds this (C's layout), else nothing; later blocks add C
  const float* addend;
};

constexpr size_t kPackedSize = static_cast<size_t>(kPairs) * kNz * kPanel;

// Column blocks are taken one at a time from `next`: a thread the OS preempts (the JS thread, onnxruntime's
// and V8's threads share the cores) leaves its blocks to the others instead of holding up the whole product.
STUDIO_TARGET void columnBlocks(const Gemm& g, const uint32_t* a2, int k2, std::atomic<int>& next, int blocks,
                                uint32_t* packed) {
  for (int blk = next.fetch_add(1); blk < blocks; blk = next.fetch_add(1)) {
    const int j0 = blk * kNz * kPanel;
    const int width = std::min(kNz * kPanel, g.n - j0);
    const int nz = (width + kPanel - 1) / kPanel;
    for (int p0 = 0; p0 < k2; p0 += kPairs) {
      const int kp = std::min(kPairs, k2 - p0);
      if (g.transB)
        packTransposed(g.b, g.n, g.k, j0, nz, p0, kp, packed);
      else
        packPlain(g.b, g.n, g.k, j0, nz, p0, kp, packed);
      const float* src = p0 > 0 ? g.c : g.addend;
      for (int i0 = 0; i0 < g.m; i0 += kMr) {
        const int mr = std::min(kMr, g.m - i0);
        const size_t offset = static_cast<size_t>(i0) * g.n + j0;
        pickMicro(mr, nz)(kp, a2 + static_cast<size_t>(i0) * k2 + p0, k2, packed, g.c + offset, g.n, width,
                          src ? src + offset : nullptr);
      }
    }
  }
}

// Runs f(t) for t in [0, threads), t = 0 on the calling thread; indices whose thread could not be started run
// there too.
template <typename F>
void parallel(int threads, F f) {
  std::vector<std::thread> pool;
  int started = 1;
  try {
    pool.reserve(threads - 1);
    for (; started < threads; ++started) pool.emplace_back(f, started);
  } catch (const std::exception&) {
  }
  for (int t = started; t < threads; ++t) f(t);
  f(0);
  for (auto& th : pool) th.join();
}

void run(const Gemm& g, int threads) {
  const int k2 = (g.k + 1) / 2;
  std::vector<uint32_t> a2(static_cast<size_t>(g.m) * k2);
  uint16_t* a16 = reinterpret_cast<uint16_t*>(a2.data());
  const int blocks = (g.n + kNz * kPanel - 1) / (kNz * kPanel);
  // a thread costs tens of microseconds to start: each one gets at least 16 MFLOP
  const double flops = 2.0 * g.m * g.n * g.k;
  const int t = std::max(1, std::min({threads, blocks, static_cast<int>(flops / (1 << 24))}));
  // every allocation happens here, before a thread starts: a worker never throws
  std::vector<uint32_t> packed(kPackedSize * t);
  const int rowsPer = (g.m + t - 1) / t;
  parallel(t, [&](int i) {
    convertRows(g.a, std::min(g.m, i * rowsPer), std::min(g.m, (i + 1) * rowsPer), g.k, k2, a16);
  });
  std::atomic<int> next{0};
  parallel(t, [&](int i) { columnBlocks(g, a2.data(), k2, next, blocks, packed.data() + kPackedSize * i); });
}

#endif  // STUDIO_BF16_X86

bool supported() {
#ifdef STUDIO_BF16_X86
  static const bool has = cpuHasBf16();
  return has;
#else
  return false;
#endif
}

}  // namespace

// The C interface engine/backends/native/bf16.ts calls through koffi (no Node headers needed to build).
extern "C" {

int studio_bf16_supported(void) { return supported() ? 1 : 0; }

// C [m × n] = A [m × k] · op(B) (+ addend [m × n], which may be C itself); B is [n × k] when transB, else
// [k × n], as bf16 bits. Returns 0, or -1 where the CPU lacks AVX512-BF16, -2 where the kernel's scratch could
// not be allocated.
int studio_bf16_gemm(int transB, int m, int n, int k, const float* a, const uint16_t* b, float* c,
                     const float* addend, int threads) {
  if (!supported()) return -1;
  if (m <= 0 || n <= 0) return 0;
  if (k <= 0) {
    if (addend) std::copy_n(addend, static_cast<size_t>(m) * n, c);
    else std::fill_n(c, static_cast<size_t>(m) * n, 0.0f);
    return 0;
  }
#ifdef STUDIO_BF16_X86
  try {
    run(Gemm{transB != 0, m, n, k, a, b, c, addend}, std::max(1, threads));
  } catch (const std::bad_alloc&) {
    return -2;
  }
#endif
  return 0;
}

}  // extern "C"
