/// <reference types="@webgpu/types" />
import type * as tf from '@tensorflow/tfjs-core';

/**
 * The parts of tfjs-backend-webgpu 4.22's `WebGPUBackend` our kernels use. They are public fields of the
 * compiled class, not part of its typed API, so they are typed here once; `runtime.ts` is the only user.
 */
export interface TensorData {
  values: tf.backend_util.BackendValues | null;
  dtype: tf.DataType;
  shape: number[];
  refCount: number;
  resource?: GPUBuffer | GPUTexture | null;
}

export interface WebGpuBackendInternals {
  device: GPUDevice;
  queue: GPUQueue;
  tensorMap: { get(dataId: object): TensorData; has(dataId: object): boolean };
  bufferManager: {
    acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GPUBuffer;
    releaseBuffer(buffer: GPUBuffer, reuse?: boolean): void;
    numBytesUsed: number;
    numBytesAllocated: number;
  };
  commandEncoder: GPUCommandEncoder | null;
  computePassEncoder: GPUComputePassEncoder | null;
  dispatchCountInPass: number;
  commandQueueOwnedIds: WeakSet<object>;
  uniformPendingDisposal: GPUBuffer[];
  stagingPendingDisposal: GPUBuffer[];
  uploadToGPU(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** One `GPUSubgroupMatrixConfig` of the adapter (Dawn's `chromium-experimental-subgroup-matrix`). */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/** A kernel path and whether this device runs it, with the reason in one sentence. */
export interface FeaturePath {
  used: boolean;
  reason: string;
}

/** What the device offers and which kernel paths use it; `studio backends` prints this. */
export interface GpuCapabilities {
  adapter: { vendor: string; architecture: string; device: string; description: string };
  /** Features the device was created with. */
  features: string[];
  limits: {
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
    maxStorageBuffersPerShaderStage: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
  };
  subgroupMinSize: number;
  subgroupMaxSize: number;
  subgroupMatrixConfigs: SubgroupMatrixConfig[];
  /** `shader-f16`: frozen weights of half-precision checkpoints are stored and read as f16. */
  f16: FeaturePath;
  /** `subgroups` (with `subgroup-size-control`): required by the subgroup-matrix path. */
  subgroups: FeaturePath;
  /** `chromium-experimental-subgroup-matrix`: GEMMs on f16 weights use the matrix units. */
  subgroupMatrix: FeaturePath & { config?: SubgroupMatrixConfig };
}
