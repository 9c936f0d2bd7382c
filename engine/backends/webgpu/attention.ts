import type * as tf from '@tensorflow/tfjs-core';
import type { GpuRuntime } from './runtime.ts';

/**
 * Fused attention, flash style: softmax(q·kᵀ·scale + bias)·v without the [B, H, Tq, Tk] scores, forward
 * and backward, for q [B, H, Tq, d] and k, v [B, Hkv, Tk, d] (grouped-query attention reads each kv head for its
 * H/Hkv query heads: nothing is copied) with the additive mask bias [B, 1, Tq, Tk] of models/ops.ts.
 *
 * Every kernel gives a row (a query, or in dK/dV a key) 8 lanes: each lane scores a share of the other side's
 * block and accumulates every 8th of the d output components, so accumulators stay in registers. Rows read in
 * dot products are padded to d + 1 floats in workgroup memory to spread them over banks. A (row block, key
 * block) tile whose bias is masked everywhere (bias ≤ −5·10⁸; ops.ts masks with −10⁹) is skipped, which
 * halves causal attention. Rows that see no key at all (left padding) therefore differ from the composed ops,
 * which average every value for them: such rows carry no loss.
 */

/** Lanes per row; d must be a multiple. */
const LANES = 8;
/** Rows and blocks per kernel: [own rows per workgroup, other-side rows per block]. */
const FORWARD = { rows: 16, block: 16 };
const GRAD_Q = { rows: 8, block: 16 };
const GRAD_KV = { rows: 16, block: 8 };

function sharedFloats(d: number): number {
  const f = FORWARD.rows * d + FORWARD.block * (2 * d + 1) + FORWARD.rows * FORWARD.block;
  const q = 2 * GRAD_Q.rows * d + 2 * GRAD_Q.block * (d + 1) + GRAD_Q.rows * GRAD_Q.block;
  const kv = 2 * GRAD_KV.rows * (d + 1) + 2 * GRAD_KV.block * (d + 1) + 2 * GRAD_KV.rows * GRAD_KV.block;
  return Math.max(f, q, kv);
}

/** Whether the fused kernels take these shapes on this device (else the composed ops run). */
export function attentionFits(rt: GpuRuntime, q: number[], k: number[], bias: number[]): boolean {
  const [b, h, tq, d] = q;
  const [bk, hkv, tk, dk] = k;
  return (
    d === dk &&
    b === bk &&
    h % hkv === 0 &&
    d % LANES === 0 &&
    d <= 256 &&
    bias.length === 4 &&
    bias[0] === b &&
    bias[1] === 1 &&
    (bias[2] === tq || bias[2] === 1) &&
    bias[3] === tk &&
    sharedFloats(d) * 4 <= rt.caps.limits.maxComputeWorkgroupStorageSize
  );
}

const COMMON = `struct P { H: u32, Hkv: u32, Tq: u32, Tk: u32, rep: u32, scale: f32, biasB: u32, biasQ: u32 }
const L = ${LANES}u;
const MASKED = -5.0e8;
const NONE = -3.0e38;
var<workgroup> visible: array<atomic<u32>, 2>;
/** Whether any lane saw an unmasked entry of this tile: uniform over the workgroup, one flag per parity. */
fn tileVisible(any: bool, it: u32, li: u32) -> bool {
  if (any) { atomicOr(&visible[it % 2u], 1u); }
  let seen = workgroupUniformLoad(&visible[it % 2u]);
  if (li == 0u) { atomicStore(&visible[(it + 1u) % 2u], 0u); }
  return seen != 0u;
}`;

/** A query-block kernel's indices: its row of R, the lane, the head's q and kv bases, the bias row. */
const QUERY_ROWS = `  let r = li / L;
  let lane = li % L;
  let h = wg.y;
  let b = wg.z;
  let q0 = wg.x * R;
  let row = q0 + r;
  let rowOk = row < p.Tq;
  let qBase = (b * p.H + h) * p.Tq * D;
  let kBase = (b * p.Hkv + h / p.rep) * p.Tk * D;
  let biasRow = b * p.biasB + min(row, p.Tq - 1u) * p.biasQ;`;

/**
 * Key block kb of a query-block kernel: the row's bias entries into bs, the block skipped when the whole
 * workgroup sees it fully masked, else its keys (padded rows) and values (at `valueIndex`) in workgroup memory.
 */
