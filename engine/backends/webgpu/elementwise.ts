import * as tf from '@tensorflow/tfjs-core';
import type { AdamWStep } from '../fused.ts';
import type { GpuRuntime, UniformField } from './runtime.ts';

const THREADS = 256;

interface ElementwiseSpec {
  /** Pipeline cache key. */
  key: string;
  /** Input arrays, bound as `array<f32>` (or the given element type) under these names. */
  inputs: { name: string; type?: 'f32' | 'i32' }[];
  /** Output arrays `out0`, `out1`, … */
  outputs: number;
  /** Extra uniform fields after `n` (all f32 or u32), e.g. `{ name: 'beta1', type: 'f32' }`. */
  uniforms?: { name: string; type: 'f32' | 'u32' }[];
  /** Helper functions placed before `main`. */
  functions?: string;
  /** The per-element body; `i` is the element index, `p` the uniforms. */
  body: string;
}

function source(s: ElementwiseSpec): string {
  const fields = [['n', 'u32'], ...(s.uniforms ?? []).map((u) => [u.name, u.type])];
  const outs = Array.from(
    { length: s.outputs },
    (_, i) => `@group(0) @binding(${i}) var<storage, read_write> out${i}: array<f32>;`,
  );
  const ins = s.inputs.map(
    (input, i) =>
      `@group(0) @binding(${s.outputs + i}) var<storage, read> ${input.name}: array<${input.type ?? 'f32'}>;`,
  );
  return `struct P { ${fields.map(([n, t]) => `${n}: ${t}`).join(', ')} }
${outs.join('\n')}
${ins.join('\n')}
@group(0) @binding(${s.outputs + s.inputs.length}) var<uniform> p: P;
${s.functions ?? ''}
@compute @workgroup_size(${THREADS})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${THREADS}u;
  if (i >= p.n) { return; }
  ${s.body}
}`;
}

/** Runs an elementwise kernel over `count` elements; outputs take `shapes`. */
function elementwise(
  rt: GpuRuntime,
  spec: ElementwiseSpec,
  inputs: tf.TensorInfo[],
  shapes: number[][],
  uniforms: UniformField[] = [],
): tf.TensorInfo[] {
  const outputs = shapes.map((s) => rt.output(s));
  const count = tf.util.sizeFromShape(shapes[0]);
  const pipeline = rt.pipeline(`ew-${spec.key}`, () => source(spec));
  rt.dispatch(pipeline, [...outputs, ...inputs], [count, ...uniforms], rt.grid(Math.ceil(count / THREADS)));
  return outputs;
}

/**
 * RoPE (transformers' rotate_half): y = x·cos + [−x₂, x₁]·sin over the last axis of x [B,H,T,d], with cos/sin
 * [B,1,T,d]. `transpose` applies the adjoint rotation, which is the input gradient for dy.
 */
export function rope(
  rt: GpuRuntime,
  x: tf.TensorInfo,
  cos: tf.TensorInfo,
  sin: tf.TensorInfo,
  transpose: boolean,
): tf.TensorInfo {
  const [, heads, length, dim] = x.shape;
  const rotated = transpose
    ? 'select(-x[i - half] * sn[c - half], x[i + half] * sn[c + half], d < half)'
    : 'select(x[i - half], -x[i + half], d < half) * sn[c]';
  const [y] = elementwise(
    rt,
    {
      key: `rope-${transpose ? 'T' : 'N'}`,
      inputs: [{ name: 'x' }, { name: 'cs' }, { name: 'sn' }],
      outputs: 1,
      uniforms: [
        { name: 'heads', type: 'u32' },
        { name: 'len', type: 'u32' },
        { name: 'dim', type: 'u32' },
      ],
      body: `let d = i % p.dim;
  let t = (i / p.dim) % p.len;
  let b = i / (p.dim * p.len * p.heads);
  let c = (b * p.len + t) * p.dim + d;
  let half = p.dim / 2u;
  out0[i] = x[i] * cs[c] + ${rotated};`,
    },
    [x, cos, sin],
    [x.shape],
    [heads, length, dim],
  );
  return y;
}

/** tfjs's erf (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7) and a tanh that cannot overflow. */
const MATH_WGSL = `fn erf_(x: f32) -> f32 {
  let v = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * v);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-v * v);
  return select(-y, y, x >= 0.0);
}
fn tanh_(u: f32) -> f32 {
  let e = exp(-2.0 * abs(u));
  let t = (1.0 - e) / (1.0 + e);
  return select(-t, t, u >= 0.0);
}
fn sigmoid_(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
const SQRT_2_OVER_PI = ${Math.sqrt(2 / Math.PI)};
const INV_SQRT_2PI = ${1 / Math.sqrt(2 * Math.PI)};
const SQRT1_2 = ${Math.SQRT1_2};`;

/** Value and derivative of each fused activation at x, as WGSL expressions setting `f` and `df`. */
const ACTIVATIONS: Record<string, string> = {
  silu: 'let s = sigmoid_(x); let f = x * s; let df = s * (1.0 + x * (1.0 - s));',
  gelu: `let e = erf_(x * SQRT1_2); let f = x * 0.5 * (e + 1.0);
  let df = (e + 1.0) * 0.5 + x * exp(-0.5 * x * x) * INV_SQRT_2PI;`,
  gelu_tanh: `let t = tanh_((x + x * x * x * 0.044715) * SQRT_2_OVER_PI); let f = x * 0.5 * (t + 1.0);
  let df = (t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x);`,
};

