/// <reference types="@webgpu/types" />
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { maxRelativeDiff, randomValues, referenceMatMul, roundToHalf } from '../parity.ts';
import { deviceDescriptor, usableMatrixConfig } from './device.ts';
import { gemm, matrixGemmSource } from './gemm.ts';
import { emulated } from './matrix-emulation.ts';
import { F32_TOLERANCE, f16Testable, gpuProbe, useGpu } from './testing.ts';
import type { SubgroupMatrixConfig } from './types.ts';

/**
 * No adapter we can test on has subgroup matrices (Mesa's lavapipe and llvmpipe lack cooperative matrices), so
 * the subgroup-matrix GEMM cannot run here. Dawn's null backend offers every feature without executing
 * anything: there Tint parses and validates the shader and Dawn builds the pipeline, which catches type and
 * builtin errors for the configurations GPUs report (NVIDIA 16×16×16, Apple 8×8×8, Intel 8×16×16). The GEMM's
 * tiling, loads, strides and epilogue then run on the software adapter with the four builtins emulated
 * (matrix-emulation.ts) and are checked against a dense product.
 */
const require = createRequire(import.meta.url);

interface Dawn {
  create(flags: string[]): GPU;
}

/** The null device and its adapter's largest subgroup (Dawn requires workgroups to be a multiple of it). */
async function nullDevice(): Promise<{ gpu: GPUDevice; subgroup: number; maxThreads: number } | string> {
  let dawn: Dawn;
  try {
    dawn = require('webgpu') as Dawn;
  } catch (error) {
    return `the webgpu package did not load: ${(error as Error).message.split('\n')[0]}`;
  }
  const adapter = await dawn
    .create(['backend=null', 'enable-dawn-features=allow_unsafe_apis'])
    .requestAdapter();
  if (!adapter?.features.has('chromium-experimental-subgroup-matrix')) {
    return "Dawn's null backend offers no chromium-experimental-subgroup-matrix";
  }
  const subgroup = Number((adapter as unknown as { info: { subgroupMaxSize: number } }).info.subgroupMaxSize);
  const gpu = await adapter.requestDevice(deviceDescriptor(adapter));
  return { gpu, subgroup, maxThreads: gpu.limits.maxComputeInvocationsPerWorkgroup };
}

const device = await nullDevice();
const skip = typeof device === 'string';
if (skip) console.log(`subgroup-matrix shader validation skipped: ${device}`);

const configs: [string, SubgroupMatrixConfig][] = [
  ['NVIDIA', { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }],
  ['Apple', { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 }],
  ['Intel', { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 16, K: 16 }],
];

describe('usableMatrixConfig', () => {
  it('takes f16→f32 configurations whose shapes divide the GEMM tiles, in the adapter’s order', () => {
    const f16f16 = { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 };
    const odd = { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 48 };
    expect(usableMatrixConfig([f16f16, odd, configs[0][1], configs[1][1]])).toEqual(configs[0][1]);
    expect(usableMatrixConfig([f16f16, odd])).toBeUndefined();
  });
});

describe.skipIf(skip)(
  'subgroup-matrix GEMM shaders pass Tint and pipeline validation (Dawn null backend)',
  () => {
    it.each(configs)('%s configuration, every orientation and operand type', async (_vendor, cfg) => {
      const { gpu, subgroup, maxThreads } = device as {
        gpu: GPUDevice;
        subgroup: number;
        maxThreads: number;
      };
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const bType of ['f32', 'f16'] as const) {
            const code = matrixGemmSource(
              { transA, transB, aType: 'f32', bType, bias: bType === 'f16', activation: 'linear' },
              cfg,
              subgroup,
              maxThreads,
            );
            gpu.pushErrorScope('validation');
            const module = gpu.createShaderModule({ code });
            const info = await module.getCompilationInfo();
            gpu.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
            const error = await gpu.popErrorScope();
            const errors = info.messages
              .filter((m) => m.type === 'error')
              .map((m) => `${m.lineNum}: ${m.message}`);
            expect(errors).toEqual([]);
            expect(error?.message ?? null).toBeNull();
          }
        }
      }
    });
  },
);

const softwareGpu = gpuProbe.available ? gpuProbe : null;