function keyTile(valueIndex: string): string {
  return `    workgroupBarrier();
    let k0 = kb * C;
    var bs: array<f32, CL>;
    var any = false;
    for (var c = 0u; c < CL; c++) {
      let key = k0 + lane + c * L;
      var bv = NONE;
      if (rowOk && key < p.Tk) { bv = bias[biasRow + key]; any = any || bv > MASKED; }
      bs[c] = bv;
    }
    if (!tileVisible(any, kb, li)) { continue; }
    for (var e = li; e < C * D; e += R * L) {
      let key = k0 + e / D;
      var kv = 0.0;
      var vv = 0.0;
      if (key < p.Tk) { kv = k[kBase + key * D + e % D]; vv = v[kBase + key * D + e % D]; }
      Ks[(e / D) * DP + e % D] = kv;
      Vs[${valueIndex}] = vv;
    }
    workgroupBarrier();`;
}

function forwardSource(d: number): string {
  const { rows: R, block: C } = FORWARD;
  return `${COMMON}
@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@group(0) @binding(1) var<storage, read_write> lse: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<uniform> p: P;
const R = ${R}u; const C = ${C}u; const D = ${d}u; const DP = ${d + 1}u; const DL = ${d / LANES}u; const CL = ${C / LANES}u;
var<workgroup> Qs: array<f32, ${R * d}>;
var<workgroup> Ks: array<f32, ${C * (d + 1)}>;
var<workgroup> Vs: array<f32, ${C * d}>;
var<workgroup> S: array<f32, ${R * C}>;

@compute @workgroup_size(${R * LANES})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
${QUERY_ROWS}
  for (var e = li; e < R * D; e += R * L) {
    let qr = q0 + e / D;
    var x = 0.0;
    if (qr < p.Tq) { x = q[qBase + qr * D + e % D]; }
    Qs[e] = x;
  }
  if (li == 0u) { atomicStore(&visible[0], 0u); }
  var m = NONE;
  var l = 0.0;
  var acc: array<f32, DL>;
  let blocks = (p.Tk + C - 1u) / C;
  for (var kb = 0u; kb < blocks; kb++) {
${keyTile('e')}
    for (var c = 0u; c < CL; c++) {
      let cc = lane + c * L;
      var s = NONE;
      if (bs[c] != NONE) {
        var dot = 0.0;
        for (var i = 0u; i < D; i++) { dot += Qs[r * D + i] * Ks[cc * DP + i]; }
        s = dot * p.scale + bs[c];
      }
      S[r * C + cc] = s;
    }
    workgroupBarrier();
    var mx = m;
    for (var c = 0u; c < C; c++) { mx = max(mx, S[r * C + c]); }
    let alpha = exp(m - mx);
    l *= alpha;
    for (var j = 0u; j < DL; j++) { acc[j] *= alpha; }
    for (var c = 0u; c < C; c++) {
      let pc = exp(S[r * C + c] - mx);
      l += pc;
      for (var j = 0u; j < DL; j++) { acc[j] += pc * Vs[c * D + lane + j * L]; }
    }
    m = mx;
  }
  if (!rowOk) { return; }
  for (var j = 0u; j < DL; j++) { o[qBase + row * D + lane + j * L] = acc[j] / l; }
  if (lane == 0u) { lse[(b * p.H + h) * p.Tq + row] = m + log(l); }
}`;
}

/** stats[2i] = lse[i], stats[2i+1] = Σ dO·O over row i: the per-row terms of the backward. */
const STATS_SOURCE = `struct P { rows: u32, d: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read_write> stats: array<f32>;
@group(0) @binding(1) var<storage, read> lse: array<f32>;
@group(0) @binding(2) var<storage, read> o: array<f32>;
@group(0) @binding(3) var<storage, read> dO: array<f32>;
@group(0) @binding(4) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.rows) { return; }
  var s = 0.0;
  for (var j = 0u; j < p.d; j++) { s += dO[i * p.d + j] * o[i * p.d + j]; }
  stats[2u * i] = lse[i];
  stats[2u * i + 1u] = s;
}`;

