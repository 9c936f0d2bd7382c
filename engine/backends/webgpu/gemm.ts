/// <reference types="@webgpu/types" />
import type * as tf from '@tensorflow/tfjs-core';
import type { Arg, GpuRuntime, WeightChunk } from './runtime.ts';
import type { SubgroupMatrixConfig } from './types.ts';

/** Epilogue activations of tfjs's `_FusedMatMul` our GEMM applies in place (prelu falls back to the stock kernel). */
export type Activation = 'linear' | 'relu' | 'relu6' | 'sigmoid' | 'elu' | 'leakyrelu';

const ACTIVATION_WGSL: Record<Activation, string> = {
  linear: 'v',
  relu: 'max(v, 0.0)',
  relu6: 'clamp(v, 0.0, 6.0)',
  sigmoid: '1.0 / (1.0 + exp(-v))',
  elu: 'select(exp(v) - 1.0, v, v >= 0.0)',
  leakyrelu: 'select(p.alpha * v, v, v >= 0.0)',
};

export type Storage = 'f32' | 'f16';

/** Which shader computes a product. */
export type GemmVariant = 'tiled' | 'subgroup-matrix';

interface ShaderKey {
  transA: boolean;
  transB: boolean;
  aType: Storage;
  bType: Storage;
  bias: boolean;
  activation: Activation;
}

/**
 * Uniforms shared by both GEMM shaders. Element (b, m, k) of A is at b·sAb + m·sAm + (k + aK0)·sAk, element
 * (b, k, n) of B at b·sBb + k·sBk + n·sBn, and C (b, m, n) at b·sCb + m·ldc + n + c0: strides let one shader
 * serve both orientations, broadcast batches (stride 0) and weights split by rows (aK0, c0).
 */
const PARAMS_WGSL = `struct Params {
  M: u32, N: u32, K: u32, aK0: u32,
  sAm: u32, sAk: u32, sAb: u32, sBk: u32,
  sBn: u32, sBb: u32, ldc: u32, c0: u32,
  sCb: u32, accumulate: u32, epilogue: u32, alpha: f32,
}`;

function header(k: ShaderKey, extraEnables = ''): string {
  const f16 = k.aType === 'f16' || k.bType === 'f16' || extraEnables !== '';
  const biasBinding = k.bias ? '@group(0) @binding(3) var<storage, read> bias: array<f32>;' : '';
  return `${f16 ? 'enable f16;\n' : ''}${extraEnables}${PARAMS_WGSL}
@group(0) @binding(0) var<storage, read_write> C: array<f32>;
@group(0) @binding(1) var<storage, read> A: array<${k.aType}>;
@group(0) @binding(2) var<storage, read> B: array<${k.bType}>;
${biasBinding}
@group(0) @binding(${k.bias ? 4 : 3}) var<uniform> p: Params;

fn loadA(base: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  return f32(A[base + m * p.sAm + (k + p.aK0) * p.sAk]);
}
fn loadB(base: u32, k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  return f32(B[base + k * p.sBk + n * p.sBn]);
}
fn store(batch: u32, m: u32, n: u32, value: f32) {
  if (m >= p.M || n >= p.N) { return; }
  let i = batch * p.sCb + m * p.ldc + n + p.c0;
  var v = value;
  if (p.accumulate != 0u) { v += C[i]; }
  if (p.epilogue != 0u) {
    ${k.bias ? 'v += bias[n + p.c0];' : ''}
    v = ${ACTIVATION_WGSL[k.activation]};
  }
  C[i] = v;
}
`;
}

export interface TileConfig {
  /** Output rows and columns per workgroup, the k depth of a tile, and outputs per thread (4 or 8). */
  bm: number;
  bn: number;
  bk: number;
  tm: number;
  tn: number;
}

export const SMALL_TILE: TileConfig = { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };
export const LARGE_TILE: TileConfig = { bm: 128, bn: 128, bk: 16, tm: 8, tn: 8 };

/**
 * Tiled GEMM: a workgroup of (bn/tn)·(bm/tm) threads computes a bm×bn block of C, staging bk-deep slices of A and
 * B in workgroup memory (as f32, whatever the storage type) with loads that run along each operand's contiguous
 * axis; each thread accumulates tm×tn outputs from vec4 reads of the staged slices.
 */
