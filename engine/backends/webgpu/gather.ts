import * as tf from '@tensorflow/tfjs-core';
import type { GpuRuntime } from './runtime.ts';

/**
 * Rows of a frozen weight's GPU copy (an embedding lookup), one dispatch per chunk: each writes the rows whose
 * id falls in its chunk; the first also zeroes rows of ids outside the weight, as tfjs's gather does.
 */
function source(half: boolean): string {
  return `${half ? 'enable f16;\n' : ''}struct P { n: u32, cols: u32, row0: u32, rows: u32, total: u32, first: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<${half ? 'f16' : 'f32'}>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n * p.cols) { return; }
  let r = i / p.cols;
  let c = i % p.cols;
  let id = ids[r];
  if (id >= i32(p.row0) && id < i32(p.row0 + p.rows)) {
    out[i] = f32(w[(u32(id) - p.row0) * p.cols + c]);
  } else if (p.first != 0u && (id < 0 || id >= i32(p.total))) {
    out[i] = 0.0;
  }
}`;
}

/** gather(weight, ids) along axis 0 from the frozen copy, or null when `x` has none. */
export function gatherFrozen(rt: GpuRuntime, x: tf.TensorInfo, indices: tf.TensorInfo): tf.TensorInfo | null {
  const weight = rt.frozen.get(x.dataId);
  if (!weight || indices.dtype !== 'int32') return null;
  const n = tf.util.sizeFromShape(indices.shape);
  const out = rt.output([...indices.shape, weight.cols]);
  const half = weight.dtype === 'f16';
  const pipeline = rt.pipeline(`gather-${weight.dtype}`, () => source(half));
  weight.chunks.forEach((chunk, i) => {
    rt.dispatch(
      pipeline,
      [out, chunk.buffer, indices],
      [n, weight.cols, chunk.row, chunk.rows, weight.rows, i === 0 ? 1 : 0],
      rt.grid(Math.ceil((n * weight.cols) / 256)),
    );
  });
  return out;
}
