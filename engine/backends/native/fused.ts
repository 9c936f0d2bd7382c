import * as tf from '@tensorflow/tfjs-core';
import type { AdamWStep } from '../fused.ts';
import { installFusedOps } from '../fused-kernels.ts';
import type { NativeActivationOp, NativeUnaryOp } from '../types.ts';
import { NATIVE_BACKEND, type NativeBackend } from './backend.ts';
import { type CpuActivation, type CpuActivationForm, cpuOps } from './cpu-ops.ts';
import { broadcastRows, fusedLimits, library, softmaxRows, unary } from './library.ts';

/**
 * The native backend's fused kernels (names and contracts in ../fused-kernels.ts). Composed, a step's norms,
 * activations, attention softmax, loss and AdamW update were ten to twenty passes over each tensor through
 * separate tfjs kernels, each allocating its output: a GPT-2 step spent more time there (Multiply, Add, Sub,
 * Exp, Square, Sum) than in its GEMMs outside the frozen products. Here each is one or two JS loops, the
 * transcendental functions run on the native library's vectorised, threaded kernels (Math.exp and Math.tanh
 * manage 50–70 M elements/s; MLAS's 340–480 M), and attention keeps only the log-sum-exp of each query row
 * for its backward pass instead of the probabilities. GPT-2-small's LoRA step (4 × 128, 2-core Zen 1) went from
 * 11.5 s with the composed ops to 6.9 s (bench/prof-kernels.ts).
 */

type Info = tf.TensorInfo;
type Inputs = tf.NamedTensorInfoMap;
type Attrs = tf.NamedAttrMap;