export function tiledGemmSource(k: ShaderKey, t: TileConfig): string {
  const wx = t.bn / t.tn;
  const wy = t.bm / t.tm;
  const threads = wx * wy;
  const mv = t.tm / 4;
  const nv = t.tn / 4;
  const aIndex = k.transA ? 'let m = e % BM; let kk = e / BM;' : 'let m = e / BK; let kk = e % BK;';
  const bIndex = k.transB ? 'let n = e / BK; let kk = e % BK;' : 'let n = e % BN; let kk = e / BN;';
  return `${header(k)}
const BM = ${t.bm}u; const BN = ${t.bn}u; const BK = ${t.bk}u;
const WX = ${wx}u; const WY = ${wy}u; const THREADS = ${threads}u;
var<workgroup> As: array<vec4<f32>, ${(t.bk * t.bm) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(t.bk * t.bn) / 4}>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let tx = li % WX;
  let ty = li / WX;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let batch = wg.z;
  let aBase = batch * p.sAb;
  let bBase = batch * p.sBb;
  var acc: array<vec4<f32>, ${t.tm * nv}>;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    for (var e = li; e < BM * BK; e += THREADS) {
      ${aIndex}
      As[(kk * BM + m) / 4u][m % 4u] = loadA(aBase, m0 + m, k0 + kk);
    }
    for (var e = li; e < BN * BK; e += THREADS) {
      ${bIndex}
      Bs[(kk * BN + n) / 4u][n % 4u] = loadB(bBase, k0 + kk, n0 + n);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<vec4<f32>, ${mv}>;
      var b: array<vec4<f32>, ${nv}>;
      for (var i = 0u; i < ${mv}u; i++) { a[i] = As[kk * (BM / 4u) + i * WY + ty]; }
      for (var j = 0u; j < ${nv}u; j++) { b[j] = Bs[kk * (BN / 4u) + j * WX + tx]; }
      for (var i = 0u; i < ${t.tm}u; i++) {
        let av = a[i / 4u][i % 4u];
        for (var j = 0u; j < ${nv}u; j++) { acc[i * ${nv}u + j] += av * b[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${t.tm}u; i++) {
    let m = m0 + (i / 4u) * 4u * WY + 4u * ty + i % 4u;
    for (var j = 0u; j < ${nv}u; j++) {
      let n = n0 + j * 4u * WX + 4u * tx;
      let v = acc[i * ${nv}u + j];
      store(batch, m, n, v.x);
      store(batch, m, n + 1u, v.y);
      store(batch, m, n + 2u, v.z);
      store(batch, m, n + 3u, v.w);
    }
  }
}
`;
}

/**
 * Output tile of the subgroup-matrix GEMM: 2×2 subgroups, each 32×16 of C; k slices of 32. Its 14 KiB of
 * workgroup memory fit WebGPU's default limit of 16 KiB.
 */
export const MATRIX_TILE = { bm: 64, bn: 32, bk: 32, sgm: 2, sgn: 2 };

/** Workgroup memory of the subgroup-matrix GEMM: f16 slices of A and B, and the f32 output tile. */
export const MATRIX_GEMM_SHARED_BYTES =
  2 * (MATRIX_TILE.bm + MATRIX_TILE.bn) * MATRIX_TILE.bk + 4 * MATRIX_TILE.bm * MATRIX_TILE.bn;

/**
 * GEMM on subgroup matrices (Dawn's chromium-experimental-subgroup-matrix: cooperative matrices on Vulkan,
 * simdgroup matrices on Metal). Slices of A and B are staged in workgroup memory as f16 (A row-major [m][k], B
 * column-major [n][k]); the tile's 2×2 blocks of 32×16 are spread over the workgroup's subgroups (as many as
 * the adapter's largest subgroup allows within `maxThreads`), each multiplying config-sized matrices into f32
 * accumulators; results go through workgroup memory so edge tiles store with bounds checks. With subgroups
 * smaller than the largest, the surplus ones only stage data. Untested on hardware: no adapter we test on has
 * subgroup matrices; Tint and Dawn validate it on Dawn's null backend.
 */