/** dQ = scale·Σ_keys P∘(dO·Vᵀ − D)·K per query block. */
function gradQSource(d: number): string {
  const { rows: R, block: C } = GRAD_Q;
  return `${COMMON}
@group(0) @binding(0) var<storage, read_write> dq: array<f32>;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> dO: array<f32>;
@group(0) @binding(6) var<storage, read> stats: array<f32>;
@group(0) @binding(7) var<uniform> p: P;
const R = ${R}u; const C = ${C}u; const D = ${d}u; const DP = ${d + 1}u; const DL = ${d / LANES}u; const CL = ${C / LANES}u;
var<workgroup> Qs: array<f32, ${R * d}>;
var<workgroup> dOs: array<f32, ${R * d}>;
var<workgroup> Ks: array<f32, ${C * (d + 1)}>;
var<workgroup> Vs: array<f32, ${C * (d + 1)}>;
var<workgroup> S: array<f32, ${R * C}>;

@compute @workgroup_size(${R * LANES})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
${QUERY_ROWS}
  let stat = (b * p.H + h) * p.Tq + min(row, p.Tq - 1u);
  let rowLse = stats[2u * stat];
  let rowD = stats[2u * stat + 1u];
  for (var e = li; e < R * D; e += R * L) {
    let qr = q0 + e / D;
    var x = 0.0;
    var g = 0.0;
    if (qr < p.Tq) { x = q[qBase + qr * D + e % D]; g = dO[qBase + qr * D + e % D]; }
    Qs[e] = x;
    dOs[e] = g;
  }
  if (li == 0u) { atomicStore(&visible[0], 0u); }
  var acc: array<f32, DL>;
  let blocks = (p.Tk + C - 1u) / C;
  for (var kb = 0u; kb < blocks; kb++) {
${keyTile('(e / D) * DP + e % D')}
    for (var c = 0u; c < CL; c++) {
      let cc = lane + c * L;
      var ds = 0.0;
      if (bs[c] != NONE) {
        var s = 0.0;
        var dp = 0.0;
        for (var i = 0u; i < D; i++) {
          s += Qs[r * D + i] * Ks[cc * DP + i];
          dp += dOs[r * D + i] * Vs[cc * DP + i];
        }
        let pr = exp(s * p.scale + bs[c] - rowLse);
        ds = pr * (dp - rowD);
      }
      S[r * C + cc] = ds;
    }
    workgroupBarrier();
    for (var c = 0u; c < C; c++) {
      let ds = S[r * C + c];
      for (var j = 0u; j < DL; j++) { acc[j] += ds * Ks[c * DP + lane + j * L]; }
    }
  }
  if (!rowOk) { return; }
  for (var j = 0u; j < DL; j++) { dq[qBase + row * D + lane + j * L] = acc[j] * p.scale; }
}`;
}

/** dV = Σ_queries Pᵀ·dO and dK = scale·Σ_queries dSᵀ·Q per key block, over the kv head's query heads. */
function gradKVSource(d: number): string {
  const { rows: R, block: C } = GRAD_KV;
  return `${COMMON}
@group(0) @binding(0) var<storage, read_write> dk: array<f32>;
@group(0) @binding(1) var<storage, read_write> dv: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read> dO: array<f32>;
@group(0) @binding(7) var<storage, read> stats: array<f32>;
@group(0) @binding(8) var<uniform> p: P;
const R = ${R}u; const C = ${C}u; const D = ${d}u; const DP = ${d + 1}u; const DL = ${d / LANES}u;
var<workgroup> Ks: array<f32, ${R * (d + 1)}>;
var<workgroup> Vs: array<f32, ${R * (d + 1)}>;
var<workgroup> Qs: array<f32, ${C * (d + 1)}>;
var<workgroup> dOs: array<f32, ${C * (d + 1)}>;
var<workgroup> Pm: array<f32, ${R * C}>;
var<workgroup> DS: array<f32, ${R * C}>;

@compute @workgroup_size(${R * LANES})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let c = li / L;
  let lane = li % L;
  let g = wg.y;
  let b = wg.z;
  let k0 = wg.x * R;
  let key = k0 + c;
  let keyOk = key < p.Tk;
  let kBase = (b * p.Hkv + g) * p.Tk * D;
  for (var e = li; e < R * D; e += R * L) {
    let kr = k0 + e / D;
    var kv = 0.0;
    var vv = 0.0;
    if (kr < p.Tk) { kv = k[kBase + kr * D + e % D]; vv = v[kBase + kr * D + e % D]; }
    Ks[(e / D) * DP + e % D] = kv;
    Vs[(e / D) * DP + e % D] = vv;
  }
  if (li == 0u) { atomicStore(&visible[0], 0u); }
  var accK: array<f32, DL>;
  var accV: array<f32, DL>;
  let blocks = (p.Tq + C - 1u) / C;
  for (var it = 0u; it < p.rep * blocks; it++) {
    workgroupBarrier();
    let h = g * p.rep + it / blocks;
    let qb0 = (it % blocks) * C;
    let qrow = qb0 + lane;
    let ok = keyOk && qrow < p.Tq;
    var bv = NONE;
    if (ok) { bv = bias[b * p.biasB + qrow * p.biasQ + key]; }
    if (!tileVisible(bv > MASKED, it, li)) { continue; }
    let qBase = (b * p.H + h) * p.Tq * D;
    for (var e = li; e < C * D; e += R * L) {
      let qr = qb0 + e / D;
      var x = 0.0;
      var gr = 0.0;
      if (qr < p.Tq) { x = q[qBase + qr * D + e % D]; gr = dO[qBase + qr * D + e % D]; }
      Qs[(e / D) * DP + e % D] = x;
      dOs[(e / D) * DP + e % D] = gr;
    }
    workgroupBarrier();
    var pr = 0.0;
    var ds = 0.0;
    if (ok) {
      let stat = (b * p.H + h) * p.Tq + qrow;
      var s = 0.0;
      var dp = 0.0;
      for (var i = 0u; i < D; i++) {
        s += Qs[lane * DP + i] * Ks[c * DP + i];
        dp += dOs[lane * DP + i] * Vs[c * DP + i];
      }
      pr = exp(s * p.scale + bv - stats[2u * stat]);
      ds = pr * (dp - stats[2u * stat + 1u]);
    }
    Pm[c * C + lane] = pr;
    DS[c * C + lane] = ds;
    workgroupBarrier();
    for (var qq = 0u; qq < C; qq++) {
      let pq = Pm[c * C + qq];
      let dq = DS[c * C + qq];
      for (var j = 0u; j < DL; j++) {
        accV[j] += pq * dOs[qq * DP + lane + j * L];
        accK[j] += dq * Qs[qq * DP + lane + j * L];
      }
    }
  }
  if (!keyOk) { return; }
  for (var j = 0u; j < DL; j++) {
    dk[kBase + key * D + lane + j * L] = accK[j] * p.scale;
    dv[kBase + key * D + lane + j * L] = accV[j];
  }
}`;
}