function kernel(
  kernelName: string,
  fn: (inputs: Inputs, attrs: Attrs, backend: NativeBackend) => Info | Info[],
): tf.KernelConfig {
  const kernelFunc = ({ inputs, attrs, backend }: { inputs: Inputs; attrs?: Attrs; backend: unknown }) =>
    fn(inputs, attrs ?? {}, backend as NativeBackend);
  return { kernelName, backendName: NATIVE_BACKEND, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

const info = (inputs: Inputs, name: string) => inputs[name] as Info;
const f32 = (backend: NativeBackend, inputs: Inputs, name: string) => backend.values(info(inputs, name));

// ---- norms ----------------------------------------------------------------------------------------------

function norms(): tf.KernelConfig[] {
  const forward = (layer: boolean) =>
    kernel(layer ? 'StudioLayerNorm' : 'StudioRmsNorm', (inputs, attrs, backend) => {
      const x = info(inputs, 'x');
      const d = x.shape[x.shape.length - 1];
      const rows = tf.util.sizeFromShape(x.shape) / d;
      const X = backend.values(x);
      const W = f32(backend, inputs, 'weight');
      const B = layer ? f32(backend, inputs, 'bias') : null;
      const eps = Number(attrs.eps);
      const y = backend.alloc(Float32Array, rows * d);
      const mean = new Float32Array(rows);
      const rstd = new Float32Array(rows);
      const compiled = cpuOps();
      if (compiled) compiled.norm(rows, d, X, W, B, eps, y, mean, rstd);
      else
        for (let r = 0; r < rows; r++) {
          const o = r * d;
          let mu = 0;
          if (layer) {
            for (let j = 0; j < d; j++) mu += X[o + j];
            mu /= d;
          }
          let ss = 0;
          for (let j = 0; j < d; j++) {
            const c = X[o + j] - mu;
            ss += c * c;
          }
          const rs = 1 / Math.sqrt(ss / d + eps);
          if (B) for (let j = 0; j < d; j++) y[o + j] = (X[o + j] - mu) * rs * W[j] + B[j];
          else for (let j = 0; j < d; j++) y[o + j] = X[o + j] * rs * W[j];
          mean[r] = mu;
          rstd[r] = rs;
        }
      return [
        backend.output(x.shape, 'float32', y),
        backend.output([rows], 'float32', mean),
        backend.output([rows], 'float32', rstd),
      ];
    });
  return [
    forward(false),
    forward(true),
    // g = dy·w, x̂ = (x − mean)·r: dx = (g − mean(g) − x̂·mean(g·x̂))·r, without the mean(g) term for RMSNorm
    kernel('StudioNormGrad', (inputs, attrs, backend) => {
      const x = info(inputs, 'x');
      const d = x.shape[x.shape.length - 1];
      const rows = tf.util.sizeFromShape(x.shape) / d;
      const [X, DY, W, M, R] = ['x', 'dy', 'weight', 'mean', 'rstd'].map((n) => f32(backend, inputs, n));
      const layer = Boolean(attrs.layer);
      const dx = backend.alloc(Float32Array, rows * d);
      const compiled = cpuOps();
      if (compiled) {
        compiled.normGrad(layer, rows, d, X, DY, W, M, R, dx);
        return backend.output(x.shape, 'float32', dx);
      }
      for (let r = 0; r < rows; r++) {
        const o = r * d;
        const mu = M[r];
        const rs = R[r];
        let sg = 0;
        let sgx = 0;
        for (let j = 0; j < d; j++) {
          const g = DY[o + j] * W[j];
          sg += g;
          sgx += g * (X[o + j] - mu) * rs;
        }
        const mg = layer ? sg / d : 0;
        const mgx = sgx / d;
        for (let j = 0; j < d; j++) dx[o + j] = (DY[o + j] * W[j] - mg - (X[o + j] - mu) * rs * mgx) * rs;
      }
      return backend.output(x.shape, 'float32', dx);
    }),
    kernel('StudioNormParamGrad', (inputs, attrs, backend) => {
      const x = info(inputs, 'x');
      const d = x.shape[x.shape.length - 1];
      const rows = tf.util.sizeFromShape(x.shape) / d;
      const DY = f32(backend, inputs, 'dy');
      const acc = new Float64Array(d);
      if (attrs.of === 'bias') {
        for (let r = 0; r < rows; r++) for (let j = 0, o = r * d; j < d; j++) acc[j] += DY[o + j];
      } else {
        const [X, M, R] = ['x', 'mean', 'rstd'].map((n) => f32(backend, inputs, n));
        for (let r = 0; r < rows; r++) {
          const mu = M[r];
          const rs = R[r];
          for (let j = 0, o = r * d; j < d; j++) acc[j] += DY[o + j] * (X[o + j] - mu) * rs;
        }
      }
      return backend.output([1, d], 'float32', Float32Array.from(acc));
    }),
  ];
}

// ---- RoPE, activations, AdamW ---------------------------------------------------------------------------

function rope(): tf.KernelConfig {
  // y = x·cos + rotate_half(x)·sin; its transpose moves each sin factor to the element it multiplies
  return kernel('StudioRope', (inputs, attrs, backend) => {
    const x = info(inputs, 'x');
    const [batch, heads, length, dim] = x.shape;
    const [X, C, S] = ['x', 'cos', 'sin'].map((n) => f32(backend, inputs, n));
    const transpose = Boolean(attrs.transpose);
    const half = dim / 2;
    const y = backend.alloc(Float32Array, X.length);
    const compiled = cpuOps();
    if (compiled) {
      compiled.rope(transpose, x.shape, X, C, S, y);
      return backend.output(x.shape, 'float32', y);
    }
    for (let b = 0; b < batch; b++)
      for (let h = 0; h < heads; h++)
        for (let t = 0; t < length; t++) {
          const xo = ((b * heads + h) * length + t) * dim;
          const co = (b * length + t) * dim;
          if (transpose) {
            for (let d = 0; d < half; d++) {
              y[xo + d] = X[xo + d] * C[co + d] + X[xo + d + half] * S[co + d + half];
              y[xo + d + half] = X[xo + d + half] * C[co + d + half] - X[xo + d] * S[co + d];
            }
          } else {
            for (let d = 0; d < half; d++) {
              y[xo + d] = X[xo + d] * C[co + d] - X[xo + d + half] * S[co + d];
              y[xo + d + half] = X[xo + d + half] * C[co + d + half] + X[xo + d] * S[co + d + half];
            }
          }
        }
    return backend.output(x.shape, 'float32', y);
  });
}

/**
 * Each fused activation as the library's fused op (`fused`, for its values), and as the one transcendental its
 * JS form needs (`op` of `pre(x)`, which the library evaluates when it has it) with f and f′ in terms of x and
 * that value t.
 */
const ACTIVATIONS: Record<
  string,
  { fused: NativeActivationOp; op: NativeUnaryOp; pre: string | null; f: string; df: string }
> = {
  silu: { fused: 'QuickGelu', op: 'Sigmoid', pre: null, f: 'x * t', df: 't * (1 + x * (1 - t))' },
  gelu: {
    fused: 'Gelu',
    op: 'Erf',
    pre: 'x * 0.7071067811865476',
    f: '0.5 * x * (1 + t)',
    df: '0.5 * (1 + t) + x * 0.3989422804014327 * Math.exp(-0.5 * x * x)',
  },
  gelu_tanh: {
    fused: 'FastGelu',
    op: 'Tanh',
    pre: '(x + 0.044715 * x * x * x) * 0.7978845608028654',
    f: '0.5 * x * (1 + t)',
    df: '0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.7978845608028654 * (1 + 0.134145 * x * x)',
  },
};

type ActLoop = (
  x: Float32Array,
  t: Float32Array,
  u: Float32Array | null,
  dy: Float32Array | null,
  o: Float32Array,
) => void;

const FORMS: Record<CpuActivationForm, (a: { f: string; df: string }) => string> = {
  value: (a) => a.f,
  grad: (a) => `dy[i] * (${a.df})`,
  gated: (a) => `(${a.f}) * u[i]`,
  gatedOfGate: (a) => `dy[i] * u[i] * (${a.df})`,
  gatedOfUp: (a) => `dy[i] * (${a.f})`,
};

const actLoops = new Map<
  string,
  { pre: ((x: Float32Array, o: Float32Array) => void) | null; loop: ActLoop }
>();

function actLoop(act: string, form: CpuActivationForm) {
  const key = `${act}/${form}`;
  let entry = actLoops.get(key);
  if (!entry) {
    const a = ACTIVATIONS[act];
    if (!a) throw new Error(`no fused activation "${act}"`);
    entry = {
      pre: a.pre
        ? (new Function(
            'X',
            'o',
            `for (let i = 0; i < X.length; i++) { const x = X[i]; o[i] = ${a.pre}; }`,
          ) as (x: Float32Array, o: Float32Array) => void)
        : null,
      loop: new Function(
        'X',
        'T',
        'u',
        'dy',
        'o',
        `for (let i = 0; i < X.length; i++) { const x = X[i], t = T[i]; o[i] = ${FORMS[form](a)}; }`,
      ) as ActLoop,
    };
    actLoops.set(key, entry);
  }
  return entry;
}

/**
 * o = the activation form over x. Values of f come from the library's fused activation in one threaded pass
 * (times `up` or dy after it); otherwise the transcendental goes through `o` first, so no extra array is needed.
 */
function applyActivation(
  backend: NativeBackend,
  act: string,
  form: CpuActivationForm,
  x: Float32Array,
  u: Float32Array | null,
  dy: Float32Array | null,
): Float32Array {
  const compiled = cpuOps();
  if (compiled && act in ACTIVATIONS) {
    const o = backend.alloc(Float32Array, x.length);
    compiled.activationForm(act as CpuActivation, form, x, u, dy, o);
    return o;
  }
  const { op, fused } = ACTIVATIONS[act] ?? {};
  const { pre, loop } = actLoop(act, form);
  const o = backend.alloc(Float32Array, x.length);
  const native = form === 'value' || form === 'gated' || form === 'gatedOfUp';
  // reached without the compiled kernels only: onnxruntime's fused activation, where the array pays for the call
  const activation =
    native && x.length >= fusedLimits.nativeMinElements ? backend.gemm.activation : undefined;
  if (activation) {
    activation(fused, x, o);
    const factor = form === 'gated' ? u : form === 'gatedOfUp' ? dy : null;
    if (factor) for (let i = 0; i < o.length; i++) o[i] *= factor[i];
    return o;
  }
  if (pre) {
    pre(x, o);
    unary(backend, op, o, o);
  } else unary(backend, op, x, o);
  loop(x, o, u, dy, o);
  return o;
}

function activations(): tf.KernelConfig[] {
  return [
    kernel('StudioActivation', (inputs, attrs, backend) => {
      const x = info(inputs, 'x');
      const dy = inputs.dy ? f32(backend, inputs, 'dy') : null;
      const o = applyActivation(
        backend,
        String(attrs.act),
        dy ? 'grad' : 'value',
        backend.values(x),
        null,
        dy,
      );
      return backend.output(x.shape, 'float32', o);
    }),
    kernel('StudioGated', (inputs, attrs, backend) => {
      const gate = info(inputs, 'gate');
      const up = f32(backend, inputs, 'up');
      if (up.length !== tf.util.sizeFromShape(gate.shape))
        throw new Error(`StudioGated: gate [${gate.shape}] and up differ in size`);
      const dy = inputs.dy ? f32(backend, inputs, 'dy') : null;
      const form: CpuActivationForm = !dy ? 'gated' : attrs.of === 'up' ? 'gatedOfUp' : 'gatedOfGate';
      const o = applyActivation(backend, String(attrs.act), form, backend.values(gate), up, dy);
      return backend.output(gate.shape, 'float32', o);
    }),
  ];
}

function adamw(): tf.KernelConfig {
  return kernel('StudioAdamW', (inputs, attrs, backend) => {
    const p = info(inputs, 'p');
    const [P, G, M, V] = ['p', 'g', 'm', 'v'].map((n) => f32(backend, inputs, n));
    const { lr, beta1, beta2, eps, weightDecay, bias1, bias2Sqrt, gradScale } = attrs as unknown as AdamWStep;
    const n = P.length;
    const [p2, m2, v2] = [0, 1, 2].map(() => backend.alloc(Float32Array, n));
    const decay = 1 - lr * weightDecay;
    const stepSize = lr / bias1;
    const compiled = cpuOps();
    if (compiled) {
      compiled.adamw(
        { p: P, g: G, m: M, v: V, p2, m2, v2 },
        { beta1, beta2, eps, decay, stepSize, bias2Sqrt, gradScale },
      );
      return [p2, m2, v2].map((values) => backend.output(p.shape, 'float32', values));
    }
    for (let i = 0; i < n; i++) {
      const g = Math.fround(G[i] * gradScale);
      const m = beta1 * M[i] + (1 - beta1) * g;
      const v = beta2 * V[i] + (1 - beta2) * g * g;
      m2[i] = m;
      v2[i] = v;
      p2[i] = P[i] * decay - (stepSize * m) / (Math.sqrt(v) / bias2Sqrt + eps);
    }
    return [p2, m2, v2].map((values) => backend.output(p.shape, 'float32', values));
  });
}

/** Σ x² over every input (x0, x1, …), summed in float64: a global gradient norm without a tensor a parameter. */
function squaredSum(): tf.KernelConfig {
  return kernel('StudioSquaredSum', (inputs, _attrs, backend) => {
    const compiled = cpuOps();
    let sum = 0;
    for (const name of Object.keys(inputs)) {
      const x = f32(backend, inputs, name);
      if (compiled) sum += compiled.squaredSum(x);
      else for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
    }
    return backend.output([], 'float32', Float32Array.of(sum));
  });
}

// ---- token NLL ------------------------------------------------------------------------------------------

function tokenNll(): tf.KernelConfig[] {
  return [
    // from the log-softmax of each row: lse = x[target] − ls[target], nll = w·(lse − x[target])
    kernel('StudioTokenNll', (inputs, _attrs, backend) => {
      const logits = info(inputs, 'logits');
      const [n, c] = logits.shape;
      const X = backend.values(logits);
      const T = backend.values<Int32Array>(info(inputs, 'targets'));
      const W = f32(backend, inputs, 'weights');
      const nll = new Float32Array(n);
      const lse = new Float32Array(n);
      const rowsPer = Math.min(n, Math.max(1, Math.floor(fusedLimits.nllScratch / c)));
      const scratch = backend.scratch(rowsPer * c);
      for (let r0 = 0; r0 < n; r0 += rowsPer) {
        const rows = Math.min(rowsPer, n - r0);
        const xs = X.subarray(r0 * c, (r0 + rows) * c);
        const ls = scratch.subarray(0, rows * c);
        const native = library(backend, ls.length)?.logSoftmax;
        if (native) native(xs, ls, rows, c);
        else softmaxRows(backend, xs, ls, rows, c, lse.subarray(r0, r0 + rows));
        for (let r = 0; r < rows; r++) {
          const row = r0 + r;
          const x = X[row * c + T[row]];
          if (native) lse[row] = x - ls[r * c + T[row]];
          nll[row] = W[row] === 0 ? 0 : W[row] * (lse[row] - x);
        }
      }
      backend.release(scratch);
      return [backend.output([n], 'float32', nll), backend.output([n], 'float32', lse)];
    }),
    // dlogits = dy·w·(softmax − onehot); the softmax is recomputed rather than read from lse, one pass fewer
    kernel('StudioTokenNllGrad', (inputs, _attrs, backend) => {
      const logits = info(inputs, 'logits');
      const [n, c] = logits.shape;
      const [W, DY] = ['weights', 'dy'].map((name) => f32(backend, inputs, name));
      const T = backend.values<Int32Array>(info(inputs, 'targets'));
      const out = backend.alloc(Float32Array, n * c);
      softmaxRows(backend, backend.values(logits), out, n, c);
      const scales = new Float32Array(n);
      for (let r = 0; r < n; r++) scales[r] = (DY.length === 1 ? DY[0] : DY[r]) * W[r];
      broadcastRows(backend, 'Mul', out, scales, n, c, true);
      for (let r = 0; r < n; r++) out[r * c + T[r]] -= scales[r];
      return backend.output(logits.shape, 'float32', out);
    }),
  ];
}

// ---- attention ------------------------------------------------------------------------------------------

export function nativeAttentionFits(q: number[], k: number[], bias: number[]): boolean {
  const [b, h, tq, d] = q;
  const [bk, hkv, tk, dk] = k;
  return (
    q.length === 4 &&
    k.length === 4 &&
    d === dk &&
    b === bk &&
    h % hkv === 0 &&
    bias.length === 4 &&
    bias[0] === b &&
    bias[1] === 1 &&
    (bias[2] === tq || bias[2] === 1) &&
    bias[3] === tk
  );
}

/**
 * Attention per group of one batch element and one kv head: its `rep` query heads are contiguous in q
 * ([B, H, Tq, d] = [B·Hkv, rep·Tq, d]), so each group's scores are one [rep·Tq, Tk] product and keys and values
 * are never repeated. Groups go through the batched GEMM a chunk at a time.
 */
interface Geometry {
  groups: number;
  rep: number;
  tq: number;
  tk: number;
  d: number;
  /** Query rows per group (rep·Tq). */
  m: number;
  kvHeads: number;
  biasQ: boolean;
  chunk: number;
}

function geometry(q: Info, k: Info, bias: Info): Geometry {
  const [b, h, tq, d] = q.shape;
  const [, hkv, tk] = k.shape;
  const rep = h / hkv;
  const m = rep * tq;
  return {
    groups: b * hkv,
    rep,
    tq,
    tk,
    d,
    m,
    kvHeads: hkv,
    biasQ: bias.shape[2] === tq,
    chunk: Math.max(1, Math.floor(fusedLimits.attentionScratch / (m * tk))),
  };
}

/**
 * Probabilities of groups [g0, g0 + count) in place of their raw scores `s`: with `lse` given (backward),
 * exp(s·scale + bias − lse); without, a softmax whose row log-sum-exp is written to `lseOut`.
 */
function probabilities(
  backend: NativeBackend,
  g: Geometry,
  g0: number,
  count: number,
  s: Float32Array,
  bias: Float32Array,
  scale: number,
  lse: Float32Array | null,
  lseOut: Float32Array | null,
): void {
  const { m, tk, tq, kvHeads } = g;
  const compiled = cpuOps();
  if (compiled) {
    compiled.attentionProbs({ count, m, tk, tq, kvHeads, g0, biasQ: g.biasQ }, s, bias, scale, lse, lseOut);
    return;
  }
  const rows = count * m;
  // the library's softmax leaves each row's largest entry at 1/Σ, which never underflows: lse = max + log Σ
  const native = lse ? null : library(backend, s.length)?.softmax;
  const argmax = native ? new Int32Array(rows) : null;
  const maxes = native ? new Float64Array(rows) : null;
  for (let gi = 0; gi < count; gi++) {
    const batch = Math.floor((g0 + gi) / kvHeads);
    for (let r = 0; r < m; r++) {
      const row = gi * m + r;
      const so = row * tk;
      const bo = (batch * (g.biasQ ? tq : 1) + (g.biasQ ? r % tq : 0)) * tk;
      const shift = lse ? lse[(g0 + gi) * m + r] : 0;
      let max = -Infinity;
      let at = 0;
      for (let j = 0; j < tk; j++) {
        const v = s[so + j] * scale + bias[bo + j] - shift;
        s[so + j] = v;
        if (v > max) {
          max = v;
          at = j;
        }
      }
      if (argmax && maxes) {
        argmax[row] = at;
        maxes[row] = max;
      }
    }
  }
  if (lse) {
    unary(backend, 'Exp', s, s);
    return;
  }
  const out = lseOut!.subarray(g0 * m, g0 * m + rows);
  if (!native || !argmax || !maxes) {
    softmaxRows(backend, s, s, rows, tk, out);
    return;
  }
  native(s, s, rows, tk);
  for (let row = 0; row < rows; row++) out[row] = maxes[row] - Math.log(s[row * tk + argmax[row]]);
}

/** `count` products of one shape, one per group, taking its operands and output. */
const groupGemm =
  (backend: NativeBackend, count: number) =>
  (transA: boolean, transB: boolean, m: number, n: number, k: number) =>
  (a: Float32Array, b: Float32Array, c: Float32Array) =>
    backend.gemm.sgemmBatched(transA, transB, count, count, count, m, n, k, a, b, c);

function attention(): tf.KernelConfig[] {
  return [
    kernel('StudioAttention', (inputs, attrs, backend) => {
      const [q, k, v, bias] = ['q', 'k', 'v', 'bias'].map((n) => info(inputs, n));
      const g = geometry(q, k, bias);
      const [Q, K, V, Bias] = [q, k, v, bias].map((t) => backend.values(t));
      const scale = Number(attrs.scale);
      const { m, tk, d } = g;
      const o = backend.alloc(Float32Array, Q.length);
      const lse = new Float32Array(g.groups * m);
      const scores = backend.scratch(Math.min(g.chunk, g.groups) * m * tk);
      for (let g0 = 0; g0 < g.groups; g0 += g.chunk) {
        const count = Math.min(g.chunk, g.groups - g0);
        const qRange = [g0 * m * d, (g0 + count) * m * d] as const;
        const kRange = [g0 * tk * d, (g0 + count) * tk * d] as const;
        const s = scores.subarray(0, count * m * tk);
        const gemm = groupGemm(backend, count);
        gemm(false, true, m, tk, d)(Q.subarray(...qRange), K.subarray(...kRange), s);
        probabilities(backend, g, g0, count, s, Bias, scale, null, lse);
        gemm(false, false, m, d, tk)(s, V.subarray(...kRange), o.subarray(...qRange));
      }
      backend.release(scores);
      return [
        backend.output(q.shape, 'float32', o),
        backend.output([q.shape[0], q.shape[1], q.shape[2]], 'float32', lse),
      ];
    }),
    // P recomputed from lse; dV = Pᵀ·dO, dS = P∘(dO·Vᵀ − rowsum(dO∘O))·scale, dQ = dS·K, dK = dSᵀ·Q
    kernel('StudioAttentionGrad', (inputs, attrs, backend) => {
      const [q, k, bias] = ['q', 'k', 'bias'].map((n) => info(inputs, n));
      const g = geometry(q, k, bias);
      const [Q, K, V, Bias, O, L, DO] = ['q', 'k', 'v', 'bias', 'o', 'lse', 'dO'].map((n) =>
        f32(backend, inputs, n),
      );
      const scale = Number(attrs.scale);
      const { m, tk, d } = g;
      const dq = backend.alloc(Float32Array, Q.length);
      const dk = backend.alloc(Float32Array, K.length);
      const dv = backend.alloc(Float32Array, K.length);
      const size = Math.min(g.chunk, g.groups) * m * tk;
      const probs = backend.scratch(size);
      const dScores = backend.scratch(size);
      for (let g0 = 0; g0 < g.groups; g0 += g.chunk) {
        const count = Math.min(g.chunk, g.groups - g0);
        const qRange = [g0 * m * d, (g0 + count) * m * d] as const;
        const kRange = [g0 * tk * d, (g0 + count) * tk * d] as const;
        const qs = Q.subarray(...qRange);
        const ks = K.subarray(...kRange);
        const dos = DO.subarray(...qRange);
        const p = probs.subarray(0, count * m * tk);
        const ds = dScores.subarray(0, count * m * tk);
        const gemm = groupGemm(backend, count);
        gemm(false, true, m, tk, d)(qs, ks, p);
        probabilities(backend, g, g0, count, p, Bias, scale, L, null);
        gemm(true, false, tk, d, m)(p, dos, dv.subarray(...kRange));
        gemm(false, true, m, tk, d)(dos, V.subarray(...kRange), ds);
        const compiled = cpuOps();
        if (compiled) compiled.attentionDScores(count * m, tk, d, p, ds, dos, O.subarray(...qRange), scale);
        else
          for (let row = 0; row < count * m; row++) {
            const oo = g0 * m * d + row * d;
            let dot = 0;
            for (let j = 0; j < d; j++) dot += DO[oo + j] * O[oo + j];
            const so = row * tk;
            for (let j = 0; j < tk; j++) ds[so + j] = p[so + j] * (ds[so + j] - dot) * scale;
          }
        gemm(false, false, m, d, tk)(ds, ks, dq.subarray(...qRange));
        gemm(true, false, tk, d, m)(ds, qs, dk.subarray(...kRange));
      }
      backend.release(probs, dScores);
      return [
        backend.output(q.shape, 'float32', dq),
        backend.output(k.shape, 'float32', dk),
        backend.output(k.shape, 'float32', dv),
      ];
    }),
  ];
}

/** The fused kernels' configs, for the native backend's registration. */
export function fusedKernels(): tf.KernelConfig[] {
  return [...norms(), rope(), ...activations(), adamw(), squaredSum(), ...tokenNll(), ...attention()];
}

/** Makes the fused ops available on the native backend (after `fusedKernels()` are registered). */
export function installNativeFusedOps(): void {
  installFusedOps(NATIVE_BACKEND, { attentionFits: nativeAttentionFits });
}
