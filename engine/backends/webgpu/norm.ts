import type * as tf from '@tensorflow/tfjs-core';
import type { GpuRuntime } from './runtime.ts';

/** Threads per row of the row kernels; the row is strided over them and summed in workgroup memory. */
const ROW_THREADS = 256;

/** Row index of a workgroup on a 2-D grid (rows beyond 65,535 wrap into y). */
const ROW_OF = 'let row = wg.x + wg.y * nwg.x;';
const MAIN_ARGS =
  '@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32';

/** `sum2(v)`: both components of v summed over the workgroup (uniform control flow only). */
const SUM2_WGSL = `var<workgroup> red: array<vec2<f32>, ${ROW_THREADS}>;
fn sum2(v: vec2<f32>, li: u32) -> vec2<f32> {
  red[li] = v;
  workgroupBarrier();
  for (var s = ${ROW_THREADS / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}`;

/**
 * Forward: per row, mean and 1/σ (LayerNorm) or 1/rms (RMSNorm, mean 0), then y = (x − mean)·r·w (+ b).
 * Outputs y [N, d] and the per-row statistics [N] the backward needs.
 */
function forwardSource(layer: boolean): string {
  return `struct P { rows: u32, d: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read_write> mean: array<f32>;
@group(0) @binding(2) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
${layer ? '@group(0) @binding(5) var<storage, read> b: array<f32>;' : ''}
@group(0) @binding(${layer ? 6 : 5}) var<uniform> p: P;
${SUM2_WGSL}
@compute @workgroup_size(${ROW_THREADS})
fn main(${MAIN_ARGS}) {
  ${ROW_OF}
  let valid = row < p.rows;
  let base = select(0u, row, valid) * p.d;
  let n = select(0u, p.d, valid);
  var s = vec2<f32>(0.0);
  for (var i = li; i < n; i += ${ROW_THREADS}u) { let v = x[base + i]; s += vec2<f32>(v, v * v); }
  let tot = sum2(s, li);
  let mu = ${layer ? 'tot.x / f32(p.d)' : '0.0'};
  ${
    layer
      ? `var c = vec2<f32>(0.0);
  for (var i = li; i < n; i += ${ROW_THREADS}u) { let v = x[base + i] - mu; c += vec2<f32>(v * v, 0.0); }
  let vr = sum2(c, li).x / f32(p.d);`
      : 'let vr = tot.y / f32(p.d);'
  }
  let r = inverseSqrt(vr + p.eps);
  if (!valid) { return; }
  for (var i = li; i < n; i += ${ROW_THREADS}u) {
    y[base + i] = (x[base + i] - mu) * r * w[i]${layer ? ' + b[i]' : ''};
  }
  if (li == 0u) { mean[row] = mu; rstd[row] = r; }
}`;
}

/**
 * Input gradient per row: g = dy·w, x̂ = (x − mean)·r; dx = (g − mean(g) − x̂·mean(g·x̂))·r (RMSNorm drops
 * the mean(g) term).
 */
function backwardSource(layer: boolean): string {
  return `struct P { rows: u32, d: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> rstd: array<f32>;
@group(0) @binding(6) var<uniform> p: P;
${SUM2_WGSL}
@compute @workgroup_size(${ROW_THREADS})
fn main(${MAIN_ARGS}) {
  ${ROW_OF}
  let valid = row < p.rows;
  let r0 = select(0u, row, valid);
  let base = r0 * p.d;
  let n = select(0u, p.d, valid);
  let mu = mean[r0];
  let r = rstd[r0];
  var s = vec2<f32>(0.0);
  for (var i = li; i < n; i += ${ROW_THREADS}u) {
    let g = dy[base + i] * w[i];
    s += vec2<f32>(g, g * (x[base + i] - mu) * r);
  }
  let tot = sum2(s, li) / f32(p.d);
  if (!valid) { return; }
  for (var i = li; i < n; i += ${ROW_THREADS}u) {
    let g = dy[base + i] * w[i];
    let xh = (x[base + i] - mu) * r;
    dx[base + i] = (g${layer ? ' - tot.x' : ''} - xh * tot.y) * r;
  }
}`;
}

/** Rows per partial sum of the weight (and bias) gradients, summed afterwards over the partials. */
export const COLUMN_CHUNK = 256;

/** Partial column sums over row chunks of dy·x̂ (the weight gradient) or of dy (the bias gradient). */
function columnsSource(weight: boolean): string {
  return `struct P { rows: u32, d: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read_write> partial: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
${
  weight
    ? `@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;`
    : ''
}
@group(0) @binding(${weight ? 5 : 2}) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let chunk = gid.y;
  if (j >= p.d) { return; }
  var s = 0.0;
  let end = min(p.rows, (chunk + 1u) * ${COLUMN_CHUNK}u);
  for (var row = chunk * ${COLUMN_CHUNK}u; row < end; row++) {
    s += dy[row * p.d + j]${weight ? ' * (x[row * p.d + j] - mean[row]) * rstd[row]' : ''};
  }
  partial[chunk * p.d + j] = s;
}`;
}

export interface NormForward {
  y: tf.TensorInfo;
  mean: tf.TensorInfo;
  rstd: tf.TensorInfo;
}

export function normForward(
  rt: GpuRuntime,
  x: tf.TensorInfo,
  w: tf.TensorInfo,
  b: tf.TensorInfo | null,
  eps: number,
): NormForward {
  const [rows, d] = x.shape;
  const layer = b !== null;
  const y = rt.output([rows, d]);
  const mean = rt.output([rows]);
  const rstd = rt.output([rows]);
  const pipeline = rt.pipeline(`norm-fwd-${layer ? 'layer' : 'rms'}`, () => forwardSource(layer));
  rt.dispatch(pipeline, [y, mean, rstd, x, w, ...(b ? [b] : [])], [rows, d, { f32: eps }], rt.grid(rows));
  return { y, mean, rstd };
}

export function normInputGrad(
  rt: GpuRuntime,
  layer: boolean,
  dy: tf.TensorInfo,
  x: tf.TensorInfo,
  w: tf.TensorInfo,
  mean: tf.TensorInfo,
  rstd: tf.TensorInfo,
): tf.TensorInfo {
  const [rows, d] = x.shape;
  const dx = rt.output([rows, d]);
  const pipeline = rt.pipeline(`norm-bwd-${layer ? 'layer' : 'rms'}`, () => backwardSource(layer));
  rt.dispatch(pipeline, [dx, dy, x, w, mean, rstd], [rows, d], rt.grid(rows));
  return dx;
}

/** Partial sums [⌈N/256⌉, d] of dy·x̂ (`weight`) or dy; the caller sums them over axis 0. */
export function normParamGradPartials(
  rt: GpuRuntime,
  of: 'weight' | 'bias',
  dy: tf.TensorInfo,
  x: tf.TensorInfo,
  mean: tf.TensorInfo,
  rstd: tf.TensorInfo,
): tf.TensorInfo {
  const [rows, d] = x.shape;
  const chunks = Math.ceil(rows / COLUMN_CHUNK);
  const partial = rt.output([chunks, d]);
  const pipeline = rt.pipeline(`norm-columns-${of}`, () => columnsSource(of === 'weight'));
  const args = of === 'weight' ? [partial, dy, x, mean, rstd] : [partial, dy];
  rt.dispatch(pipeline, args, [rows, d], [Math.ceil(d / 64), chunks]);
  return partial;
}
