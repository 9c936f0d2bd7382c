/// <reference types="@webgpu/types" />
import { MATRIX_GEMM_SHARED_BYTES, MATRIX_TILE } from './gemm.ts';
import type { FeaturePath, GpuCapabilities, SubgroupMatrixConfig } from './types.ts';

/** Optional features our kernels use, requested whenever the adapter offers them. */
const WANTED_FEATURES = [
  'shader-f16',
  'subgroups',
  'subgroup-size-control',
  'chromium-experimental-subgroup-matrix',
  'timestamp-query',
] as const;

/** Limits raised from WebGPU's defaults (8 storage buffers, 128 MiB bindings, 16 KiB workgroup memory). */
const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** Kernel paths a user can switch off with `STUDIO_WEBGPU_DISABLE=f16,subgroup-matrix` (e.g. to compare). */
export type DisablablePath = 'f16' | 'subgroup-matrix';

export function disabledPaths(raw = process.env.STUDIO_WEBGPU_DISABLE ?? ''): Set<DisablablePath> {
  const out = new Set<DisablablePath>();
  for (const item of raw.split(',').map((s) => s.trim().toLowerCase())) {
    if (item === '') continue;
    if (item !== 'f16' && item !== 'subgroup-matrix') {
      throw new Error(`STUDIO_WEBGPU_DISABLE: unknown path "${item}" (expected f16, subgroup-matrix)`);
    }
    out.add(item);
  }
  return out;
}

/** The device descriptor for an adapter: every wanted feature it has, and its own limits for the wanted ones. */
export function deviceDescriptor(adapter: GPUAdapter): GPUDeviceDescriptor {
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number | undefined>)[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  return { requiredFeatures, requiredLimits };
}

function matrixConfigs(info: GPUAdapterInfo | undefined): SubgroupMatrixConfig[] {
  const raw = (info as { subgroupMatrixConfigs?: SubgroupMatrixConfig[] } | undefined)?.subgroupMatrixConfigs;
  return Array.from(raw ?? [], (c) => ({
    componentType: String(c.componentType),
    resultComponentType: String(c.resultComponentType),
    M: Number(c.M),
    N: Number(c.N),
    K: Number(c.K),
  }));
}

/**
 * The configuration our subgroup-matrix GEMM can use: f16 operands, f32 results, and shapes that divide its
 * per-subgroup block (32 rows, 16 columns) and k slice (32).
 */
export function usableMatrixConfig(configs: SubgroupMatrixConfig[]): SubgroupMatrixConfig | undefined {
  const rows = MATRIX_TILE.bm / MATRIX_TILE.sgm;
  const cols = MATRIX_TILE.bn / MATRIX_TILE.sgn;
  return configs.find(
    (c) =>
      c.componentType === 'f16' &&
      c.resultComponentType === 'f32' &&
      MATRIX_TILE.bk % c.K === 0 &&
      rows % c.M === 0 &&
      cols % c.N === 0,
  );
}

/** Which kernel paths the device runs and why, from its features, the adapter's configs and the user's switches. */
export function capabilitiesOf(
  device: GPUDevice,
  info: GPUAdapterInfo | undefined,
  disabled: Set<DisablablePath> = disabledPaths(),
): GpuCapabilities {
  const features = [...device.features].map(String).sort();
  const has = (f: string) => device.features.has(f);
  const limits = device.limits;
  const configs = matrixConfigs(info);
  const subgroupMaxSize = Number((info as { subgroupMaxSize?: number } | undefined)?.subgroupMaxSize ?? 0);
  const subgroupMinSize = Number((info as { subgroupMinSize?: number } | undefined)?.subgroupMinSize ?? 0);

  const f16: FeaturePath = disabled.has('f16')
    ? { used: false, reason: 'switched off by STUDIO_WEBGPU_DISABLE' }
    : has('shader-f16')
      ? { used: true, reason: 'shader-f16: frozen weights of bf16/f16 checkpoints are stored as f16' }
      : { used: false, reason: 'the adapter lacks shader-f16: frozen weights stay f32' };
  const subgroups: FeaturePath = has('subgroups')
    ? {
        used: false,
        reason: `subgroups of ${subgroupMinSize}–${subgroupMaxSize} lanes: needed by the subgroup-matrix path only (reductions use workgroup memory)`,
      }
    : { used: false, reason: 'the adapter lacks subgroups' };
  const config = usableMatrixConfig(configs);
  let subgroupMatrix: GpuCapabilities['subgroupMatrix'];
  if (!has('chromium-experimental-subgroup-matrix')) {
    subgroupMatrix = {
      used: false,
      reason:
        'the adapter lacks chromium-experimental-subgroup-matrix (Vulkan VK_KHR_cooperative_matrix or Metal simdgroup matrices)',
    };
  } else if (!config) {
    subgroupMatrix = {
      used: false,
      reason: `no f16→f32 configuration our GEMM tiles fit among ${JSON.stringify(configs)}`,
    };
  } else if (!f16.used) {
    subgroupMatrix = { used: false, reason: `needs the f16 path, which is off: ${f16.reason}`, config };
  } else if (disabled.has('subgroup-matrix')) {
    subgroupMatrix = { used: false, reason: 'switched off by STUDIO_WEBGPU_DISABLE', config };
  } else if (!has('subgroups') || subgroupMaxSize === 0) {
    subgroupMatrix = { used: false, reason: 'subgroup matrices need the subgroups feature', config };
  } else if (limits.maxComputeWorkgroupStorageSize < MATRIX_GEMM_SHARED_BYTES) {
    subgroupMatrix = {
      used: false,
      reason: `the GEMM needs ${MATRIX_GEMM_SHARED_BYTES} bytes of workgroup memory; the device has ${limits.maxComputeWorkgroupStorageSize}`,
      config,
    };
  } else {
    subgroupMatrix = {
      used: true,
      reason: `${config.M}×${config.N}×${config.K} f16→f32 subgroup matrices for GEMMs on f16 weights (not yet verified on hardware)`,
      config,
    };
  }
  const raw = (info ?? {}) as Partial<Record<'vendor' | 'architecture' | 'device' | 'description', string>>;
  return {
    adapter: {
      vendor: String(raw.vendor ?? ''),
      architecture: String(raw.architecture ?? ''),
      device: String(raw.device ?? ''),
      description: String(raw.description ?? ''),
    },
    features,
    limits: {
      maxBufferSize: limits.maxBufferSize,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
    },
    subgroupMinSize,
    subgroupMaxSize,
    subgroupMatrixConfigs: configs,
    f16,
    subgroups,
    subgroupMatrix,
  };
}
