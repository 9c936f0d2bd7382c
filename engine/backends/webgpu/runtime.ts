/// <reference types="@webgpu/types" />
import * as tf from '@tensorflow/tfjs-core';
import type { GpuCapabilities, WebGpuBackendInternals } from './types.ts';

/** A storage binding: a whole buffer, or a range of one (offsets aligned to 256 bytes). */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

/** A tensor argument of a dispatch: a tfjs tensor (its GPU buffer, uploaded if needed) or a raw binding. */
export type Arg = tf.TensorInfo | Binding;

/** Uniform fields in declaration order: plain numbers are u32, `{ f32 }` floats, `{ i32 }` signed. */
export type UniformField = number | { f32: number } | { i32: number };

/** Rows of a frozen weight stored in one GPU buffer (a weight larger than a binding is split by rows). */
export interface WeightChunk {
  buffer: GPUBuffer;
  /** First stored row in this chunk. */
  row: number;
  rows: number;
}

/** A frozen weight's GPU copy in its storage precision, made once; tfjs's own f32 copy is never uploaded. */
export interface GpuWeightCopy {
  dtype: 'f32' | 'f16';
  rows: number;
  cols: number;
  chunks: WeightChunk[];
}

function isTensorInfo(arg: Arg): arg is tf.TensorInfo {
  return (arg as tf.TensorInfo).dataId !== undefined;
}

const STORAGE = 0x80; // GPUBufferUsage.STORAGE, spelled out: the constant is a dawn.node global
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const UNIFORM = 0x40;

/**
 * Our kernels on tfjs-backend-webgpu's device: WGSL of our own (f16, subgroup matrices, several outputs) recorded
 * into the backend's command encoder and compute pass, so they interleave with its stock kernels in order, share
 * its buffer pool and its batching of dispatches per submit. Outputs are ordinary tfjs tensors.
 */
export class GpuRuntime {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** GPU copies of frozen weights by tfjs data id. */
  readonly frozen = new Map<object, GpuWeightCopy>();
  /** The first error the device reported (validation, out of memory, loss); every later dispatch throws it. */
  private failure: string | null = null;

  constructor(
    readonly backend: WebGpuBackendInternals,
    readonly caps: GpuCapabilities,
  ) {
    this.maxBindingBytes = Math.min(caps.limits.maxStorageBufferBindingSize, caps.limits.maxBufferSize);
    // tfjs-backend-webgpu never looks at device errors: an invalid dispatch would silently yield garbage
    backend.device.addEventListener('uncapturederror', (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      this.failure ??= `${error.constructor.name}: ${error.message.split('\n')[0]}`;
    });
    backend.device.lost.then((info) => {
      this.failure ??= `device lost (${info.reason}): ${info.message}`;
    });
    const dispose = backend.disposeData.bind(backend);
    backend.disposeData = (dataId: object, force?: boolean) => {
      const released = dispose(dataId, force);
      const weight = released ? this.frozen.get(dataId) : undefined;
      if (weight) {
        this.frozen.delete(dataId);
        for (const c of weight.chunks) this.release(c.buffer);
      }
      return released;
    };
  }

  get device(): GPUDevice {
    return this.backend.device;
  }

  /** Bytes one storage binding may hold: the device's limits (tests lower it to exercise splitting). */
  maxBindingBytes: number;

  /** The largest number of elements of `bytes` bytes one storage binding can hold. */
  bindingElements(bytes: number): number {
    return Math.floor(this.maxBindingBytes / bytes);
  }