export function matrixGemmSource(
  k: ShaderKey,
  cfg: SubgroupMatrixConfig,
  subgroupSize: number,
  maxThreads: number,
): string {
  const t = MATRIX_TILE;
  const mm = t.bm / t.sgm / cfg.M;
  const mn = t.bn / t.sgn / cfg.N;
  const blocks = t.sgm * t.sgn;
  const subgroups = Math.max(1, Math.min(blocks, Math.floor(maxThreads / subgroupSize)));
  const perSubgroup = Math.ceil(blocks / subgroups);
  const threads = subgroupSize * subgroups;
  const left = `subgroup_matrix_left<f16, ${cfg.K}, ${cfg.M}>`;
  const right = `subgroup_matrix_right<f16, ${cfg.N}, ${cfg.K}>`;
  const result = `subgroup_matrix_result<f32, ${cfg.N}, ${cfg.M}>`;
  const aIndex = k.transA ? 'let m = e % BM; let kk = e / BM;' : 'let m = e / BK; let kk = e % BK;';
  const bIndex = k.transB ? 'let n = e / BK; let kk = e % BK;' : 'let n = e % BN; let kk = e / BN;';
  // the body runs for each of this subgroup's blocks of MM×MN result matrices (at rows, cols of the tile)
  const eachBlock = (body: string) => `for (var bi = 0u; bi < PER; bi++) {
    let blk = sg + bi * SUBGROUPS;
    if (sg < SUBGROUPS && blk < BLOCKS) {
      let rows = (blk % SGM) * MM * ${cfg.M}u;
      let cols = (blk / SGM) * MN * ${cfg.N}u;
${body}
    }
  }`;
  const enables =
    'enable subgroups;\nenable chromium_experimental_subgroup_matrix;\ndiagnostic(off, chromium.subgroup_matrix_uniformity);\n';
  return `${header(k, enables)}
const BM = ${t.bm}u; const BN = ${t.bn}u; const BK = ${t.bk}u;
const SGM = ${t.sgm}u; const BLOCKS = ${blocks}u; const SUBGROUPS = ${subgroups}u; const PER = ${perSubgroup}u;
const THREADS = ${threads}u; const MM = ${mm}u; const MN = ${mn}u;
var<workgroup> As: array<f16, ${t.bm * t.bk}>;
var<workgroup> Bs: array<f16, ${t.bn * t.bk}>;
var<workgroup> Cs: array<f32, ${t.bm * t.bn}>;

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_id) sg: u32) {
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let batch = wg.z;
  let aBase = batch * p.sAb;
  let bBase = batch * p.sBb;
  var acc: array<${result}, ${mm * mn * perSubgroup}>;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    for (var e = li; e < BM * BK; e += THREADS) {
      ${aIndex}
      As[m * BK + kk] = f16(loadA(aBase, m0 + m, k0 + kk));
    }
    for (var e = li; e < BN * BK; e += THREADS) {
      ${bIndex}
      Bs[n * BK + kk] = f16(loadB(bBase, k0 + kk, n0 + n));
    }
    workgroupBarrier();
    ${eachBlock(`
        for (var kk = 0u; kk < BK; kk += ${cfg.K}u) {
          var l: array<${left}, ${mm}>;
          for (var i = 0u; i < MM; i++) {
            l[i] = subgroupMatrixLoad<${left}>(&As, (rows + i * ${cfg.M}u) * BK + kk, false, BK);
          }
          for (var j = 0u; j < MN; j++) {
            let r = subgroupMatrixLoad<${right}>(&Bs, (cols + j * ${cfg.N}u) * BK + kk, true, BK);
            for (var i = 0u; i < MM; i++) {
              let a = (bi * MM + i) * MN + j;
              acc[a] = subgroupMatrixMultiplyAccumulate(l[i], r, acc[a]);
            }
          }
        }
    `)}
    workgroupBarrier();
  }
  ${eachBlock(`
      for (var i = 0u; i < MM; i++) {
        for (var j = 0u; j < MN; j++) {
          let offset = (rows + i * ${cfg.M}u) * BN + cols + j * ${cfg.N}u;
          subgroupMatrixStore(&Cs, offset, acc[(bi * MM + i) * MN + j], false, BN);
        }
      }
  `)}
  workgroupBarrier();
  for (var e = li; e < BM * BN; e += THREADS) {
    store(batch, m0 + e / BN, n0 + e % BN, Cs[e]);
  }
}
`;
}

/** One GEMM operand: a tfjs tensor's buffer, or a frozen weight's row chunks in their storage type. */
export type GemmOperand =
  | { kind: 'tensor'; info: tf.TensorInfo }
  | { kind: 'frozen'; dtype: Storage; chunks: WeightChunk[] };

export interface GemmArgs {
  a: GemmOperand;
  b: GemmOperand;
  /** Output [batch·M, N] (or [batch, M, N]) tfjs tensor. */
  c: tf.TensorInfo;
  m: number;
  n: number;
  k: number;
  batch: number;
  /** Whether A / B advance with the batch (false: one matrix broadcast over it). */
  batchedA: boolean;
  batchedB: boolean;
  transA: boolean;
  transB: boolean;
  bias?: tf.TensorInfo;
  activation?: Activation;
  alpha?: number;
  variant: GemmVariant;
}

