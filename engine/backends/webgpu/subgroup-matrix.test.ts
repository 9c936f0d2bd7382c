/// <reference types="@webgpu/types" />
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { deviceDescriptor, usableMatrixConfig } from './device.ts';
import { matrixGemmSource } from './gemm.ts';
import type { SubgroupMatrixConfig } from './types.ts';

/**
 * No adapter we can test on has subgroup matrices (Mesa's lavapipe and llvmpipe lack cooperative matrices), so
 * the subgroup-matrix GEMM cannot run here. Dawn's null backend offers every feature without executing
 * anything: there Tint parses and validates the shader and Dawn builds the pipeline, which catches type and
 * builtin errors for the configurations GPUs report (NVIDIA 16×16×16, Apple 8×8×8, Intel 8×16×16).
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