  /** A compute pipeline by cache key; `source` runs once per key. */
  pipeline(key: string, source: () => string): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ code: source(), label: key });
      p = this.device.createComputePipeline({
        layout: 'auto',
        compute: { module, entryPoint: 'main' },
        label: key,
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** The GPU buffer behind a tfjs tensor, uploading CPU-resident data first. */
  bufferOf(info: tf.TensorInfo): GPUBuffer {
    this.backend.uploadToGPU(info.dataId);
    const resource = this.backend.tensorMap.get(info.dataId).resource;
    if (!(resource instanceof Object) || !('mapAsync' in resource)) {
      throw new Error('webgpu: tensor data is not in a GPU buffer');
    }
    return resource as GPUBuffer;
  }

  /** A new float32 (or int32) tfjs tensor with a GPU buffer of its size, contents undefined. */
  output(shape: number[], dtype: 'float32' | 'int32' = 'float32'): tf.TensorInfo {
    const info = this.backend.makeTensorInfo(shape, dtype);
    if (tf.util.sizeFromShape(shape) > 0) this.backend.uploadToGPU(info.dataId);
    return info;
  }

  /** A scratch buffer, destroyed after the next submit: use it only in the dispatches recorded right after. */
  scratch(bytes: number): GPUBuffer {
    const buffer = this.backend.bufferManager.acquireBuffer(
      Math.max(16, Math.ceil(bytes / 16) * 16),
      STORAGE | COPY_SRC | COPY_DST,
      false,
      false,
    );
    this.backend.stagingPendingDisposal.push(buffer);
    return buffer;
  }

  /** Destroys a buffer of ours once no recorded, unsubmitted command still uses it. */
  private release(buffer: GPUBuffer): void {
    if (this.backend.commandEncoder) this.backend.stagingPendingDisposal.push(buffer);
    else this.backend.bufferManager.releaseBuffer(buffer, false);
  }

  /** A buffer of ours (not pooled): for frozen weights, which live as long as their tensor. */
  private ownBuffer(bytes: number): GPUBuffer {
    return this.backend.bufferManager.acquireBuffer(
      Math.max(16, Math.ceil(bytes / 4) * 4),
      STORAGE | COPY_SRC | COPY_DST,
      false,
      false,
    );
  }

  private uniforms(fields: UniformField[]): GPUBufferBinding {
    const size = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
    const data = new ArrayBuffer(size);
    const u32 = new Uint32Array(data);
    const f32 = new Float32Array(data);
    const i32 = new Int32Array(data);
    fields.forEach((f, i) => {
      if (typeof f === 'number') u32[i] = f;
      else if ('f32' in f) f32[i] = f.f32;
      else i32[i] = f.i32;
    });
    const buffer = this.backend.bufferManager.acquireBuffer(size, COPY_DST | UNIFORM);
    this.backend.queue.writeBuffer(buffer, 0, data);
    this.backend.uniformPendingDisposal.push(buffer);
    return { buffer, offset: 0, size };
  }

  /**
   * Records one dispatch. Bindings 0… are `args` in order, then the uniform struct (when `uniforms` is given).
   * Workgroup counts above the per-dimension limit are the caller's to fold (see `grid`).
   */
  dispatch(
    pipeline: GPUComputePipeline,
    args: Arg[],
    uniforms: UniformField[] | null,
    workgroups: [number, number?, number?],
  ): void {
    if (this.failure) throw new Error(`WebGPU: ${this.failure}`);
    const b = this.backend;
    const entries: GPUBindGroupEntry[] = args.map((arg, i) => {
      if (isTensorInfo(arg)) return { binding: i, resource: { buffer: this.bufferOf(arg) } };
      if ('mapAsync' in arg) return { binding: i, resource: { buffer: arg } };
      return { binding: i, resource: { buffer: arg.buffer, offset: arg.offset, size: arg.size } };
    });
    if (uniforms) entries.push({ binding: args.length, resource: this.uniforms(uniforms) });
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    for (const arg of args) if (isTensorInfo(arg)) b.commandQueueOwnedIds.add(arg.dataId);
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    b.ensureCommandEncoderReady();
    if (!b.computePassEncoder) b.computePassEncoder = b.commandEncoder!.beginComputePass({});
    b.computePassEncoder.setPipeline(pipeline);
    b.computePassEncoder.setBindGroup(0, bindGroup);
    b.computePassEncoder.dispatchWorkgroups(x, y, z);
    b.dispatchCountInPass++;
    if (b.dispatchCountInPass >= tf.env().getNumber('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE')) {
      b.endComputePassEncoder();
      b.submitQueue();
    }
  }

  /** Workgroup counts [x, y] for `count` workgroups in a row (shaders index `wg.x + wg.y * nwg.x`). */
  grid(count: number): [number, number] {
    const max = this.caps.limits.maxComputeWorkgroupsPerDimension;
    if (count <= max) return [count, 1];
    const y = Math.ceil(count / max);
    return [Math.ceil(count / y), y];
  }

  /**
   * Makes a frozen weight's GPU copy in `dtype`, split by rows so every chunk fits a binding, from the tensor's
   * CPU values (a freshly loaded weight) or its GPU buffer. Idempotent.
   */
  freeze(t: tf.Tensor2D, dtype: 'f32' | 'f16'): GpuWeightCopy {
    const existing = this.frozen.get(t.dataId);
    if (existing) return existing;
    const [rows, cols] = t.shape;
    const bytes = dtype === 'f16' ? 2 : 4;
    // whole chunks of 64 rows keep every chunk's byte offset in the f32 source 256-byte aligned
    const perChunk = Math.max(64, Math.floor(this.bindingElements(4) / cols / 64) * 64);
    if (cols * 64 > this.bindingElements(4)) {
      throw new Error(`webgpu: a weight row of ${cols} values is too long for a storage binding`);
    }
    const data = this.backend.tensorMap.get(t.dataId);
    const values = data.values as Float32Array<ArrayBuffer> | null;
    const source = values ? null : this.bufferOf(t);
    const chunks: WeightChunk[] = [];
    for (let row = 0; row < rows; row += perChunk) {
      const n = Math.min(perChunk, rows - row);
      const buffer = this.ownBuffer(n * cols * bytes);
      if (dtype === 'f32') {
        if (values) this.backend.queue.writeBuffer(buffer, 0, values, row * cols, n * cols);
        else {
          this.backend.ensureCommandEncoderReady();
          this.backend.endComputePassEncoder();
          this.backend.commandEncoder!.copyBufferToBuffer(source!, row * cols * 4, buffer, 0, n * cols * 4);
        }
      } else {
        let src: Binding;
        if (values) {
          const staged = this.scratch(n * cols * 4);
          this.backend.queue.writeBuffer(staged, 0, values, row * cols, n * cols);
          src = staged;
        } else {
          src = { buffer: source!, offset: row * cols * 4, size: n * cols * 4 };
        }
        this.toHalf(src, buffer, n * cols);
      }
      chunks.push({ buffer, row, rows: n });
      // each chunk's staging data is written at once: submit before the next reuses the queue's timeline
      if (this.backend.commandEncoder) {
        this.backend.endComputePassEncoder();
        this.backend.submitQueue();
      }
    }
    const weight: GpuWeightCopy = { dtype, rows, cols, chunks };
    this.frozen.set(t.dataId, weight);
    return weight;
  }

  private toHalf(src: Binding, dst: GPUBuffer, count: number): void {
    const pipeline = this.pipeline(
      'to-f16',
      () => `struct P { n: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<storage, read_write> dst: array<u32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let j = 2u * i;
  if (j >= p.n) { return; }
  let hi = select(0.0, src[j + 1u], j + 1u < p.n);
  dst[i] = pack2x16float(vec2<f32>(src[j], hi));
}`,
    );
    const pairs = Math.ceil(count / 2);
    this.dispatch(pipeline, [dst, src], [count], this.grid(Math.ceil(pairs / 256)));
  }
}

const runtimes = new WeakMap<object, GpuRuntime>();

export function attachRuntime(backend: object, runtime: GpuRuntime): void {
  runtimes.set(backend, runtime);
}

/** The runtime of a webgpu backend instance (kernels receive the backend). */
export function runtimeOf(backend: object): GpuRuntime {
  const r = runtimes.get(backend);
  if (!r) throw new Error('webgpu: this backend was not created by initWebGpuBackend');
  return r;
}

/** The runtime of the active backend, or null when the active backend is not our webgpu. */
export function activeRuntime(): GpuRuntime | null {
  if (tf.getBackend() !== 'webgpu') return null;
  return runtimes.get(tf.backend()) ?? null;
}
