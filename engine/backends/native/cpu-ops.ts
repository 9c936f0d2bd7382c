import { type KoffiLib, koffi, nativeThreads } from '../native-libs.ts';
import type { NativeBinaryOp, NativeUnaryOp } from '../types.ts';
import { compileNative, kernelSource, probedOnce } from './compile.ts';

/**
 * The native backend's elementwise and row kernels compiled for this CPU (cc/cpu-ops.cc): activations and
 * their gradients, norms, RoPE, softmax, attention's score passes, AdamW and broadcast arithmetic, vectorised and
 * threaded. Without them these run as single-threaded JS loops or onnxruntime sessions. Llama-3.2-3B's LoRA
 * step at 1 × 256 spent 5.2 s there beside 8.7 s of frozen products (bench/shapes, 2-core Zen 5).
 *
 * Where no C++ compiler builds them, or `STUDIO_CPU_OPS=off`, `cpuOps()` is null and the JS routes run.
 */

export type CpuActivation = 'silu' | 'gelu' | 'gelu_tanh';
/** f(x), dy·f′(x), f(x)·u, dy·u·f′(x), dy·f(x): an activation, its gradient, and a gated unit's three. */
export type CpuActivationForm = 'value' | 'grad' | 'gated' | 'gatedOfGate' | 'gatedOfUp';

type F32 = Float32Array;

export interface AdamWArrays {
  p: F32;
  g: F32;
  m: F32;
  v: F32;
  p2: F32;
  m2: F32;
  v2: F32;
}

export interface CpuOps {
  library: string;
  threads: number;
  /** y = f(x), equal lengths; y may be x. */
  unary(op: NativeUnaryOp, x: F32, y: F32): void;
  /** o = the form of `act` over x (u the gated unit's up values, dy the incoming gradient, where the form reads them). */
  activationForm(
    act: CpuActivation,
    form: CpuActivationForm,
    x: F32,
    u: F32 | null,
    dy: F32 | null,
    o: F32,
  ): void;
  /** y = a ∘ b with numpy broadcasting over rank-3 shapes; y may be a. */
  binary(op: NativeBinaryOp, a: F32, aDims: number[], b: F32, bDims: number[], y: F32): void;
  /** Softmax of each row (y may be x); each row's log-sum-exp into `lse` when given. */
  softmax(x: F32, y: F32, rows: number, cols: number, lse?: F32 | null): void;
  logSoftmax(x: F32, y: F32, rows: number, cols: number): void;
  /** LayerNorm (with `bias`) or RMSNorm (bias null) of each row, with each row's mean and 1/σ. */
  norm(
    rows: number,
    d: number,
    x: F32,
    w: F32,
    bias: F32 | null,
    eps: number,
    y: F32,
    mean: F32,
    rstd: F32,
  ): void;
  normGrad(
    layer: boolean,
    rows: number,
    d: number,
    x: F32,
    dy: F32,
    w: F32,
    mean: F32,
    rstd: F32,
    dx: F32,
  ): void;
  /** x [batch, heads, length, dim]; cos and sin [batch, length, dim]; `transpose` for the backward pass. */
  rope(transpose: boolean, shape: number[], x: F32, cos: F32, sin: F32, y: F32): void;
  adamw(
    arrays: AdamWArrays,
    step: {
      beta1: number;
      beta2: number;
      eps: number;
      decay: number;
      stepSize: number;
      bias2Sqrt: number;
      gradScale: number;
    },
  ): void;
  /** Σ x², summed in float64. */
  squaredSum(x: F32): number;
  /** cc/cpu-ops.cc `studio_attention_probs`: scores to probabilities in place, forward (lseOut) or backward (lseIn). */
  attentionProbs(
    geometry: {
      count: number;
      m: number;
      tk: number;
      tq: number;
      kvHeads: number;
      g0: number;
      biasQ: boolean;
    },
    s: F32,
    bias: F32,
    scale: number,
    lseIn: F32 | null,
    lseOut: F32 | null,
  ): void;
  /**
   * c [m × n] = op(a)·op(b), a stored [k × m] when `transA`, b stored [n × k] when `transB`: tuned for products
   * with a small dimension (LoRA's rank), see `smallProduct`.
   */
  sgemm(transA: boolean, transB: boolean, m: number, n: number, k: number, a: F32, b: F32, c: F32): void;
  /** ds = p ∘ (ds − rowsum(dO ∘ O))·scale. */
  attentionDScores(
    rows: number,
    tk: number,
    d: number,
    p: F32,
    ds: F32,
    dO: F32,
    o: F32,
    scale: number,
  ): void;
}

export interface CpuOpsStatus {
  ops: CpuOps | null;
  /** Why they are used or not, for the backend report. */
  reason: string;
}

const UNARY: Record<NativeUnaryOp, number> = { Exp: 0, Tanh: 1, Sigmoid: 2, Erf: 3 };
const BINARY: Record<NativeBinaryOp, number> = { Add: 0, Sub: 1, Mul: 2, Div: 3 };
const ACTIVATION: Record<CpuActivation, number> = { silu: 0, gelu: 1, gelu_tanh: 2 };
const FORM: Record<CpuActivationForm, number> = { value: 0, grad: 1, gated: 2, gatedOfGate: 3, gatedOfUp: 4 };

const probed = probedOnce(probe);

