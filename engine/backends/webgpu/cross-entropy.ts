import type * as tf from '@tensorflow/tfjs-core';
import type { GpuRuntime } from './runtime.ts';

const THREADS = 256;

/**
 * Per row of logits [N, C]: log-sum-exp in one pass over the vocabulary (each thread keeps a running maximum
 * and the sum of exponentials below it; the pairs merge in workgroup memory), then nll = w·(lse − x[target]).
 * No softmax or one-hot [N, C] is ever formed.
 */
const SOURCE = `struct P { rows: u32, classes: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read_write> nll: array<f32>;
@group(0) @binding(1) var<storage, read_write> lse: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> t: array<i32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<uniform> p: P;
var<workgroup> red: array<vec2<f32>, ${THREADS}>;
fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row = wg.x + wg.y * nwg.x;
  let valid = row < p.rows;
  let base = select(0u, row, valid) * p.classes;
  let n = select(0u, p.classes, valid);
  var acc = vec2<f32>(-3.0e38, 0.0);
  for (var c = li; c < n; c += ${THREADS}u) { acc = merge(acc, vec2<f32>(x[base + c], 1.0)); }
  red[li] = acc;
  workgroupBarrier();
  for (var s = ${THREADS / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = merge(red[li], red[li + s]); }
    workgroupBarrier();
  }
  if (!valid || li != 0u) { return; }
  let total = red[0];
  let l = total.x + log(total.y);
  lse[row] = l;
  nll[row] = (l - x[base + u32(t[row])]) * w[row];
}`;

/** Per-row weighted NLL [N] and log-sum-exp [N] of logits [N, C] for int32 targets [N] and weights [N]. */
export function tokenNll(
  rt: GpuRuntime,
  logits: tf.TensorInfo,
  targets: tf.TensorInfo,
  weights: tf.TensorInfo,
): { nll: tf.TensorInfo; lse: tf.TensorInfo } {
  const [rows, classes] = logits.shape;
  const nll = rt.output([rows]);
  const lse = rt.output([rows]);
  const pipeline = rt.pipeline('nll-fwd', () => SOURCE);
  rt.dispatch(pipeline, [nll, lse, logits, targets, weights], [rows, classes], rt.grid(rows));
  return { nll, lse };
}