/** Uniforms of the three kernels; a bias of one row ([B, 1, 1, Tk], encoders) is broadcast over queries. */
function uniforms(q: number[], k: number[], bias: number[], scale: number) {
  const [, h, tq] = q;
  const [, hkv, tk] = k;
  return [h, hkv, tq, tk, h / hkv, { f32: scale }, bias[2] * tk, bias[2] === 1 ? 0 : tk];
}

/** Output [B, H, Tq, d] and per-row log-sum-exp [B, H, Tq]. */
export function attentionForward(
  rt: GpuRuntime,
  q: tf.TensorInfo,
  k: tf.TensorInfo,
  v: tf.TensorInfo,
  bias: tf.TensorInfo,
  scale: number,
): { o: tf.TensorInfo; lse: tf.TensorInfo } {
  const [b, h, tq, d] = q.shape;
  const o = rt.output(q.shape);
  const lse = rt.output([b, h, tq]);
  const pipeline = rt.pipeline(`attn-fwd-${d}`, () => forwardSource(d));
  rt.dispatch(pipeline, [o, lse, q, k, v, bias], uniforms(q.shape, k.shape, bias.shape, scale), [
    Math.ceil(tq / FORWARD.rows),
    h,
    b,
  ]);
  return { o, lse };
}

/** Gradients [dq, dk, dv] from the forward's inputs, output and log-sum-exp. */
export function attentionBackward(
  rt: GpuRuntime,
  q: tf.TensorInfo,
  k: tf.TensorInfo,
  v: tf.TensorInfo,
  bias: tf.TensorInfo,
  o: tf.TensorInfo,
  lse: tf.TensorInfo,
  dO: tf.TensorInfo,
  scale: number,
): tf.TensorInfo[] {
  const [b, h, tq, d] = q.shape;
  const [, hkv, tk] = k.shape;
  const rows = b * h * tq;
  const stats = rt.output([rows, 2]);
  rt.dispatch(
    rt.pipeline('attn-stats', () => STATS_SOURCE),
    [stats, lse, o, dO],
    [rows, d],
    rt.grid(Math.ceil(rows / 64)),
  );
  const dq = rt.output(q.shape);
  const dk = rt.output(k.shape);
  const dv = rt.output(v.shape);
  const u = uniforms(q.shape, k.shape, bias.shape, scale);
  rt.dispatch(
    rt.pipeline(`attn-dq-${d}`, () => gradQSource(d)),
    [dq, q, k, v, bias, dO, stats],
    u,
    [Math.ceil(tq / GRAD_Q.rows), h, b],
  );
  rt.dispatch(
    rt.pipeline(`attn-dkv-${d}`, () => gradKVSource(d)),
    [dk, dv, q, k, v, bias, dO, stats],
    u,
    [Math.ceil(tk / GRAD_KV.rows), hkv, b],
  );
  rt.backend.disposeData(stats.dataId);
  return [dq, dk, dv];
}