/** The pipeline cache key of a GEMM shader: orientation, operand types, epilogue, and the tile or matrix shape. */
function gemmPipelineName(
  k: ShaderKey,
  shape: TileConfig | { matrix: SubgroupMatrixConfig; subgroupSize: number },
): string {
  const variant =
    'matrix' in shape
      ? `sgmat${shape.matrix.M}x${shape.matrix.N}x${shape.matrix.K}s${shape.subgroupSize}`
      : `tiled${shape.bm}`;
  return `gemm-${variant}-${k.transA ? 'T' : 'N'}${k.transB ? 'T' : 'N'}-${k.aType}${k.bType}-${k.bias ? 'bias-' : ''}${k.activation}`;
}

/** The shader variant for a product: subgroup matrices when an operand is f16 and the device has them. */
export function chooseVariant(rt: GpuRuntime, aType: Storage, bType: Storage): GemmVariant {
  return rt.caps.subgroupMatrix.used && (aType === 'f16' || bType === 'f16') ? 'subgroup-matrix' : 'tiled';
}

function storageOf(op: GemmOperand): Storage {
  return op.kind === 'tensor' ? 'f32' : op.dtype;
}

/**
 * C = op(A)·op(B) (+ bias, activation). A frozen B is split by stored rows: for Bᵀ (rows = n) each chunk fills
 * its own columns of C; for B (rows = k) each chunk adds its partial product, the epilogue on the last.
 */
export function gemm(rt: GpuRuntime, g: GemmArgs): void {
  if (g.a.kind === 'frozen' && g.a.chunks.length > 1) throw new Error('webgpu gemm: A must fit one binding');
  const key: ShaderKey = {
    transA: g.transA,
    transB: g.transB,
    aType: storageOf(g.a),
    bType: storageOf(g.b),
    bias: g.bias !== undefined,
    activation: g.activation ?? 'linear',
  };
  const cfg = rt.caps.subgroupMatrix.config;
  const matrix = g.variant === 'subgroup-matrix';
  if (matrix && !cfg) throw new Error('webgpu gemm: this device has no usable subgroup-matrix configuration');
  const tile = matrix ? null : g.m >= 128 && g.n >= 128 ? LARGE_TILE : SMALL_TILE;
  const name = gemmPipelineName(
    key,
    matrix ? { matrix: cfg!, subgroupSize: rt.caps.subgroupMaxSize } : tile!,
  );
  const pipeline = rt.pipeline(name, () =>
    matrix
      ? matrixGemmSource(key, cfg!, rt.caps.subgroupMaxSize, rt.caps.limits.maxComputeInvocationsPerWorkgroup)
      : tiledGemmSource(key, tile!),
  );
  const bm = matrix ? MATRIX_TILE.bm : tile!.bm;
  const bn = matrix ? MATRIX_TILE.bn : tile!.bn;
  const aArg: Arg = g.a.kind === 'tensor' ? g.a.info : g.a.chunks[0].buffer;
  const sAm = g.transA ? 1 : g.k;
  const sAk = g.transA ? g.m : 1;
  const aBatch = g.batchedA ? g.m * g.k : 0;
  const bChunks =
    g.b.kind === 'tensor'
      ? [{ arg: g.b.info as Arg, row: 0, rows: g.transB ? g.n : g.k }]
      : g.b.chunks.map((c) => ({ arg: c.buffer as Arg, row: c.row, rows: c.rows }));
  const tail = g.bias ? [g.bias] : [];
  bChunks.forEach((chunk, i) => {
    const last = i === bChunks.length - 1;
    // B stored [k][n] (row stride n) or, transposed, [n][k] (row stride k)
    const n = g.transB ? chunk.rows : g.n;
    const k = g.transB ? g.k : chunk.rows;
    const sBk = g.transB ? 1 : g.n;
    const sBn = g.transB ? g.k : 1;
    const bBatch = g.batchedB ? g.n * g.k : 0;
    const uniforms = [
      g.m,
      n,
      k,
      g.transB ? 0 : chunk.row,
      sAm,
      sAk,
      aBatch,
      sBk,
      sBn,
      bBatch,
      g.n,
      g.transB ? chunk.row : 0,
      g.m * g.n,
      !g.transB && i > 0 ? 1 : 0,
      g.transB || last ? 1 : 0,
      { f32: g.alpha ?? 0.2 },
    ];
    rt.dispatch(pipeline, [g.c, aArg, chunk.arg, ...tail], uniforms, [
      Math.ceil(n / bn),
      Math.ceil(g.m / bm),
      g.batch,
    ]);
  });
}