describe.skipIf(!softwareGpu)('subgroup-matrix GEMM with emulated builtins, on the software adapter', () => {
  it.each([
    configs[0],
    configs[1],
  ])('%s configuration: every orientation, batches, bias, a split weight', async (_vendor, cfg) => {
    const rt = await useGpu();
    if (!f16Testable(rt, 'the emulated subgroup-matrix GEMM')) return;
    // 64 lanes hold one (8×8) or four (16×16) result elements each: with 8 lanes llvmpipe took ~1 min per shader
    const subgroup = 64;
    const saved = { matrix: rt.caps.subgroupMatrix, size: rt.caps.subgroupMaxSize, pipeline: rt.pipeline };
    Object.assign(rt.caps, {
      subgroupMatrix: { used: true, reason: 'emulated', config: cfg },
      subgroupMaxSize: subgroup,
    });
    rt.pipeline = (name, source) =>
      saved.pipeline.call(
        rt,
        name,
        name.startsWith('gemm-sgmat') ? () => emulated(source(), cfg, subgroup) : source,
      );
    try {
      const [m, n, k] = [70, 45, 40];
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = randomValues(2 * m * k, 41);
          const b = randomValues(2 * n * k, 42);
          const aShape = transA ? [2, k, m] : [2, m, k];
          const bShape = transB ? [2, n, k] : [2, k, n];
          const expected = referenceMatMul(roundToHalf(a), aShape, roundToHalf(b), bShape, transA, transB);
          const out = tf.engine().makeTensorFromTensorInfo(rt.output([2, m, n]));
          gemm(rt, {
            a: { kind: 'tensor', info: tf.tensor(a, aShape) },
            b: { kind: 'tensor', info: tf.tensor(b, bShape) },
            c: out,
            m,
            n,
            k,
            batch: 2,
            batchedA: true,
            batchedB: true,
            transA,
            transB,
            variant: 'subgroup-matrix',
          });
          expect(maxRelativeDiff(await out.data(), expected.values)).toBeLessThan(F32_TOLERANCE);
          out.dispose();
        }
      }
      // a frozen f16 weight split by rows, both orientations, with the bias epilogue (x·Wᵀ + b, and dy·W)
      const w = randomValues(200 * 48, 43);
      const x = randomValues(37 * 48, 44);
      const dy = randomValues(37 * 200, 45);
      const bias = randomValues(200, 46);
      const before = rt.maxBindingBytes;
      rt.maxBindingBytes = 64 * 48 * 4;
      const weight = tf.tensor2d(w, [200, 48]);
      const frozen = rt.freeze(weight, 'f16');
      rt.maxBindingBytes = before;
      const operand = { kind: 'frozen' as const, dtype: 'f16' as const, chunks: frozen.chunks };
      const forward = tf.engine().makeTensorFromTensorInfo(rt.output([37, 200]));
      gemm(rt, {
        a: { kind: 'tensor', info: tf.tensor2d(x, [37, 48]) },
        b: operand,
        c: forward,
        m: 37,
        n: 200,
        k: 48,
        batch: 1,
        batchedA: false,
        batchedB: false,
        transA: false,
        transB: true,
        bias: tf.tensor1d(bias),
        variant: 'subgroup-matrix',
      });
      const back = tf.engine().makeTensorFromTensorInfo(rt.output([37, 48]));
      gemm(rt, {
        a: { kind: 'tensor', info: tf.tensor2d(dy, [37, 200]) },
        b: operand,
        c: back,
        m: 37,
        n: 48,
        k: 200,
        batch: 1,
        batchedA: false,
        batchedB: false,
        transA: false,
        transB: false,
        variant: 'subgroup-matrix',
      });
      const wh = roundToHalf(w);
      const fwd = referenceMatMul(roundToHalf(x), [37, 48], wh, [200, 48], false, true).values.map(
        (v, i) => v + bias[i % 200],
      );
      const bwd = referenceMatMul(roundToHalf(dy), [37, 200], wh, [200, 48], false, false).values;
      expect(maxRelativeDiff(await forward.data(), fwd)).toBeLessThan(F32_TOLERANCE);
      expect(maxRelativeDiff(await back.data(), bwd)).toBeLessThan(F32_TOLERANCE);
      tf.dispose([forward, back, weight]);
    } finally {
      Object.assign(rt.caps, { subgroupMatrix: saved.matrix, subgroupMaxSize: saved.size });
      rt.pipeline = saved.pipeline;
    }
  });
});
