/// <reference types="@webgpu/types" />
import { describe, expect, it } from 'vitest';
import { capabilitiesOf, deviceDescriptor, disabledPaths } from './device.ts';

const LIMITS = {
  maxBufferSize: 2 ** 32,
  maxStorageBufferBindingSize: 2 ** 31,
  maxStorageBuffersPerShaderStage: 16,
  maxComputeWorkgroupStorageSize: 49152,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupsPerDimension: 65535,
};
const NVIDIA = { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 };

function device(features: string[], limits: Partial<typeof LIMITS> = {}): GPUDevice {
  return { features: new Set(features), limits: { ...LIMITS, ...limits } } as unknown as GPUDevice;
}
const info = (configs: unknown[] = [NVIDIA]) =>
  ({
    vendor: 'nvidia',
    architecture: 'hopper',
    device: '',
    description: 'H200',
    subgroupMinSize: 32,
    subgroupMaxSize: 32,
    subgroupMatrixConfigs: configs,
  }) as unknown as GPUAdapterInfo;

const ALL = ['shader-f16', 'subgroups', 'subgroup-size-control', 'chromium-experimental-subgroup-matrix'];

describe('capabilitiesOf', () => {
  it('uses f16 weights and subgroup matrices where the device has them all', () => {
    const caps = capabilitiesOf(device(ALL), info(), new Set());
    expect(caps.f16.used).toBe(true);
    expect(caps.subgroupMatrix).toMatchObject({ used: true, config: NVIDIA });
    expect(caps.subgroupMatrix.reason).toMatch(/16×16×16 f16→f32.*not yet verified on hardware/);
    expect(caps.adapter.description).toBe('H200');
  });

  it.each([
    [
      'no shader-f16',
      ALL.filter((f) => f !== 'shader-f16'),
      [NVIDIA],
      /f16 path, which is off: the adapter lacks shader-f16/,
    ],
    [
      'no subgroup matrices',
      ['shader-f16', 'subgroups'],
      [NVIDIA],
      /lacks chromium-experimental-subgroup-matrix/,
    ],
    [
      'only f16→f16 configurations',
      ALL,
      [{ ...NVIDIA, resultComponentType: 'f16' }],
      /no f16→f32 configuration/,
    ],
    ['no subgroups', ALL.filter((f) => f !== 'subgroups'), [NVIDIA], /need the subgroups feature/],
  ])('says why subgroup matrices are not used: %s', (_label, features, configs, reason) => {
    const caps = capabilitiesOf(device(features), info(configs), new Set());
    expect(caps.subgroupMatrix.used).toBe(false);
    expect(caps.subgroupMatrix.reason).toMatch(reason);
  });

  it('honours STUDIO_WEBGPU_DISABLE and rejects unknown paths by name', () => {
    const caps = capabilitiesOf(device(ALL), info(), disabledPaths('subgroup-matrix'));
    expect(caps.f16.used).toBe(true);
    expect(caps.subgroupMatrix).toMatchObject({
      used: false,
      reason: 'switched off by STUDIO_WEBGPU_DISABLE',
    });
    expect(capabilitiesOf(device(ALL), info(), disabledPaths(' f16 ')).subgroupMatrix.used).toBe(false);
    expect(() => disabledPaths('f16,tensor-cores')).toThrow(
      /unknown path "tensor-cores" \(expected f16, subgroup-matrix\)/,
    );
  });
});

describe('deviceDescriptor', () => {
  it('asks for every wanted feature the adapter has and its own limits', () => {
    const adapter = {
      features: new Set(['shader-f16', 'texture-compression-bc', 'subgroups']),
      limits: LIMITS,
    } as unknown as GPUAdapter;
    const d = deviceDescriptor(adapter);
    expect([...(d.requiredFeatures as string[])].sort()).toEqual(['shader-f16', 'subgroups']);
    expect(d.requiredLimits).toMatchObject({
      maxStorageBufferBindingSize: 2 ** 31,
      maxStorageBuffersPerShaderStage: 16,
    });
  });
});