/** f(x), or with `dy` the input gradient dy·f′(x). */
export function activation(rt: GpuRuntime, act: string, x: tf.TensorInfo, dy?: tf.TensorInfo): tf.TensorInfo {
  const [y] = elementwise(
    rt,
    {
      key: `act-${act}-${dy ? 'bwd' : 'fwd'}`,
      inputs: dy ? [{ name: 'xs' }, { name: 'dy' }] : [{ name: 'xs' }],
      outputs: 1,
      functions: MATH_WGSL,
      body: `let x = xs[i];\n  ${ACTIVATIONS[act]}\n  out0[i] = ${dy ? 'dy[i] * df' : 'f'};`,
    },
    dy ? [x, dy] : [x],
    [x.shape],
  );
  return y;
}

/**
 * act(gate)·up; with `dy`, the gradient of one input (each is its own kernel, so tfjs computes only the
 * gradients a step needs): dgate = dy·up·act′(gate), dup = dy·act(gate).
 */
export function gated(
  rt: GpuRuntime,
  act: string,
  gate: tf.TensorInfo,
  up: tf.TensorInfo,
  grad?: { dy: tf.TensorInfo; of: 'gate' | 'up' },
): tf.TensorInfo {
  // every binding must be read: layouts are derived from the shader, which drops unused ones
  const inputs = grad
    ? grad.of === 'gate'
      ? { names: ['g', 'u', 'dy'], infos: [gate, up, grad.dy], result: 'dy[i] * u[i] * df' }
      : { names: ['g', 'dy'], infos: [gate, grad.dy], result: 'dy[i] * f' }
    : { names: ['g', 'u'], infos: [gate, up], result: 'f * u[i]' };
  const [y] = elementwise(
    rt,
    {
      key: `gated-${act}-${grad ? grad.of : 'fwd'}`,
      inputs: inputs.names.map((name) => ({ name })),
      outputs: 1,
      functions: MATH_WGSL,
      body: `let x = g[i];\n  ${ACTIVATIONS[act]}\n  out0[i] = ${inputs.result};`,
    },
    inputs.infos,
    [gate.shape],
  );
  return y;
}

/**
 * One AdamW update in one pass, in the order training/optimizer.ts composes it (so results agree to rounding):
 * with g the gradient times gradScale, m′ = β1·m + (1−β1)·g; v′ = β2·v + (1−β2)·g²; p′ = p·(1 − lr·wd) − (lr/(1−β1ᵗ))·m′/(√v′/√(1−β2ᵗ) + ε).
 */
export function adamw(
  rt: GpuRuntime,
  p: tf.TensorInfo,
  g: tf.TensorInfo,
  m: tf.TensorInfo,
  v: tf.TensorInfo,
  s: AdamWStep,
): tf.TensorInfo[] {
  const f = (name: string) => ({ name, type: 'f32' as const });
  const decay = s.weightDecay !== 0;
  return elementwise(
    rt,
    {
      key: `adamw-${decay ? 'wd' : 'nowd'}`,
      inputs: [{ name: 'pv' }, { name: 'gv' }, { name: 'mv' }, { name: 'vv' }],
      outputs: 3,
      uniforms: [
        f('b1'),
        f('c1'),
        f('b2'),
        f('c2'),
        f('decay'),
        f('bias2'),
        f('eps'),
        f('stepSize'),
        f('gradScale'),
      ],
      body: `let gi = gv[i] * p.gradScale;
  let mn = mv[i] * p.b1 + gi * p.c1;
  let vn = vv[i] * p.b2 + (gi * gi) * p.c2;
  let decayed = ${decay ? 'pv[i] * p.decay' : 'pv[i]'};
  let denom = sqrt(vn) / p.bias2 + p.eps;
  out0[i] = decayed - (mn / denom) * p.stepSize;
  out1[i] = mn;
  out2[i] = vn;`,
    },
    [p, g, m, v],
    [p.shape, m.shape, v.shape],
    [
      { f32: s.beta1 },
      { f32: 1 - s.beta1 },
      { f32: s.beta2 },
      { f32: 1 - s.beta2 },
      { f32: 1 - s.lr * s.weightDecay },
      { f32: s.bias2Sqrt },
      { f32: s.eps },
      { f32: s.lr / s.bias1 },
      { f32: s.gradScale },
    ],
  );
}

/** dlogits = dnll·w·(softmax(logits) − onehot(target)) per row, from the forward's per-row log-sum-exp. */
export function tokenNllGrad(
  rt: GpuRuntime,
  logits: tf.TensorInfo,
  lse: tf.TensorInfo,
  targets: tf.TensorInfo,
  weights: tf.TensorInfo,
  dy: tf.TensorInfo,
): tf.TensorInfo {
  const [, classes] = logits.shape;
  const [grad] = elementwise(
    rt,
    {
      key: 'nll-bwd',
      inputs: [{ name: 'x' }, { name: 'lse' }, { name: 't', type: 'i32' }, { name: 'w' }, { name: 'dy' }],
      outputs: 1,
      uniforms: [{ name: 'classes', type: 'u32' }],
      body: `let row = i / p.classes;
  let c = i % p.classes;
  let hit = select(0.0, 1.0, i32(c) == t[row]);
  out0[i] = dy[row] * w[row] * (exp(x[i] - lse[row]) - hit);`,
    },
    [logits, lse, targets, weights, dy],
    [logits.shape],
    [classes],
  );
  return grad;
}