/** The compiled kernels, or null (see `cpuOpsStatus().reason`); built on first call. */
export function cpuOps(): CpuOps | null {
  return probed.status().ops;
}

export function cpuOpsStatus(): CpuOpsStatus {
  return probed.status();
}

/** Turns the kernels off (false: tests of the JS routes) or back to following `STUDIO_CPU_OPS` (null). */
export function setCpuOps(on: false | null): void {
  probed.set(on);
}

function probe(enabled: false | null): CpuOpsStatus {
  const off = (reason: string): CpuOpsStatus => ({ ops: null, reason });
  if (enabled === false) return off('turned off: JS and onnxruntime routes');
  if (process.env.STUDIO_CPU_OPS === 'off') return off('turned off by STUDIO_CPU_OPS=off');
  // -march=native: built on and for this CPU (keyed by it in the cache); -fopenmp-simd for the simd pragmas
  const built = compileNative(kernelSource('cpu-ops.cc'), {
    preferredFlags: ['-march=native', '-fno-math-errno', '-fopenmp-simd'],
    perCpu: true,
  });
  if ('error' in built) return off(built.error);
  let lib: KoffiLib;
  try {
    lib = koffi().load(built.path);
  } catch (error) {
    return off(`could not load ${built.path}: ${(error as Error).message.split('\n')[0]}`);
  }
  const threads = lib.func('int studio_ops_init(int)')(nativeThreads()) as number;
  const fn = (signature: string) => lib.func(signature);
  const unary = fn('void studio_unary(int, int64_t, const float *, float *)');
  const activation = fn(
    'void studio_activation(int, int, int64_t, const float *, const float *, const float *, float *)',
  );
  const binary = fn(
    'void studio_binary(int, const float *, int64_t, int64_t, int64_t, const float *, int64_t, int64_t, int64_t, float *)',
  );
  const softmax = fn('void studio_softmax(int, int64_t, int64_t, const float *, float *, float *)');
  const norm = fn(
    'void studio_norm(int, int64_t, int64_t, const float *, const float *, const float *, float, float *, float *, float *)',
  );
  const normGrad = fn(
    'void studio_norm_grad(int, int64_t, int64_t, const float *, const float *, const float *, const float *, const float *, float *)',
  );
  const rope = fn(
    'void studio_rope(int, int64_t, int64_t, int64_t, int64_t, const float *, const float *, const float *, float *)',
  );
  const adamw = fn(
    'void studio_adamw(int64_t, const float *, const float *, const float *, const float *, float *, float *, float *, float, float, float, float, float, float, float)',
  );
  const probs = fn(
    'void studio_attention_probs(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, float *, const float *, float, const float *, float *)',
  );
  const dscores = fn(
    'void studio_attention_dscores(int64_t, int64_t, int64_t, const float *, float *, const float *, const float *, float)',
  );
  const squaredSum = fn('double studio_squared_sum(int64_t, const float *)');
  const sgemm = fn(
    'void studio_sgemm(int, int, int64_t, int64_t, int64_t, const float *, const float *, float *)',
  );
  const ops: CpuOps = {
    library: built.path,
    threads,
    unary: (op, x, y) => unary(UNARY[op], x.length, x, y),
    activationForm: (act, form, x, u, dy, o) => {
      const a = ACTIVATION[act];
      if (a === undefined) throw new Error(`no compiled activation "${act}"`);
      activation(a, FORM[form], x.length, x, u, dy, o);
    },
    binary: (op, a, aDims, b, bDims, y) =>
      binary(BINARY[op], a, aDims[0], aDims[1], aDims[2], b, bDims[0], bDims[1], bDims[2], y),
    softmax: (x, y, rows, cols, lse = null) => softmax(0, rows, cols, x, y, lse),
    logSoftmax: (x, y, rows, cols) => softmax(1, rows, cols, x, y, null),
    norm: (rows, d, x, w, bias, eps, y, mean, rstd) =>
      norm(bias ? 1 : 0, rows, d, x, w, bias, eps, y, mean, rstd),
    normGrad: (layer, rows, d, x, dy, w, mean, rstd, dx) =>
      normGrad(layer ? 1 : 0, rows, d, x, dy, w, mean, rstd, dx),
    rope: (transpose, [batch, heads, length, dim], x, cos, sin, y) =>
      rope(transpose ? 1 : 0, batch, heads, length, dim, x, cos, sin, y),
    adamw: ({ p, g, m, v, p2, m2, v2 }, s) =>
      adamw(
        p.length,
        p,
        g,
        m,
        v,
        p2,
        m2,
        v2,
        s.beta1,
        s.beta2,
        s.eps,
        s.decay,
        s.stepSize,
        s.bias2Sqrt,
        s.gradScale,
      ),
    squaredSum: (x) => squaredSum(x.length, x) as number,
    attentionProbs: (g, s, bias, scale, lseIn, lseOut) =>
      probs(g.count, g.m, g.tk, g.tq, g.kvHeads, g.g0, g.biasQ ? 1 : 0, s, bias, scale, lseIn, lseOut),
    attentionDScores: (rows, tk, d, p, ds, dO, o, scale) => dscores(rows, tk, d, p, ds, dO, o, scale),
    sgemm: (transA, transB, m, n, k, a, b, c) => sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, b, c),
  };
  return { ops, reason: `compiled CPU kernels (${built.path}, ${threads} threads)` };
}
